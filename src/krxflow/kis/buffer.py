"""The Redis stream that carries polled quotes from the trigger to the draining task.

Why a stream: the trigger runs in the triggerer's shared event loop and must not write to
PostgreSQL; the task that writes may be killed. A Redis Stream with a consumer group gives
"acknowledge only after the commit": the drain (:mod:`krxflow.kis.drain`) reads entries through
the group, writes them through the batched hook, and only then ``XACK``s (and ``XDEL``s) them. A
drain that dies leaves its entries pending, and the rerun reads the same entries again; the
tables' primary keys (ticker, ts) keep the rows unique.

Entry fields: ``kind`` (``quote`` | ``book`` | ``window``), ``window`` (the polling window's
number), ``data`` (the row, JSON; for ``window`` the window's counters). The WebSocket push
(:class:`PushBuffer`) writes ``ws_trade`` | ``ws_book`` | ``ws_raw`` | ``ws_stats`` entries whose
``data`` is a JSON *list* of records (see :mod:`krxflow.triggers.kis_ws`).

Dedupe: the last fingerprint of each (kind, ticker) is kept in Redis
(``kis:last:<kind>:<ticker>``, TTL ``dedupe_ttl``) and in memory; an answer equal to the
previous one is skipped and counted as a dedupe hit. The entry and its fingerprint are written
in one MULTI/EXEC, so a quote is never marked "seen" without being buffered.

Redis trouble (restart, failover) must not stop polling: entries that cannot be written are
kept in memory and retried; a restart is detected through the server's ``run_id`` and the
window's entries written before it are written again (the primary keys absorb the repeats).
Both are counted and reported as a warning.
"""

from __future__ import annotations

import logging

from krxflow import cache
from krxflow.kis.parsing import encode_row, fingerprint
from krxflow.settings import REDIS_CONN_ID

log = logging.getLogger(__name__)

GROUP = "drain"
CONSUMER = "drain"


def stream_key(name: str) -> str:
    """The Redis key of buffer ``name`` (one per DAG run / session, or per bench run)."""
    return cache.key("kis", "buffer", name)


async def async_redis(conn_id: str = REDIS_CONN_ID, **kwargs):
    """A ``redis.asyncio`` client for the trigger: Connection resolved without blocking the loop,
    and failing fast while Redis is down (the poller holds entries in memory) instead of stalling."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    kwargs.setdefault("retry", Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
    kwargs.setdefault("socket_connect_timeout", 1)
    kwargs.setdefault("socket_timeout", 5)
    return await cache.aclient(conn_id, **kwargs)


class StreamBuffer:
    """Writer side of the buffer, used by the polling trigger (async, never blocks).

    :param redis: ``redis.asyncio`` client (decoded responses).
    :param name: the buffer's name (see :func:`stream_key`).
    :param window: the polling window's number, stored with each entry.
    :param dedupe_ttl: seconds a fingerprint is remembered.
    """

    def __init__(self, redis, name: str, window: int, dedupe_ttl: int = 6 * 3600) -> None:
        self.redis = redis
        self.name = name
        self.stream = stream_key(name)
        self.window = int(window)
        self.dedupe_ttl = int(dedupe_ttl)
        self.buffered = 0        # entries accepted (buffered or held for retry)
        self.dedupe_hits = 0
        self.redis_errors = 0
        self.redis_restarts = 0
        self.rewritten = 0       # entries written again after a Redis restart
        self._last: dict[tuple[str, str], str] = {}
        self._written: list[tuple[dict, str | None, str]] = []  # (fields, run_id written under, entry id)
        self._unsent: list[dict] = []
        self._run_id: str | None = None
        self._group_ready = False

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Create the stream and its consumer group if needed; remember which Redis we talk to."""
        try:
            await self._ensure_group()
            self._run_id = await self._server_run_id()
        except Exception as exc:
            self._redis_failed("start", exc)

    async def sync(self) -> None:
        """Retry held entries and recover from a Redis restart (called between sweeps and at the end)."""
        try:
            run_id = await self._server_run_id()
        except Exception as exc:
            self._redis_failed("health check", exc)
            return
        if self._run_id is not None and run_id != self._run_id:
            self.redis_restarts += 1
            self._group_ready = False
            lost = [fields for fields, written_under, _ in self._written if written_under != run_id]
            log.warning("KIS buffer %s: Redis restarted (run_id %s → %s); writing this window's %d earlier "
                        "entries again", self.name, self._run_id, run_id, len(lost))
            self._written = [w for w in self._written if w[1] == run_id]
            self._unsent = lost + self._unsent
            self.rewritten += len(lost)
        self._run_id = run_id
        if self._unsent:
            try:
                await self._ensure_group()
                pending, self._unsent = self._unsent, []
                async with self.redis.pipeline(transaction=False) as pipe:
                    for fields in pending:
                        pipe.xadd(self.stream, fields)
                    ids = await pipe.execute()
                self._written.extend((f, run_id, i) for f, i in zip(pending, ids))
                log.warning("KIS buffer %s: %d held entries written after a Redis outage", self.name, len(pending))
            except Exception as exc:
                self._unsent = pending + self._unsent
                self._redis_failed("retry", exc)

    @property
    def unsent(self) -> list[dict]:
        """Entries Redis has not taken yet (the trigger hands them over in its event as a last resort)."""
        return list(self._unsent)

    # ---------------------------------------------------------------- writing
    async def offer(self, kind: str, row: dict) -> bool:
        """Buffer ``row`` unless it equals the previous answer for its ticker; True if buffered."""
        ticker = row["ticker"]
        digest = fingerprint(row)
        last_key = cache.key("kis", "last", kind, ticker)
        previous = self._last.get((kind, ticker))
        if previous is None and not self._unsent:
            try:
                previous = await self.redis.get(last_key)
            except Exception as exc:
                self._redis_failed("dedupe lookup", exc)
        if previous == digest:
            self.dedupe_hits += 1
            return False
        self._last[(kind, ticker)] = digest
        fields = {"kind": kind, "window": str(self.window), "data": encode_row(row)}
        self.buffered += 1
        if self._unsent:  # keep order: while Redis is out, everything queues behind
            self._unsent.append(fields)
            return True
        try:
            if not self._group_ready:
                await self._ensure_group()
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.stream, fields)
                pipe.set(last_key, digest, ex=self.dedupe_ttl)
                entry_id, _ = await pipe.execute()
            self._written.append((fields, self._run_id, entry_id))
        except Exception as exc:
            self._unsent.append(fields)
            self._redis_failed("write", exc)
        return True

    async def close_window(self, summary: dict) -> bool:
        """Append the window's summary entry (after every row of the window); False if Redis refused."""
        import json

        fields = {"kind": "window", "window": str(self.window), "data": json.dumps(summary, default=str)}
        try:
            await self._ensure_group()
            await self.redis.xadd(self.stream, fields)
            return True
        except Exception as exc:
            self._redis_failed("window summary", exc)
            return False

    async def forget_acknowledged(self) -> int:
        """Stop holding entries the drain has acknowledged (committed); returns how many were dropped.

        An entry is acknowledged once the group has delivered it and it is no longer pending: its id
        is at most the group's ``last-delivered-id`` and below the oldest pending id. Only entries
        that may still be uncommitted need rewriting after a Redis restart, so a long session's
        memory stays bounded by the drain's lag instead of growing with every entry written.
        """
        if not self._written:
            return 0
        try:
            groups = {g["name"]: g for g in await self.redis.xinfo_groups(self.stream)}
            group = groups.get(GROUP)
            if group is None:
                return 0
            pending = await self.redis.xpending(self.stream, GROUP)
        except Exception as exc:
            self._redis_failed("acknowledgement check", exc)
            return 0
        bound = _id_key(group.get("last-delivered-id") or "0-0")
        if pending and pending.get("pending"):
            bound = min(bound, _before(pending["min"]))
        kept = [w for w in self._written if w[1] != self._run_id or _id_key(w[2]) > bound]
        dropped = len(self._written) - len(kept)
        self._written = kept
        return dropped

    # ---------------------------------------------------------------- internals
    async def _ensure_group(self) -> None:
        import redis.exceptions

        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _server_run_id(self) -> str:
        info = await self.redis.info("server")
        return str(info.get("run_id"))

    def _redis_failed(self, what: str, exc: Exception) -> None:
        self.redis_errors += 1
        self._group_ready = False
        if self.redis_errors == 1 or self.redis_errors % 100 == 0:
            log.warning("KIS buffer %s: Redis %s failed (%s); polling goes on, %d entries held in memory "
                        "[%d Redis errors so far]", self.name, what, exc, len(self._unsent), self.redis_errors)




class PushBuffer(StreamBuffer):
    """Writer side for the WebSocket push: every record is kept (no dedupe), many per entry.

    At thousands of records a second one entry per record would cost a Redis round trip each;
    instead :meth:`add` collects records per kind in memory and :meth:`flush` (called by the
    trigger every few tens of milliseconds) writes one entry per kind — ``data`` is then a JSON
    list of records. Held entries, the Redis-restart rewrite and :meth:`forget_acknowledged` are
    those of :class:`StreamBuffer`.
    """

    def __init__(self, redis, name: str, window: int) -> None:
        super().__init__(redis, name, window, dedupe_ttl=1)
        self._batch: dict[str, list] = {}
        self.entries = 0

    def add(self, kind: str, record) -> None:
        self._batch.setdefault(kind, []).append(record)
        self.buffered += 1

    async def flush(self) -> None:
        """Write the collected records (one entry per kind); held in memory while Redis is out."""
        import json

        if not self._batch:
            return
        batch, self._batch = self._batch, {}
        entries = [{"kind": kind, "window": str(self.window), "data": json.dumps(records, separators=(",", ":"))}
                   for kind, records in batch.items()]
        if self._unsent:  # keep order: while Redis is out, everything queues behind
            self._unsent.extend(entries)
            return
        try:
            if not self._group_ready:
                await self._ensure_group()
            async with self.redis.pipeline(transaction=False) as pipe:
                for fields in entries:
                    pipe.xadd(self.stream, fields)
                ids = await pipe.execute()
            self._written.extend((fields, self._run_id, i) for fields, i in zip(entries, ids))
            self.entries += len(entries)
        except Exception as exc:
            self._unsent.extend(entries)
            self._redis_failed("write", exc)


def _id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as a comparable pair."""
    ms, _, seq = str(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _before(entry_id: str) -> tuple[int, int]:
    """The largest id below ``entry_id`` (ids compare as pairs, so (ms, seq - 1) or (ms - 1, max))."""
    ms, seq = _id_key(entry_id)
    return (ms, seq - 1) if seq > 0 else (ms - 1, 2 ** 63)
