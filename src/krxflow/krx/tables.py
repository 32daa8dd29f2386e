"""The KRX pipeline's way to the market tables: one hook per process, queries read as frames,
frames shaped as the hook wants them."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from krxflow.sqlfiles import template


@lru_cache(maxsize=1)
def shared_hook():
    """One hook per process: it keeps no connection, only the tables' catalog specs (read once)."""
    from krxflow.hooks import BatchedPostgresHook

    return BatchedPostgresHook()


def for_hook(frame: pd.DataFrame) -> pd.DataFrame:
    """``trade_date`` as datetime64 (the hook's vectorised path) instead of Python dates (parsed one by one)."""
    if "trade_date" in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame["trade_date"]):
        frame = frame.assign(trade_date=pd.to_datetime(frame["trade_date"]))
    return frame


def read_frame(hook, query: str, params: dict | None = None) -> pd.DataFrame:
    with hook.thread_connection() as conn, conn.cursor() as cur:
        cur.execute(template(query), params or {})
        columns = [c.name for c in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)
