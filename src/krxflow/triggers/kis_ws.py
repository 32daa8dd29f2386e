"""``KisStreamTrigger``: KIS's realtime push (trades and order books) into the Redis buffer, async.

The WebSocket counterpart of :class:`~krxflow.triggers.kis_poll.KisPollTrigger`, with the same
shape: it runs in the triggerer's shared event loop, touches no database, and buffers what it
receives in the run's Redis stream (:class:`~krxflow.kis.buffer.PushBuffer`) for the resumed
task to drain through the batched hook, acknowledging after the commit.

Until ``window_end`` it keeps one :class:`~krxflow.kis.ws.RealtimeSession` registered for the
trades (``H0STCNT0``, or ``H0UNCNT0`` when the venue is KRX+NXT) of ``trade_tickers`` and the
10-level books (``H0STASP0`` / ``H0UNASP0``) of ``book_tickers`` — together at most the
registration cap. Every data frame is split into its records (:func:`krxflow.kis.realtime.split_frame`);
each record is stamped with its receipt time in microseconds (unique, so books pushed within one
second stay distinct rows) and buffered as ``ws_trade`` / ``ws_book``; a frame with an unexpected
field count is buffered whole as ``ws_raw`` (kept in ``market_data``) and counted. Every
``stats_seconds`` — and once at the end — a ``ws_stats`` entry carries the counters (messages,
frames, trades, books, unparsed, reconnects, PINGPONGs, Redis trouble); the drain turns each into
a ``load_stats`` row (``operation = 'kis_ws_stats'``) for the collector-health panels.

The event::

    {"status": "ok" | "warning" | "error", "message": …, "stream": name, "window": n,
     "messages": …, "trades": …, "books": …, "unparsed": …, "frames": …, "reconnects": …,
     "pingpongs": …, "registered": …, "refused": [...], "overran": bool, "redis_errors": …, "redis_restarts": …,
     "spilled": …, "dropped_entries": …, "dropped_records": …, "buffer_peak_bytes": …,
     "held_entries": …, "spill_files": [...], "spill_host": …, "spill_entries": …}

As for the polling trigger, what Redis never took is in the named spill files, never in the event.
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

#: KIS's registration cap per session as the official samples enforce it (all TRs together).
DEFAULT_CAP = 40


class KisStreamTrigger(BaseTrigger):
    """Stream trades/books of the given tickers from KIS until ``window_end`` into Redis.

    :param trade_tickers: tickers whose every trade is registered.
    :param book_tickers: tickers whose order book is registered.
    :param stream: the buffer's name (see :func:`krxflow.kis.buffer.stream_key`).
    :param window: the window's number (stored with every entry).
    :param window_end: ISO datetime (tz-aware) at which the window closes.
    :param cap: registrations allowed per session (trades + books are trimmed to it).
    :param flush_interval: seconds between buffer flushes (the lag it adds at most).
    :param stats_seconds: seconds between ``ws_stats`` entries.
    :param send_interval: seconds between subscribe frames (official samples: 0.05).
    :param idle_timeout: reconnect when nothing arrived for this long (PINGPONG comes every ~10-20 s).
    :param flush_timeout: seconds to keep retrying Redis at the end before leaving the held entries
        in a spill file named in the event.
    :param market: the venue's KIS market code (``J`` KRX, ``UN`` KRX+NXT) instead of the Connection's.
    """

    def __init__(self, *, trade_tickers: list[str], book_tickers: list[str], stream: str, window: int,
                 window_end: str, kis_conn_id: str = KIS_CONN_ID, redis_conn_id: str = REDIS_CONN_ID,
                 cap: int = DEFAULT_CAP, flush_interval: float = 0.05, stats_seconds: float = 60.0,
                 send_interval: float = 0.05, idle_timeout: float = 60.0, backoff_base: float = 0.5,
                 flush_timeout: float = 60.0, market: str | None = None) -> None:
        super().__init__()
        self.market = market
        self.trade_tickers = list(trade_tickers)
        self.book_tickers = list(book_tickers)
        self.stream = stream
        self.window = int(window)
        self.window_end = window_end if isinstance(window_end, str) else window_end.isoformat()
        self.kis_conn_id = kis_conn_id
        self.redis_conn_id = redis_conn_id
        self.cap = int(cap)
        self.flush_interval = float(flush_interval)
        self.stats_seconds = float(stats_seconds)
        self.send_interval = float(send_interval)
        self.idle_timeout = float(idle_timeout)
        self.backoff_base = float(backoff_base)
        self.flush_timeout = float(flush_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("krxflow.triggers.kis_ws.KisStreamTrigger", {
            "trade_tickers": self.trade_tickers, "book_tickers": self.book_tickers, "stream": self.stream,
            "window": self.window, "window_end": self.window_end, "kis_conn_id": self.kis_conn_id,
            "redis_conn_id": self.redis_conn_id, "cap": self.cap, "flush_interval": self.flush_interval,
            "stats_seconds": self.stats_seconds, "send_interval": self.send_interval,
            "idle_timeout": self.idle_timeout, "backoff_base": self.backoff_base,
            "flush_timeout": self.flush_timeout, "market": self.market})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from krxflow.kis.buffer import async_redis
        from krxflow.hooks.kis import KisHook

        config = await KisHook(self.kis_conn_id, **({"market": self.market} if self.market else {})).aget_conn()
        redis = await async_redis(self.redis_conn_id)
        try:
            payload = await stream_window(
                config, redis, self.trade_tickers, self.book_tickers, self.stream, self.window,
                dt.datetime.fromisoformat(self.window_end), cap=self.cap, flush_interval=self.flush_interval,
                stats_seconds=self.stats_seconds, send_interval=self.send_interval,
                idle_timeout=self.idle_timeout, backoff_base=self.backoff_base, flush_timeout=self.flush_timeout)
        finally:
            await redis.aclose()
        yield TriggerEvent(payload)


def registrations(market: str, trade_tickers: list[str], book_tickers: list[str],
                  cap: int = DEFAULT_CAP) -> list[tuple[str, str]]:
    """The (tr_id, tr_key) pairs to register for the venue ``market``, trimmed to ``cap``.

    Trades first (every tick is what REST polling loses), then books.
    """
    from krxflow.kis.errors import KisConfigError
    from krxflow.kis.realtime import BOOK_TR, TRADE_TR

    if market not in TRADE_TR:
        raise KisConfigError(f"KIS realtime supports the venues J (KRX) and UN (KRX+NXT), not {market!r}")
    wanted = ([(TRADE_TR[market], t) for t in trade_tickers] + [(BOOK_TR[market], t) for t in book_tickers])
    return list(dict.fromkeys(wanted))[:max(0, int(cap))]


class _Clock:
    """Receipt times in µs since the epoch, strictly increasing (so each record's is unique)."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self) -> int:
        now = time.time_ns() // 1000
        self.last = now if now > self.last else self.last + 1
        return self.last


async def stream_window(config, redis, trade_tickers: list[str], book_tickers: list[str], stream: str, window: int,
                        window_end: dt.datetime, *, cap: int = DEFAULT_CAP, flush_interval: float = 0.05,
                        stats_seconds: float = 60.0, send_interval: float = 0.05, idle_timeout: float = 60.0,
                        backoff_base: float = 0.5, flush_timeout: float = 60.0, session_hook=None) -> dict:
    """The body of :class:`KisStreamTrigger` (also used by the bench): returns the event payload.

    ``session_hook`` (tests, bench) is called with the :class:`~krxflow.kis.ws.RealtimeSession`.
    """
    import aiohttp

    from krxflow.kis.approval import ApprovalKeyManager
    from krxflow.kis.buffer import SYNC_BUDGET, PushBuffer
    from krxflow.kis.errors import KisConfigError, KisError
    from krxflow.kis.realtime import TRADE_TRS, split_frame
    from krxflow.kis.ws import RealtimeSession

    if window_end.tzinfo is None:
        raise ValueError("window_end must be tz-aware")
    started = time.monotonic()
    deadline = started + max(0.0, (window_end - dt.datetime.now(dt.timezone.utc)).total_seconds())
    buffer = PushBuffer(redis, stream, window)
    counts = {"messages": 0, "trades": 0, "books": 0, "unparsed": 0, "unparsed_records": 0}
    clock = _Clock()
    await buffer.start()

    def on_data(text: str) -> None:
        rx = clock()
        frame = split_frame(text)
        if frame.raw_reason is not None:
            counts["unparsed"] += 1
            counts["unparsed_records"] += max(frame.count, 1)
            buffer.add("ws_raw", {"rx": rx, "tr_id": frame.tr_id, "count": frame.count, "reason": frame.raw_reason,
                                  "frame": text})
            return
        kind = "ws_trade" if frame.tr_id in TRADE_TRS else "ws_book"
        name = "trades" if kind == "ws_trade" else "books"
        for i, record in enumerate(frame.records):
            buffer.add(kind, [rx if i == 0 else clock(), record])
        counts[name] += frame.count
        counts["messages"] += frame.count

    fatal: list[str] = []
    approval_issued = [0]
    session = None
    stats_seq = 0
    period = {"at": time.monotonic(), **counts, "frames": 0, "reconnects": 0}

    def snapshot(final: bool) -> dict:
        nonlocal stats_seq
        stats_seq += 1
        now = time.monotonic()
        s = session.stats.as_dict() if session else {}
        current = {**counts, "frames": s.get("frames", 0), "reconnects": s.get("reconnects", 0)}
        delta = {k: current[k] - period[k] for k in current}
        seconds = now - period["at"]
        period.update(current, at=now)
        return {"stream": stream, "window": window, "seq": stats_seq, "final": final, "seconds": round(seconds, 3),
                **delta, "msgs_per_s": round(delta["messages"] / seconds, 1) if seconds > 0 else 0.0,
                "registered": s.get("registered", 0), "refused": len(s.get("refused", [])),
                "pingpongs": s.get("pingpongs", 0), "redis_errors": buffer.redis_errors,
                "redis_restarts": buffer.redis_restarts, "spilled": buffer.spilled,
                "dropped_records": buffer.dropped_records, "at": dt.datetime.now(dt.timezone.utc).isoformat()}

    async def pump() -> None:
        next_sync = next_stats = time.monotonic()
        next_stats += stats_seconds
        while True:
            await asyncio.sleep(flush_interval)
            await buffer.flush()
            now = time.monotonic()
            if now >= next_sync:
                next_sync = now + 1.0
                await buffer.sync(SYNC_BUDGET)
                await buffer.forget_acknowledged()
            if now >= next_stats:
                next_stats = now + stats_seconds
                buffer.add("ws_stats", snapshot(final=False))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout)) as http:
        approval = ApprovalKeyManager(config, redis, http)
        pumping = asyncio.create_task(pump())
        try:
            wanted = registrations(config.market, trade_tickers, book_tickers, cap)
            session = RealtimeSession(config, approval, wanted, on_data, send_interval=send_interval,
                                      idle_timeout=idle_timeout, backoff_base=backoff_base)
            if session_hook is not None:
                session_hook(session)
            await session.run(deadline)
        except KisConfigError as exc:
            fatal.append(str(exc))
        except KisError as exc:
            fatal.append(f"KIS realtime could not start: {exc}")
        finally:
            pumping.cancel()
            await asyncio.gather(pumping, return_exceptions=True)
            approval_issued[0] = approval.issued

    final = snapshot(final=True)
    buffer.add("ws_stats", final)
    await buffer.flush()
    flush_deadline = time.monotonic() + flush_timeout
    await buffer.sync()
    while buffer.held_entries and time.monotonic() < flush_deadline:
        await asyncio.sleep(1.0)
        await buffer.sync()
    s = session.stats.as_dict() if session else {}
    held = buffer.held_entries
    handed = buffer.hand_over()  # first: what it spills, or drops, at the end is in the counters
    summary = {"window": window, "stream": stream, **counts, "frames": s.get("frames", 0),
               "reconnects": s.get("reconnects", 0), "connects": s.get("connects", 0),
               "pingpongs": s.get("pingpongs", 0), "registered": s.get("registered", 0),
               "registrations": len(session.registrations) if session else 0, "refused": s.get("refused", []),
               "approval_refused": s.get("approval_refused", 0), "appkey_in_use": s.get("appkey_in_use", 0),
               "overran": s.get("overran", False), "entries": buffer.entries, "buffered": buffer.buffered, "seconds": round(time.monotonic() - started, 3),
               **buffer.counters(), "approval_keys_issued": approval_issued[0]}
    if fatal:
        status, message = "error", fatal[0]
    elif (buffer.redis_errors or buffer.redis_restarts or buffer.dropped_entries or counts["unparsed"]
          or s.get("refused") or s.get("overran")):
        status, message = "warning", None
    else:
        status, message = "ok", None
    return {"status": status, "message": message, **summary, "held_entries": held, **handed}
