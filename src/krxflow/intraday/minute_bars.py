"""A day's 1-minute bars from KIS into ``minute_bars`` (what ``kis_minute_bars``' tasks run).

The fetching — TRs, paging, the shared rate limit — is :mod:`krxflow.kis.minute_bars`; this module
binds it to the KIS Connection (:class:`~krxflow.hooks.kis.KisHook`) and writes through
:class:`~krxflow.hooks.BatchedPostgresHook` (upsert on ticker and minute, so a rerun changes nothing).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from krxflow.kis.minute_bars import COLUMNS, FetchResult, fetch_day

log = logging.getLogger(__name__)


def load_day(tickers: list[str], day: dt.date, *, today: bool, hook=None, kis_conn_id: str | None = None,
             redis_conn_id: str | None = None) -> FetchResult:
    """Fetch and upsert ``day``'s minute bars of ``tickers`` (sync entry point for tasks and the CLI)."""
    from krxflow.kis.buffer import async_redis
    from krxflow.hooks.kis import KisHook
    from krxflow.settings import KIS_CONN_ID, REDIS_CONN_ID

    if hook is None:
        from krxflow.hooks import BatchedPostgresHook

        hook = BatchedPostgresHook()
    if tickers:
        hook.ensure_partitions("minute_bars", day, day)

    def write(rows: list[dict]):
        return hook.upsert("minute_bars", rows, columns=COLUMNS)

    async def run() -> FetchResult:
        config = await KisHook(kis_conn_id or KIS_CONN_ID).aget_conn()
        redis = await async_redis(redis_conn_id or REDIS_CONN_ID)
        try:
            return await fetch_day(config, redis, tickers, day, today=today, write=write)
        finally:
            await redis.aclose()

    return asyncio.run(run())


def load_planned_day(day: str, tickers: list[str]) -> dict:
    """A planned day: today's TR while it is still that day in KST, else the past-day TR; raises
    (after writing every other ticker) when a ticker failed, so the task's retry fetches again."""
    from krxflow.market_time import kst_today

    when = dt.date.fromisoformat(day)
    result = load_day(tickers, when, today=when == kst_today())
    log.info("minute bars %s: %s", day, result.as_dict())
    if result.failed:
        raise RuntimeError(f"minute bars of {day}: {len(result.failed)} tickers failed: {result.failed[:20]}")
    return result.as_dict()
