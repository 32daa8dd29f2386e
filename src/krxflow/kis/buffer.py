"""The Redis stream that carries polled quotes from the trigger to the draining task.

Why a stream: the trigger runs in the triggerer's shared event loop and must not write to
PostgreSQL; the task that writes may be killed. A Redis Stream with a consumer group gives
"acknowledge only after the commit": the drain (:mod:`krxflow.intraday.drain`) reads entries through
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
held and retried; a restart is detected through the server's ``run_id`` and the window's entries
written before it are written again (the primary keys absorb the repeats). Both are counted and
reported as a warning.

Memory is bounded (:class:`BufferLimits`, ``KRXFLOW_KIS_BUFFER_*``): the entries held for Redis
and those kept for a rewrite after a restart share one cap in records and bytes. Past it, the
entries kept for a rewrite are let go first (they are in Redis; counted as ``unprotected``), then
new held entries go to a spill file on local disk (:mod:`krxflow.kis.spill`) that is read back
into Redis once it answers; past the spill file's own limit, or if the disk refuses, entries are
dropped and counted (``dropped_entries`` / ``dropped_records``). At the end of a window whatever
Redis never took is left in the spill file, whose name the trigger's event carries — never the
entries themselves, so the event stays a few hundred bytes whatever happened.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from krxflow import redis_client
from krxflow.kis.parsing import encode_row, fingerprint
from krxflow.kis.spill import SpillFile, SpillFull, encode as encode_spilled
from krxflow.settings import REDIS_CONN_ID, cache_dir

log = logging.getLogger(__name__)

GROUP = "drain"
CONSUMER = "drain"

#: What a held entry costs beyond its field values (dict, strings, queue slot), for the byte cap.
ENTRY_OVERHEAD = 400
#: Entries per Redis pipeline when held entries are written back.
SEND_CHUNK = 500
#: Held entries a trigger writes back per :meth:`StreamBuffer.sync` while it is still collecting.
SYNC_BUDGET = 20 * SEND_CHUNK
#: Pushed records a :class:`PushBuffer` collects before it encodes them even if no flush came: as
#: Python lists a record costs ~3 KB (as JSON ~0.3 KB), so this bounds the batch to ~1.5 MB.
MAX_BATCH = 500


@dataclass(frozen=True)
class BufferLimits:
    """How much a buffer keeps in memory, and how much it spills to disk, before it drops entries.

    :param max_records: records held in memory at most (held for Redis plus kept for a rewrite).
    :param max_bytes: bytes of entries held in memory at most (field values plus
        :data:`ENTRY_OVERHEAD` per entry — what ``tracemalloc`` sees of them, within a few percent).
    :param spill_dir: where spill files go (local disk of the triggerer).
    :param spill_max_bytes: size of one window's spill file at most.
    """

    max_records: int = 100_000
    max_bytes: int = 32 * 2**20
    spill_dir: Path = field(default_factory=lambda: cache_dir() / "kis-spill")
    spill_max_bytes: int = 2**30

    @classmethod
    def from_env(cls) -> BufferLimits:
        """``KRXFLOW_KIS_BUFFER_MAX_RECORDS``, ``KRXFLOW_KIS_BUFFER_MAX_BYTES``, ``KRXFLOW_KIS_SPILL_DIR``
        (default ``<cache dir>/kis-spill``), ``KRXFLOW_KIS_SPILL_MAX_BYTES``; the defaults above."""
        return cls(max_records=int(os.environ.get("KRXFLOW_KIS_BUFFER_MAX_RECORDS") or cls.max_records),
                   max_bytes=int(os.environ.get("KRXFLOW_KIS_BUFFER_MAX_BYTES") or cls.max_bytes),
                   spill_dir=Path(os.environ.get("KRXFLOW_KIS_SPILL_DIR") or cache_dir() / "kis-spill"),
                   spill_max_bytes=int(os.environ.get("KRXFLOW_KIS_SPILL_MAX_BYTES") or cls.spill_max_bytes))


def stream_key(name: str) -> str:
    """The Redis key of buffer ``name`` (one per DAG run / session, or per bench run)."""
    return redis_client.key("kis", "buffer", name)


async def async_redis(conn_id: str = REDIS_CONN_ID, **kwargs):
    """A ``redis.asyncio`` client for the trigger: Connection resolved without blocking the loop,
    and failing fast while Redis is down (the poller holds entries in memory) instead of stalling."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    kwargs.setdefault("retry", Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
    kwargs.setdefault("socket_connect_timeout", 1)
    kwargs.setdefault("socket_timeout", 5)
    return await redis_client.aclient(conn_id, **kwargs)


class StreamBuffer:
    """Writer side of the buffer, used by the polling trigger (async, never blocks).

    :param redis: ``redis.asyncio`` client (decoded responses).
    :param name: the buffer's name (see :func:`stream_key`).
    :param window: the polling window's number, stored with each entry.
    :param dedupe_ttl: seconds a fingerprint is remembered.
    :param limits: memory cap and spill file (default: :meth:`BufferLimits.from_env`).
    """

    def __init__(self, redis, name: str, window: int, dedupe_ttl: int = 6 * 3600,
                 limits: BufferLimits | None = None) -> None:
        self.redis = redis
        self.name = name
        self.stream = stream_key(name)
        self.window = int(window)
        self.dedupe_ttl = int(dedupe_ttl)
        self.limits = limits or BufferLimits.from_env()
        self.buffered = 0        # entries accepted (buffered or held for retry)
        self.dedupe_hits = 0
        self.redis_errors = 0
        self.redis_restarts = 0
        self.rewritten = 0       # entries written again after a Redis restart
        self.spilled = 0         # entries that went to a spill file
        self.unspilled = 0       # entries read back from a spill file (this window's or an orphan's)
        self.dropped_entries = 0  # entries lost: neither memory nor the spill file could take them
        self.dropped_records = 0
        self.unprotected = 0     # entries let go of before the drain had them (no rewrite after a restart)
        self.peak_bytes = 0      # most bytes held in memory at once (held + kept for a rewrite)
        self._last: dict[tuple[str, str], str] = {}
        # entries written, kept for a rewrite after a restart: (fields, run_id written under, entry id, bytes, records)
        self._written: deque[tuple[dict, str | None, str, int, int]] = deque()
        self._held: deque[tuple[dict, int, int]] = deque()  # entries for Redis: (fields, bytes, records)
        self._held_bytes = self._held_records = self._written_bytes = self._written_records = 0
        self._spills: deque[SpillFile] = deque()  # oldest first; the last one may be this buffer's own
        self._own_spill: SpillFile | None = None
        self._run_id: str | None = None
        self._group_ready = False

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Create the stream and its consumer group if needed; remember which Redis we talk to; take
        over the spill files of this stream an earlier window left on this host (replayed by :meth:`sync`)."""
        try:
            orphans = SpillFile.orphans(self.limits.spill_dir, self.stream)
        except OSError as exc:
            log.warning("KIS buffer %s: could not look for spill files in %s: %s", self.name,
                        self.limits.spill_dir, exc)
            orphans = []
        if orphans:
            log.warning("KIS buffer %s: %d entries in %d spill files of an earlier window; writing them to Redis",
                        self.name, sum(s.unread for s in orphans), len(orphans))
            self._spills.extend(orphans)
        try:
            await self._ensure_group()
            self._run_id = await self._server_run_id()
        except Exception as exc:
            self._redis_failed("start", exc)

    async def sync(self, budget: int | None = None) -> None:
        """Retry held entries and recover from a Redis restart (called between sweeps and at the end).

        :param budget: write at most about this many held entries this call (None: all), so that a
            long catch-up after an outage does not hold up the caller's own work.
        """
        try:
            run_id = await self._server_run_id()
        except Exception as exc:
            self._redis_failed("health check", exc)
            return
        if self._run_id is not None and run_id != self._run_id:
            self.redis_restarts += 1
            self._group_ready = False
            lost = [w for w in self._written if w[1] != run_id]
            log.warning("KIS buffer %s: Redis restarted (run_id %s → %s); writing this window's %d earlier "
                        "entries again", self.name, self._run_id, run_id, len(lost))
            self._forget_written(lambda w: w[1] != run_id)
            self._run_id = run_id
            for fields, _, _, size, records in lost:
                self._hold(fields, size, records)
            self.rewritten += len(lost)
        self._run_id = run_id
        await self._send_held(run_id, budget)

    @property
    def held_entries(self) -> int:
        """Entries Redis has not taken yet (in memory and in spill files)."""
        return len(self._held) + sum(spill.unread for spill in self._spills)

    @property
    def held_records(self) -> int:
        """Records in memory waiting for Redis (those in spill files are counted as entries only)."""
        return self._held_records

    @property
    def memory_bytes(self) -> int:
        """Bytes of entries in memory: held for Redis plus kept for a rewrite (see :class:`BufferLimits`)."""
        return self._held_bytes + self._written_bytes

    def hand_over(self) -> dict:
        """End of the window with entries Redis never took: put them all in the spill file and let the
        files go; the event's part that says where they are (no entries, whatever their number)."""
        held = list(self._held)
        self._clear_held()
        for entry in held:  # one by one: as many as the spill file's limit allows
            self._spill([entry])
        self._written.clear()
        self._written_bytes = self._written_records = 0
        files, entries = [], 0
        for spill in self._spills:
            if spill.unread:
                files.append(str(spill.path))
                entries += spill.unread
                spill.close()
            else:
                spill.finish()
        self._spills.clear()
        self._own_spill = None
        if files:
            log.warning("KIS buffer %s: Redis still unavailable; %d entries left in %s for the drain", self.name,
                        entries, ", ".join(files))
        return {"spill_files": files, "spill_host": socket.gethostname(), "spill_entries": entries}

    def counters(self) -> dict:
        """The buffer's counters for the event and the window's stats."""
        return {"redis_errors": self.redis_errors, "redis_restarts": self.redis_restarts, "rewritten": self.rewritten,
                "spilled": self.spilled, "unspilled": self.unspilled, "dropped_entries": self.dropped_entries,
                "dropped_records": self.dropped_records, "unprotected": self.unprotected,
                "buffer_peak_bytes": self.peak_bytes}

    # ---------------------------------------------------------------- writing
    async def offer(self, kind: str, row: dict) -> bool:
        """Buffer ``row`` unless it equals the previous answer for its ticker; True if buffered."""
        ticker = row["ticker"]
        digest = fingerprint(row)
        last_key = redis_client.key("kis", "last", kind, ticker)
        previous = self._last.get((kind, ticker))
        if previous is None and not self.held_entries:
            try:
                previous = await self.redis.get(last_key)
            except Exception as exc:
                self._redis_failed("dedupe lookup", exc)
        if previous == digest:
            self.dedupe_hits += 1
            return False
        self._last[(kind, ticker)] = digest
        fields = {"kind": kind, "window": str(self.window), "data": encode_row(row)}
        size = entry_size(fields)
        self.buffered += 1
        if self.held_entries:  # keep order: while Redis is out, everything queues behind
            self._hold(fields, size, 1)
            return True
        try:
            if not self._group_ready:
                await self._ensure_group()
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.stream, fields)
                pipe.set(last_key, digest, ex=self.dedupe_ttl)
                entry_id, _ = await pipe.execute()
            self._remember(fields, self._run_id, entry_id, size, 1)
        except Exception as exc:
            self._hold(fields, size, 1)
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
        run_id = self._run_id
        return self._forget_written(lambda w: w[1] == run_id and _id_key(w[2]) <= bound)

    # ---------------------------------------------------------------- internals
    def _hold(self, fields: dict, size: int, records: int) -> None:
        """Keep an entry for Redis: in memory while it fits (behind any spilled ones), else in the spill file."""
        if not self._spills and self._make_room(size, records):
            self._held.append((fields, size, records))
            self._held_bytes += size
            self._held_records += records
            self.peak_bytes = max(self.peak_bytes, self.memory_bytes)
        else:
            self._spill([(fields, size, records)])

    def _make_room(self, size: int, records: int) -> bool:
        """Whether an entry of ``size`` bytes / ``records`` records fits in memory, letting go of
        entries kept for a rewrite (oldest first) if that makes it fit."""
        limits = self.limits
        while self._written and (self.memory_bytes + size > limits.max_bytes
                                 or self._held_records + self._written_records + records > limits.max_records):
            _, _, _, old_size, old_records = self._written.popleft()
            self._written_bytes -= old_size
            self._written_records -= old_records
            self.unprotected += 1
        return (self._held_bytes + size <= limits.max_bytes
                and self._held_records + records <= limits.max_records)

    def _spill(self, entries: list[tuple[dict, int, int]]) -> None:
        """Append entries to this buffer's spill file; count them as dropped if it cannot take them."""
        if not entries:
            return
        try:
            if self._own_spill is None:
                self._own_spill = SpillFile.create(self.limits.spill_dir, self.stream, self.window)
                self._spills.append(self._own_spill)
                log.warning("KIS buffer %s: memory cap reached (%d records / %d bytes); spilling to %s", self.name,
                            self.limits.max_records, self.limits.max_bytes, self._own_spill.path)
            self._own_spill.append([encode_spilled(fields, records) for fields, _, records in entries],
                                   self.limits.spill_max_bytes)
            self.spilled += len(entries)
        except OSError as exc:  # SpillFull, a full disk, a folder that cannot be made
            self.dropped_entries += len(entries)
            self.dropped_records += sum(records for _, _, records in entries)
            if self.dropped_entries == len(entries) or not isinstance(exc, SpillFull):
                log.error("KIS buffer %s: entries dropped — Redis, memory and the spill file all refused them "
                          "(%s); %d records lost so far", self.name, exc, self.dropped_records)

    def _refill(self) -> None:
        """Move the oldest spilled entries back into memory, up to the cap."""
        while self._spills and not self._held:
            spill = self._spills[0]
            room_bytes = max(1, self.limits.max_bytes - self.memory_bytes)
            room_records = max(1, self.limits.max_records - self._held_records - self._written_records)
            try:
                entries, bad = spill.read(room_records, room_bytes)
            except OSError as exc:
                log.error("KIS buffer %s: spill file %s unreadable (%s); its %d entries are lost", self.name,
                          spill.path, exc, spill.unread)
                self.dropped_entries += spill.unread
                entries, bad, spill.unread = [], 0, 0
            self.dropped_entries += bad
            for fields, size, records in entries:
                size = entry_size(fields)
                self._held.append((fields, size, records))
                self._held_bytes += size
                self._held_records += records
            self.unspilled += len(entries)
            self.peak_bytes = max(self.peak_bytes, self.memory_bytes)
            if not spill.unread:
                self._spills.popleft()
                spill.finish()
                if spill is self._own_spill:
                    self._own_spill = None

    async def _send_held(self, run_id: str, budget: int | None) -> None:
        sent = 0
        while budget is None or sent < budget:
            if not self._held:
                self._refill()
            if not self._held:
                return
            chunk = list(islice(self._held, SEND_CHUNK))
            try:
                await self._ensure_group()
                async with self.redis.pipeline(transaction=False) as pipe:
                    for fields, _, _ in chunk:
                        pipe.xadd(self.stream, fields)
                    ids = await pipe.execute()
            except Exception as exc:
                self._redis_failed("retry", exc)
                return
            for (fields, size, records), entry_id in zip(chunk, ids):
                self._held.popleft()  # entries held meanwhile went behind: the chunk is still the head
                self._held_bytes -= size
                self._held_records -= records
                self._remember(fields, run_id, entry_id, size, records)
            sent += len(chunk)
            if not self.held_entries:
                log.warning("KIS buffer %s: held entries written after a Redis outage (%d spilled, %d dropped)",
                            self.name, self.spilled, self.dropped_entries)

    def _remember(self, fields: dict, run_id: str | None, entry_id: str, size: int, records: int) -> None:
        """Keep a written entry for a rewrite after a restart, within the cap (see :meth:`_make_room`)."""
        self._make_room(size, records)
        self._written.append((fields, run_id, entry_id, size, records))
        self._written_bytes += size
        self._written_records += records
        self.peak_bytes = max(self.peak_bytes, self.memory_bytes)

    def _forget_written(self, forget) -> int:
        kept = deque(w for w in self._written if not forget(w))
        dropped = len(self._written) - len(kept)
        self._written = kept
        self._written_bytes = sum(w[3] for w in kept)
        self._written_records = sum(w[4] for w in kept)
        return dropped

    def _clear_held(self) -> None:
        self._held.clear()
        self._held_bytes = self._held_records = 0

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
            log.warning("KIS buffer %s: Redis %s failed (%s); collecting goes on, %d entries held (%d bytes in memory, "
                        "%d spilled) [%d Redis errors so far]", self.name, what, exc, self.held_entries,
                        self.memory_bytes, self.spilled, self.redis_errors)


class PushBuffer(StreamBuffer):
    """Writer side for the WebSocket push: every record is kept (no dedupe), many per entry.

    At thousands of records a second one entry per record would cost a Redis round trip each;
    instead :meth:`add` collects records per kind in memory and :meth:`flush` (called by the
    trigger every few tens of milliseconds) writes one entry per kind — ``data`` is then a JSON
    list of records. Held entries, the memory cap and spill file, the Redis-restart rewrite and
    :meth:`forget_acknowledged` are those of :class:`StreamBuffer`. Records are what KIS pushed
    (``ws_trade``, ``ws_book``, ``ws_raw``); a ``ws_stats`` entry counts as an entry of no records.
    """

    def __init__(self, redis, name: str, window: int, limits: BufferLimits | None = None) -> None:
        super().__init__(redis, name, window, dedupe_ttl=1, limits=limits)
        self._batch: dict[str, list] = {}
        self.batched = 0  # records added but not yet flushed
        self.entries = 0

    def add(self, kind: str, record) -> None:
        """Collect a record for the next flush; past :data:`MAX_BATCH` records (the loop is too busy
        to flush) the batch is encoded and held at once, so it never grows with the stall."""
        self._batch.setdefault(kind, []).append(record)
        self.buffered += 1
        self.batched += 1
        if self.batched >= MAX_BATCH:
            for entry in self._encode_batch():
                self._hold(*entry)

    async def flush(self) -> None:
        """Write the collected records (one entry per kind); held while Redis is out."""
        if not self._batch:
            return
        entries = self._encode_batch()
        if self.held_entries:  # keep order: while Redis is out, everything queues behind
            for entry in entries:
                self._hold(*entry)
            return
        try:
            if not self._group_ready:
                await self._ensure_group()
            async with self.redis.pipeline(transaction=False) as pipe:
                for fields, _, _ in entries:
                    pipe.xadd(self.stream, fields)
                ids = await pipe.execute()
            for (fields, size, records), entry_id in zip(entries, ids):
                self._remember(fields, self._run_id, entry_id, size, records)
            self.entries += len(entries)
        except Exception as exc:
            for entry in entries:
                self._hold(*entry)
            self._redis_failed("write", exc)

    def _encode_batch(self) -> list[tuple[dict, int, int]]:
        """The collected records as entries (one per kind), the batch emptied."""
        import json

        batch, self._batch, self.batched = self._batch, {}, 0
        entries = []
        for kind, records in batch.items():
            fields = {"kind": kind, "window": str(self.window), "data": json.dumps(records, separators=(",", ":"))}
            entries.append((fields, entry_size(fields), 0 if kind == "ws_stats" else len(records)))
        return entries


def entry_size(fields: dict) -> int:
    """What an entry costs in memory, as the byte cap counts it (values plus :data:`ENTRY_OVERHEAD`)."""
    return ENTRY_OVERHEAD + sum(len(value) for value in fields.values())


def _id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as a comparable pair."""
    ms, _, seq = str(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _before(entry_id: str) -> tuple[int, int]:
    """The largest id below ``entry_id`` (ids compare as pairs, so (ms, seq - 1) or (ms - 1, max))."""
    ms, seq = _id_key(entry_id)
    return (ms, seq - 1) if seq > 0 else (ms - 1, 2 ** 63)
