"""Database access for the read API: short read-only transactions on the market database.

Each request borrows its own connection (the api-server runs sync routes in a thread pool) through
the same Airflow Connection as the rest of krxflow (``KRXFLOW_API_CONN_ID``, default
``postgres_default``). The session is read-only and has a statement timeout, so a mistake in a
query can neither write nor hold the database for long.
"""

from __future__ import annotations

import os
from typing import Iterator

import psycopg
from psycopg.rows import dict_row

from krxflow.settings import POSTGRES_CONN_ID

API_CONN_ID = os.environ.get("KRXFLOW_API_CONN_ID", POSTGRES_CONN_ID)
STATEMENT_TIMEOUT_MS = int(os.environ.get("KRXFLOW_API_STATEMENT_TIMEOUT_MS", "10000"))


def read_only_connection() -> Iterator[psycopg.Connection]:
    """FastAPI dependency: a read-only connection, closed after the response."""
    from krxflow.db.connection import connect

    conn = connect(API_CONN_ID, autocommit=False)
    try:
        conn.read_only = True
        conn.row_factory = dict_row
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(STATEMENT_TIMEOUT_MS),))
        yield conn
    finally:
        conn.rollback()
        conn.close()
