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


def url_of(conn) -> str:
    """The Redis URL of a Connection object (host, port, password, db in ``schema`` or extra ``db``)."""
    db = conn.extra_dejson.get("db", conn.schema or 0)
    auth = f":{conn.password}@" if conn.password else ""
    return f"redis://{auth}{conn.host or '127.0.0.1'}:{conn.port or 6379}/{db or 0}"


def redis_url(conn_id: str = REDIS_CONN_ID) -> str:
    """The Redis URL of an Airflow Connection (synchronous lookup: not for use inside triggers)."""
    from airflow.sdk import BaseHook

    return url_of(BaseHook.get_connection(conn_id))


def client(conn_id: str = REDIS_CONN_ID, **kwargs):
    """A synchronous ``redis.Redis`` (decoded strings) for ``conn_id``."""
    import redis

    return redis.Redis.from_url(redis_url(conn_id), decode_responses=True, **kwargs)


def async_client(conn_id: str = REDIS_CONN_ID, **kwargs):
    """An asyncio ``redis.asyncio.Redis`` (decoded strings) for ``conn_id``.

    The Connection is looked up synchronously here; inside a trigger use :func:`aclient`.
    """
    import redis.asyncio

    return redis.asyncio.Redis.from_url(redis_url(conn_id), decode_responses=True, **kwargs)


async def aclient(conn_id: str = REDIS_CONN_ID, **kwargs):
    """Like :func:`async_client`, resolving the Connection without blocking the event loop (triggers)."""
    import redis.asyncio
    from airflow.sdk import BaseHook

    conn = await BaseHook.aget_connection(conn_id)
    return redis.asyncio.Redis.from_url(url_of(conn), decode_responses=True, **kwargs)
