"""One request budget per appkey, shared by every process and trigger through Redis.

KIS counts calls per appkey in a sliding one-second window (18/s live, 1/s paper since
2026-04) and answers ``EGW00201`` above it. Several triggers, tasks and machines may use the
same appkey, so the budget lives in Redis, not in the process.

The algorithm is GCRA (a "virtual scheduling" token bucket with no burst): a Lua script keeps
the *theoretical arrival time* of the next allowed call per appkey, reading Redis's own clock
(``TIME``) so every process agrees on "now". Each ``acquire()`` reserves the next free slot
atomically and sleeps until it; slots are ``1 / (rate × (1 − margin))`` seconds apart, so any
one-second window holds at most ``rate`` calls even with a few tens of milliseconds of network
jitter. Reservations are queued fairly: nobody spins, nobody retries against Redis.

A slot only keeps that promise if the call goes out *at* the slot. A caller whose event loop was
busy (a stalled triggerer, a CPU-starved machine) wakes up late, and every caller that reserved a
slot during the stall wakes up at the same moment: a burst of calls whose slots were spread out.
So ``acquire()`` checks how late it woke: past ``slack`` (half of what the margin leaves between
``rate`` slots and one second, ~26 ms at 18/s with 5 %) the slot is given up and a fresh one is
reserved behind everyone else's. Late callers then leave one at a time, spaced like everyone else,
and no one-second window holds more than ``rate`` calls (``late_slots`` counts the give-ups).

The same holds between the slot and the wire: a caller that has to await something after
``acquire()`` (the HTTP client opening a new connection: every window's first calls) can be made
late by a stall there, and would send a slot's call with the next slots' calls. Such a caller calls
:meth:`RateLimiter.confirm` at its last await before the bytes go out: a slot that went past
``slack`` meanwhile is given up the same way (the slot is the task's own, in a context variable,
so the workers that share a limiter never confirm each other's).

If Redis is unreachable the limiter falls back to the same schedule kept in-process (a warning
is logged and counted) and asks Redis again once a second; the budget is then per process
until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time

from krxflow import redis_client

log = logging.getLogger(__name__)

#: After a Redis failure, pace in-process for this long before asking Redis again.
REDIS_RETRY_SECONDS = 1.0

#: The slot this task's last ``acquire()`` was granted, as ``(limiter, slot)``, for :meth:`RateLimiter.confirm`
#: (None: nothing to confirm: no slot yet, or one taken late on purpose after ``MAX_LATE_SLOTS``).
_GRANTED: contextvars.ContextVar[tuple["RateLimiter", float] | None] = contextvars.ContextVar(
    "krxflow_kis_granted_slot", default=None)

# KEYS[1] = next-slot key. ARGV[1] = interval (µs), ARGV[2] = longest wait a caller may reserve (µs).
# Returns {wait_µs, now_µs}; wait_µs = -1 when the queue is longer than ARGV[2] (nothing reserved).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[2]) then return {-1, now} end
local nxt = tat + interval
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.floor((nxt - now) / 1000) + 1000)
return {wait, now}
"""


class RateLimiter:
    """Paces calls of one appkey below ``rate`` per second across processes (see module doc).

    :param redis: a ``redis.asyncio`` client, or None for a process-local limiter.
    :param name: what the budget is shared by (``KisConfig.key_id``).
    :param rate: the gateway's limit in calls per second.
    :param margin: fraction of ``rate`` left unused as a safety margin for jitter.
    """

    def __init__(self, redis, name: str, rate: float, margin: float = 0.05, *, max_reserve: float = 5.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.redis = redis
        self.key = redis_client.key("kis", "ratelimit", name)
        self.rate = rate
        self.interval = 1.0 / (rate * (1.0 - margin))
        # `rate` slots span rate × interval > 1 s; a call may go out up to half that excess late.
        self.slack = (rate * self.interval - 1.0) / 2
        self.max_reserve = max_reserve
        self.fallbacks = 0
        self.late_slots = 0
        self._min_rtt = float("inf")
        self._local_next = 0.0
        self._local_lock = asyncio.Lock()
        self._script = redis.register_script(_GCRA) if redis is not None else None
        self._redis_down_since: float | None = None
        self._skip_redis_until = 0.0

    #: Give up at most this many late slots in one acquire() (then go anyway: the client retries EGW00201).
    MAX_LATE_SLOTS = 20

    async def acquire(self) -> float:
        """Wait for the next slot and return the seconds waited; the caller must send at once (or
        :meth:`confirm` the slot at its last await before sending)."""
        started = time.monotonic()
        await self._take_slot(late=0)
        return time.monotonic() - started

    async def confirm(self) -> bool:
        """Check the slot of this task's last :meth:`acquire` just before the call goes out; if it went
        past ``slack`` since (a stall while the caller awaited something), give it up and wait for a
        fresh one, as ``acquire()`` does. True when the slot was still good."""
        granted = _GRANTED.get()
        if granted is None or granted[0] is not self or time.monotonic() - granted[1] <= self.slack:
            return True
        self.late_slots += 1
        await self._take_slot(late=1)
        return False

    async def _take_slot(self, late: int) -> None:
        """Reserve slots until one is met on time (``late`` given up so far), then record it for :meth:`confirm`."""
        while True:
            reserved = await self._reserve()
            if reserved is None:
                await asyncio.sleep(self.max_reserve / 2)  # queue full: come back later
                continue
            slot, not_before = reserved
            wait = not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if time.monotonic() - slot <= self.slack:
                _GRANTED.set((self, slot))
                return
            if late >= self.MAX_LATE_SLOTS:
                _GRANTED.set(None)  # going anyway, late: nothing left to confirm
                return
            late += 1
            self.late_slots += 1

    async def _reserve(self) -> tuple[float, float] | None:
        """Reserve the next slot, None when the queue is full; else, on this process's monotonic clock,
        the slot at its earliest (lateness is measured from it) and at its latest (never send before it)."""
        if self._script is None:
            return await self._reserve_local()
        if time.monotonic() < self._skip_redis_until:  # Redis just failed: don't stall every call on it
            self.fallbacks += 1
            return await self._reserve_local()
        asked = time.monotonic()
        try:
            wait_us, _ = await self._script(keys=[self.key],
                                            args=[int(self.interval * 1e6), int(self.max_reserve * 1e6)])
        except Exception as exc:  # redis.exceptions.ConnectionError, TimeoutError, BusyLoadingError…
            if self._redis_down_since is None:
                self._redis_down_since = time.monotonic()
                log.warning("rate limiter: Redis unavailable (%s); pacing in-process until it is back", exc)
            self.fallbacks += 1
            self._skip_redis_until = time.monotonic() + REDIS_RETRY_SECONDS
            return await self._reserve_local()
        if self._redis_down_since is not None:
            log.warning("rate limiter: Redis is back after %.1fs", time.monotonic() - self._redis_down_since)
            self._redis_down_since = None
        if wait_us < 0:
            return None
        # Redis reserved the slot `wait` after it ran the script: at the earliest about half the
        # quickest round trip after we asked (so a reply that sat in a busy event loop counts as
        # lateness), at the latest half of it before the answer arrived (so a slow first call, e.g.
        # one that had to connect, never sends early).
        answered = time.monotonic()
        self._min_rtt = min(self._min_rtt, answered - asked)
        wait = wait_us / 1e6
        return asked + self._min_rtt / 2 + wait, answered - self._min_rtt / 2 + wait

    async def _reserve_local(self) -> tuple[float, float]:
        async with self._local_lock:
            slot = max(time.monotonic(), self._local_next)
            self._local_next = slot + self.interval
            return slot, slot
