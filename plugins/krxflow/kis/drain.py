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
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis.exceptions

from krxflow import cache
from krxflow.kis.buffer import CONSUMER, GROUP, stream_key
from krxflow.kis.parsing import BOOK_COLUMNS, QUOTE_COLUMNS, decode_row
from krxflow.sqlfiles import template

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

    @property
    def rows_written(self) -> int:
        return self.quotes_written + self.books_written

    def as_dict(self) -> dict:
        return {"entries": self.entries, "quotes_in": self.quotes_in, "books_in": self.books_in,
                "quotes_written": self.quotes_written, "books_written": self.books_written,
                "rows_written": self.rows_written, "rejected": self.rejected,
                "windows": [w.get("window") for w in self.windows]}


def ensure_group(client, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def pending_count(name: str, client=None) -> int:
    """Entries of buffer ``name`` not yet acknowledged (delivered-but-unacked plus never delivered)."""
    client = client or cache.client()
    stream = stream_key(name)
    if not client.exists(stream):
        return 0
    ensure_group(client, stream)
    groups = {g["name"]: g for g in client.xinfo_groups(stream)}
    group = groups[GROUP]
    lag = group.get("lag")
    return int(group.get("pending", 0)) + int(lag if lag is not None else client.xlen(stream))


def discard_if_empty(name: str, client=None) -> bool:
    """Delete buffer ``name`` (stream, group) once nothing in it is unacknowledged; True if deleted."""
    client = client or cache.client()
    stream = stream_key(name)
    if not client.exists(stream):
        return True
    if pending_count(name, client):
        return False
    return bool(client.delete(stream))


def drain(name: str, *, hook=None, client=None, chunk: int = 20_000, on_committed=None) -> DrainResult:
    """Write every entry of buffer ``name`` to PostgreSQL, then acknowledge it (see module doc).

    :param hook: a ``BatchedPostgresHook`` (default: one on ``postgres_default``).
    :param client: a synchronous Redis client (default: :func:`krxflow.cache.client`).
    :param chunk: entries per read (and per hook call per table and window).
    :param on_committed: called with the chunk's entry ids after the database commit and before
        the acknowledgement — the point where a killed task leaves work for its rerun (tests).
    """
    if hook is None:
        from krxflow.hooks import BatchedPostgresHook

        hook = BatchedPostgresHook()
    client = client or cache.client()
    stream = stream_key(name)
    ensure_group(client, stream)
    result = DrainResult()
    per_window: dict[int, dict] = defaultdict(lambda: {"rows_written": 0, "rejected": 0, "rows_in": 0})
    while True:
        entries = _read(client, stream, "0", chunk) or _read(client, stream, ">", chunk)
        if not entries:
            break
        ids = [entry_id for entry_id, _ in entries]
        _write_chunk(hook, name, entries, result, per_window)
        if on_committed is not None:
            on_committed(ids)
        with client.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, *ids)
            pipe.xdel(stream, *ids)
            pipe.execute()
        result.entries += len(ids)
    if result.entries:
        log.info("KIS drain %s: %s", name, result.as_dict())
    return result


def _read(client, stream: str, start: str, count: int) -> list[tuple[str, dict | None]]:
    answer = client.xreadgroup(GROUP, CONSUMER, {stream: start}, count=count)
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
    for entry_id, fields in entries:
        if not fields:  # deleted while pending: nothing left to write
            continue
        window = int(fields.get("window", 0))
        kind = fields.get("kind")
        if kind == "quote":
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


def record_window(hook, name: str, summary: dict, written: dict) -> None:
    """One ``load_stats`` row for a polling window (skipped if an earlier drain already wrote it)."""
    with hook.get_conn() as conn:
        already = conn.execute(template("queries/kis/window_logged.sql"),
                               {"stream": name, "window": str(summary.get("window"))}).fetchone()[0]
    if already:
        log.info("KIS drain %s: window %s already recorded", name, summary.get("window"))
        return
    details = {**summary, "stream": name, "window": str(summary.get("window")),
               "rows_written": int(written.get("rows_written", 0)), "recorded_at": time.time()}
    for key in DASHBOARD_KEYS:
        details.setdefault(key, 0)
    problems = []
    if summary.get("redis_errors") or summary.get("redis_restarts"):
        problems.append(f"Redis trouble during the window: {summary.get('redis_errors', 0)} errors, "
                        f"{summary.get('redis_restarts', 0)} restarts, {summary.get('rewritten', 0)} entries rewritten")
    if summary.get("throttles"):
        problems.append(f"{summary['throttles']} EGW00201 throttles")
    if summary.get("errors"):
        problems.append(f"{summary['errors']} failed calls")
    if written.get("rejected"):
        problems.append(f"{written['rejected']} rows rejected by the writer")
    hook.log_stats("intraday_quotes", "kis_poll_window", rows_in=int(written.get("rows_in", 0)),
                   inserted=int(written.get("rows_written", 0)), rejected=int(written.get("rejected", 0)),
                   seconds=float(summary.get("seconds", 0.0)), status="warning" if problems else "ok",
                   error="; ".join(problems) or None, details=details)


def write_entries(name: str, entries: list[dict], *, hook=None) -> DrainResult:
    """Write buffer entries that never reached Redis (handed over in a trigger event) the same way."""
    if hook is None:
        from krxflow.hooks import BatchedPostgresHook

        hook = BatchedPostgresHook()
    result = DrainResult(entries=len(entries))
    per_window: dict[int, dict] = defaultdict(lambda: {"rows_written": 0, "rejected": 0, "rows_in": 0})
    _write_chunk(hook, name, [(f"event-{i}", fields) for i, fields in enumerate(entries)], result, per_window)
    return result
