"""``KisPollTrigger``: one polling window of the intraday KIS poller, fully asynchronous.

Runs in the triggerer's shared event loop, so nothing here blocks: HTTP through aiohttp
(:class:`~krxflow.kis.client.KisClient`), Redis through ``redis.asyncio``, the Connections through
``BaseHook.aget_connection``. No database access: the rows go to a Redis stream
(:class:`~krxflow.kis.buffer.StreamBuffer`) that the resumed task drains through the batched hook.

A window: sweep the watchlist again and again until ``window_end`` — for each ticker the current
price (``inquire-price``) and, optionally, the order book (``inquire-asking-price-exp-ccn``) —
with ``concurrency`` workers that all wait on the shared rate limiter, so the appkey's budget is
used fully but never exceeded. Answers equal to the previous one are skipped (dedupe). At the end
the window's counters are appended to the stream as a summary entry and fired in the event::

    {"status": "ok" | "warning" | "error", "stream": name, "window": n, "requests": …,
     "successes": …, "throttles": …, "retries": …, "errors": …, "dedupe_hits": …,
     "quotes_received": …, "books_received": …, "buffered": …, "unknown": …, "halted": …,
     "sweeps": …, "sweep_seconds": …, "redis_errors": …, "redis_restarts": …, "rewritten": …,
     "spilled": …, "dropped_entries": …, "dropped_records": …, "buffer_peak_bytes": …,
     "held_entries": …, "spill_files": [...], "spill_host": …, "spill_entries": …}

Entries Redis never took are never in the event: they are in the spill files it names (see
:mod:`krxflow.kis.buffer`), which the task writes to PostgreSQL — so the event, which Airflow
keeps in its metadata database, stays a few hundred bytes however long Redis was down.

``status`` is ``error`` (with ``message``) only for failures no retry can fix (bad credentials,
wrong environment): the task then fails with that message instead of polling into a wall.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from krxflow.settings import KIS_CONN_ID, REDIS_CONN_ID

log = logging.getLogger(__name__)


class KisPollTrigger(BaseTrigger):
    """Poll ``tickers`` from KIS until ``window_end`` and buffer the answers in Redis.

    :param tickers: 6-character codes to poll.
    :param stream: the buffer's name (see :func:`krxflow.kis.buffer.stream_key`).
    :param window: the window's number within the run (stored with every entry).
    :param window_end: ISO datetime (tz-aware) at which the window closes.
    :param kis_conn_id: the KIS Connection (base URL, appkey/appsecret, env, rate).
    :param redis_conn_id: the Redis Connection.
    :param order_books: also poll the order book of each ticker.
    :param concurrency: requests in flight at once (they all queue on the rate limiter).
    :param min_sweep_seconds: a sweep of the watchlist starts at most this often (0: back to back).
    :param dedupe_ttl: seconds an answer's fingerprint is remembered for dedupe.
    :param flush_timeout: seconds to keep retrying Redis at the window's end before leaving the
        held entries in a spill file named in the event.
    """

    def __init__(self, *, tickers: list[str], stream: str, window: int, window_end: str,
                 kis_conn_id: str = KIS_CONN_ID, redis_conn_id: str = REDIS_CONN_ID, order_books: bool = True,
                 concurrency: int = 12, min_sweep_seconds: float = 0.0, dedupe_ttl: int = 6 * 3600,
                 flush_timeout: float = 60.0) -> None:
        super().__init__()
        self.tickers = list(tickers)
        self.stream = stream
        self.window = int(window)
        self.window_end = window_end if isinstance(window_end, str) else window_end.isoformat()
        self.kis_conn_id = kis_conn_id
        self.redis_conn_id = redis_conn_id
        self.order_books = bool(order_books)
        self.concurrency = max(1, int(concurrency))
        self.min_sweep_seconds = float(min_sweep_seconds)
        self.dedupe_ttl = int(dedupe_ttl)
        self.flush_timeout = float(flush_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("krxflow.triggers.kis_poll.KisPollTrigger", {
            "tickers": self.tickers, "stream": self.stream, "window": self.window, "window_end": self.window_end,
            "kis_conn_id": self.kis_conn_id, "redis_conn_id": self.redis_conn_id, "order_books": self.order_books,
            "concurrency": self.concurrency, "min_sweep_seconds": self.min_sweep_seconds,
            "dedupe_ttl": self.dedupe_ttl, "flush_timeout": self.flush_timeout})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from krxflow.kis.buffer import async_redis
        from krxflow.hooks.kis import KisHook

        config = await KisHook(self.kis_conn_id).aget_conn()
        redis = await async_redis(self.redis_conn_id)
        try:
            payload = await poll_window(config, redis, self.tickers, self.stream, self.window,
                                        dt.datetime.fromisoformat(self.window_end), order_books=self.order_books,
                                        concurrency=self.concurrency, min_sweep_seconds=self.min_sweep_seconds,
                                        dedupe_ttl=self.dedupe_ttl, flush_timeout=self.flush_timeout)
        finally:
            await redis.aclose()
        yield TriggerEvent(payload)


async def poll_window(config, redis, tickers: list[str], stream: str, window: int, window_end: dt.datetime, *,
                      order_books: bool = True, concurrency: int = 12, min_sweep_seconds: float = 0.0,
                      dedupe_ttl: int = 6 * 3600, flush_timeout: float = 60.0) -> dict:
    """The body of :class:`KisPollTrigger` (also used by the bench): returns the event payload."""
    from krxflow.kis.buffer import SYNC_BUDGET, StreamBuffer
    from krxflow.kis.client import KisClient
    from krxflow.kis.errors import KisConfigError, KisError
    from krxflow.kis.parsing import observed_at, parse_book, parse_quote

    if window_end.tzinfo is None:
        raise ValueError("window_end must be tz-aware")
    started = time.monotonic()
    deadline = started + max(0.0, (window_end - dt.datetime.now(dt.timezone.utc)).total_seconds())
    buffer = StreamBuffer(redis, stream, window, dedupe_ttl)
    counts = {"quotes_received": 0, "books_received": 0, "unknown": 0, "halted": 0, "call_errors": 0}
    sweep_times: list[float] = []
    fatal: list[str] = []
    await buffer.start()

    async with KisClient(config, redis) as kis:
        async def poll_one(ticker: str) -> None:
            try:
                output = await kis.inquire_price(ticker)
                row = parse_quote(ticker, output, observed_at())
                if row is None:
                    counts["unknown"] += 1
                    return
                counts["quotes_received"] += 1
                counts["halted"] += row["halted"]
                await buffer.offer("quote", row)
                if order_books and time.monotonic() < deadline:
                    book, _ = await kis.inquire_asking_price(ticker)
                    book_row = parse_book(ticker, book, observed_at())
                    if book_row is not None:
                        counts["books_received"] += 1
                        await buffer.offer("book", book_row)
            except KisConfigError as exc:
                fatal.append(str(exc))
            except KisError as exc:
                counts["call_errors"] += 1
                log.warning("KIS poll %s: %s", ticker, exc)

        async def worker(queue: asyncio.Queue) -> None:
            while not fatal and time.monotonic() < deadline:
                try:
                    ticker = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await poll_one(ticker)

        while not fatal and time.monotonic() < deadline:
            sweep_started = time.monotonic()
            queue: asyncio.Queue = asyncio.Queue()
            for ticker in tickers:
                queue.put_nowait(ticker)
            await asyncio.gather(*(worker(queue) for _ in range(min(concurrency, len(tickers)))))
            if queue.empty():
                sweep_times.append(time.monotonic() - sweep_started)
            await buffer.sync(SYNC_BUDGET)
            rest = min_sweep_seconds - (time.monotonic() - sweep_started)
            if rest > 0 and not fatal:
                await asyncio.sleep(min(rest, max(0.0, deadline - time.monotonic())))
        stats = kis.stats.as_dict()
        token_issued = kis.tokens.issued if kis.tokens else 0

    flush_deadline = time.monotonic() + flush_timeout
    await buffer.sync()
    while buffer.held_entries and time.monotonic() < flush_deadline:
        await asyncio.sleep(1.0)
        await buffer.sync()
    held = buffer.held_entries
    handed = buffer.hand_over()  # first: what it spills, or drops, at the end is in the counters
    summary = {
        "window": window, "stream": stream, "tickers": len(tickers), **stats,
        "dedupe_hits": buffer.dedupe_hits, "buffered": buffer.buffered, **counts,
        "sweeps": len(sweep_times), "sweep_seconds": round(sum(sweep_times) / len(sweep_times), 3) if sweep_times
        else round(time.monotonic() - started, 3), "seconds": round(time.monotonic() - started, 3),
        **buffer.counters(), "tokens_issued": token_issued, "limit": config.rate,
    }
    summary_buffered = not held and await buffer.close_window(summary)
    if fatal:
        status, message = "error", fatal[0]
    elif buffer.redis_errors or buffer.redis_restarts or buffer.dropped_entries or stats["errors"]:
        status, message = "warning", None
    else:
        status, message = "ok", None
    return {"status": status, "message": message, **summary, "summary_buffered": summary_buffered,
            "held_entries": held, **handed}
