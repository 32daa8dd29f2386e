"""Redis for krxflow: one client factory and one key namespace.

The server comes from the Airflow Connection ``redis_default`` (``AIRFLOW_CONN_REDIS_DEFAULT``,
e.g. ``redis://127.0.0.1:6379/0``). Every key krxflow writes starts with ``KRXFLOW_REDIS_PREFIX``
(default ``krxflow:``) so that several installations — or test runs — can share one server.
"""

from __future__ import annotations

import os

from krxflow.settings import REDIS_CONN_ID


def prefix() -> str:
    return os.environ.get("KRXFLOW_REDIS_PREFIX", "krxflow:")


def key(*parts: object) -> str:
    """``krxflow:<part>:<part>…`` — the only way krxflow names a Redis key."""
    return prefix() + ":".join(str(p) for p in parts)


def redis_url(conn_id: str = REDIS_CONN_ID) -> str:
    """The Redis URL of an Airflow Connection (host, port, password, db in ``schema`` or extra ``db``)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    db = conn.extra_dejson.get("db", conn.schema or 0)
    auth = f":{conn.password}@" if conn.password else ""
    return f"redis://{auth}{conn.host or '127.0.0.1'}:{conn.port or 6379}/{db or 0}"


def client(conn_id: str = REDIS_CONN_ID, **kwargs):
    """A synchronous ``redis.Redis`` (decoded strings) for ``conn_id``."""
    import redis

    return redis.Redis.from_url(redis_url(conn_id), decode_responses=True, **kwargs)


def async_client(conn_id: str = REDIS_CONN_ID, **kwargs):
    """An asyncio ``redis.asyncio.Redis`` (decoded strings) for ``conn_id``; for triggers."""
    import redis.asyncio

    return redis.asyncio.Redis.from_url(redis_url(conn_id), decode_responses=True, **kwargs)
