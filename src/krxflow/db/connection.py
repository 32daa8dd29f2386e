"""One way to open the market database: through the Airflow Connection ``postgres_default``.

Inside a task the Connection comes from Airflow; outside (CLI, tests, benches) from the
``AIRFLOW_CONN_POSTGRES_DEFAULT`` environment variable, which Airflow's hook reads the same way.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg

from krxflow.settings import POSTGRES_CONN_ID


def connect(conn_id: str = POSTGRES_CONN_ID, *, autocommit: bool = True) -> psycopg.Connection:
    """A new psycopg 3 connection for ``conn_id`` (the caller closes it).

    Autocommit by default: krxflow code opens explicit ``with conn.transaction():`` blocks, which
    then really commit at their end instead of nesting in an implicit transaction.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    conn.autocommit = autocommit
    return conn


@contextmanager
def connection(conn_id: str = POSTGRES_CONN_ID, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
    """``connect()`` as a context manager that always closes the connection."""
    conn = connect(conn_id, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()
