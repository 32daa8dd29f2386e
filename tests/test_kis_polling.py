"""The polling trigger, the Redis stream buffer and the drain through the batched hook.

Real Redis (the shared server under the session's key prefix, or a private ``redis-server`` for
the restart test), real PostgreSQL (the session's throwaway market database), the fake KIS server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from krxflow.intraday import drain as kis_drain
from krxflow.triggers.kis_poll import KisPollTrigger
from krxflow.triggers.running import first_event
from krxflow.sample.kis_server import FakeKis, FakeKisThread
from krxflow.market_time import kst_today
from tests.fakes.private_redis import private_redis  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
TICKERS = ["005930", "000660", "035420", "005380", "051910", "000001", "999999"]  # 000001 halted, 999999 unknown


@pytest.fixture
def kis(monkeypatch, redis_client):
    with FakeKisThread(FakeKis(rate=18, move_probability=0.5)) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        yield srv


def window_end(seconds: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).isoformat()


async def run_trigger(trigger: KisPollTrigger) -> dict:
    """Run a trigger the way the triggerer does: rebuilt from its serialized form, first event wins."""
    return await first_event(trigger)


def table_count(pg, table: str) -> int:
    from psycopg import sql

    return pg.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


# ------------------------------------------------------------------ trigger + drain
async def test_trigger_buffers_a_window_and_drain_writes_it(kis, clean_db, redis_client):
    payload = await run_trigger(KisPollTrigger(tickers=TICKERS, stream="t-window", window=1, window_end=window_end(3)))
    assert payload["status"] == "ok", payload
    assert payload["throttles"] == 0 and payload["errors"] == 0
    assert payload["held_entries"] == 0 and payload["spill_files"] == []
    assert payload["requests"] == payload["successes"] > 0
    assert payload["unknown"] >= 1 and payload["halted"] >= 1
    assert payload["dedupe_hits"] > 0  # the halted stock never changes
    received = payload["quotes_received"] + payload["books_received"]
    assert payload["buffered"] == received - payload["dedupe_hits"]
    assert kis_drain.pending_count("t-window") == payload["buffered"] + 1  # + the window summary

    result = kis_drain.drain("t-window")
    assert result.rows_written == payload["buffered"] and result.rejected == 0
    assert table_count(clean_db, "intraday_quotes") == result.quotes_written
    assert table_count(clean_db, "order_books") == result.books_written
    assert kis_drain.pending_count("t-window") == 0
    assert clean_db.execute("SELECT count(*) FROM intraday_quotes WHERE ticker = '999999'").fetchone()[0] == 0
    assert clean_db.execute("SELECT bool_and(halted) FROM intraday_quotes WHERE ticker = '000001'").fetchone()[0]
    row = clean_db.execute("SELECT price, change_rate FROM intraday_quotes WHERE ticker = '005930' LIMIT 1").fetchone()
    assert row[0] > 0

    stats = clean_db.execute("SELECT status, rows_written, details FROM load_stats "
                             "WHERE operation = 'kis_poll_window'").fetchall()
    assert len(stats) == 1
    status, rows_written, details = stats[0]
    assert status == "ok" and rows_written == result.rows_written
    for name in ("requests", "successes", "throttles", "retries", "dedupe_hits", "rows_written", "sweep_seconds"):
        assert name in details, name
    assert details["rows_written"] == result.rows_written and details["requests"] == payload["requests"]
    assert kis_drain.discard_if_empty("t-window") and not redis_client.exists(kis_drain.stream_key("t-window"))


async def test_unchanged_quotes_are_deduped_across_windows(kis, clean_db, redis_client):
    kis.fake.move_probability = 0.0  # nothing trades: every answer after the first is a repeat
    first = await run_trigger(KisPollTrigger(tickers=TICKERS[:3], stream="t-dedupe", window=1,
                                             window_end=window_end(1.5), order_books=False))
    second = await run_trigger(KisPollTrigger(tickers=TICKERS[:3], stream="t-dedupe", window=2,
                                              window_end=window_end(1.5), order_books=False))
    assert first["buffered"] == 3
    assert second["buffered"] == 0 and second["dedupe_hits"] == second["quotes_received"] > 0
    assert kis_drain.drain("t-dedupe").quotes_written == 3


async def test_bad_credentials_end_the_window_with_an_error_event(kis, monkeypatch, redis_client):
    monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", kis.connection_json(appsecret="wrong-secret"))
    payload = await run_trigger(KisPollTrigger(tickers=TICKERS, stream="t-bad", window=1, window_end=window_end(30)))
    assert payload["status"] == "error" and "EGW00105" in payload["message"]
    assert payload["seconds"] < 30  # stopped at once instead of polling into a wall
    assert kis.fake.counts["token_requests"] == 1


# ------------------------------------------------------------------ killed task
KILLED_DRAIN = """
    import os, sys
    from krxflow.intraday import drain
    from krxflow.hooks import BatchedPostgresHook

    mode = sys.argv[1]

    class DyingHook(BatchedPostgresHook):
        def append(self, table, data, columns=None, **kw):
            result = super().append(table, data, columns=columns, **kw)
            if mode == "mid-write" and table == "order_books":
                os._exit(9)  # quotes committed, books committed, nothing acknowledged
            return result

    def die_before_ack(ids):
        if mode == "before-ack":
            os._exit(9)

    drain.drain(sys.argv[2], hook=DyingHook(), chunk=int(sys.argv[3]), on_committed=die_before_ack)
    os._exit(0)
"""


@pytest.mark.parametrize("mode", ["mid-write", "before-ack"])
async def test_task_killed_after_the_trigger_fired_rerun_writes_every_quote_once(kis, clean_db, redis_client, mode):
    stream = f"t-killed-{mode}"
    payload = await run_trigger(KisPollTrigger(tickers=TICKERS, stream=stream, window=7, window_end=window_end(2.5)))
    buffered = payload["buffered"]
    assert buffered > 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", textwrap.dedent(KILLED_DRAIN), mode, stream,
                                                    "100000"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert kis_drain.pending_count(stream) == buffered + 1  # everything still pending after the kill

    rerun = kis_drain.drain(stream)  # the retry
    assert rerun.entries == buffered + 1
    quotes = table_count(clean_db, "intraday_quotes")
    books = table_count(clean_db, "order_books")
    assert quotes + books == buffered  # every buffered quote and book exactly once
    distinct = clean_db.execute("SELECT count(DISTINCT (ticker, ts)) FROM intraday_quotes").fetchone()[0]
    assert distinct == quotes
    assert kis_drain.pending_count(stream) == 0
    windows = clean_db.execute("SELECT count(*) FROM load_stats WHERE operation = 'kis_poll_window' "
                               "AND details ->> 'stream' = %s", (stream,)).fetchone()[0]
    assert windows == 1
    again = kis_drain.drain(stream)
    assert again.entries == 0


# ------------------------------------------------------------------ Redis restarted mid-window
async def test_redis_restarted_mid_window_polling_goes_on_without_loss_or_duplicates(kis, clean_db,
                                                                                     private_redis):  # noqa: F811
    from krxflow import redis_client

    trigger = KisPollTrigger(tickers=TICKERS, stream="t-restart", window=3, window_end=window_end(6),
                             redis_conn_id="redis_private")
    task = asyncio.create_task(run_trigger(trigger))
    await asyncio.sleep(2.0)
    await asyncio.to_thread(private_redis.stop)  # everything in it is gone (no persistence)
    await asyncio.sleep(1.0)
    requests_during_outage = kis.fake.counts["requests"]
    await asyncio.to_thread(private_redis.start)
    payload = await task

    assert payload["status"] == "warning"
    assert payload["redis_restarts"] >= 1 or payload["redis_errors"] >= 1
    assert payload["rewritten"] > 0  # entries from before the restart were written again
    assert kis.fake.counts["requests"] > requests_during_outage  # polling went on
    assert payload["held_entries"] == 0 and payload["spill_files"] == [] and payload["summary_buffered"]

    client = redis_client.client("redis_private")
    result = kis_drain.drain("t-restart", client=client)
    received = payload["quotes_received"] + payload["books_received"]
    assert result.rows_written == received - payload["dedupe_hits"]  # nothing lost
    for table in ("intraday_quotes", "order_books"):
        total, distinct = clean_db.execute(
            f"SELECT count(*), count(DISTINCT (ticker, ts)) FROM {table}").fetchone()  # noqa: S608 (fixed names)
        assert total == distinct
    status, error = clean_db.execute("SELECT status, error FROM load_stats WHERE operation = 'kis_poll_window'"
                                     ).fetchone()
    assert status == "warning" and "Redis" in error
    client.close()


# ------------------------------------------------------------------ sample mode and the demo run
def test_sample_quotes_start_from_the_sample_close_and_stay_within_its_limits(clean_db, redis_client, monkeypatch):
    """Sample mode: the fake quotes each sample ticker from its last daily close (as loaded into
    daily_prices by the sample source), within KRX's ±30 % limits on the tick grid."""
    from krxflow.calendar import previous_trading_day
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.krx import loading
    from krxflow.sample.market import SampleSource
    from krxflow.sample.kis_server import price_limits, tick_size

    source = SampleSource(tickers=60)
    last_close_day = previous_trading_day(kst_today())  # KST date; the fake and the loader agree
    loading.load_daily_prices(source, last_close_day, hook=BatchedPostgresHook())
    closes = dict(clean_db.execute("SELECT ticker, close FROM daily_prices WHERE trade_date = %s",
                                   (last_close_day,)).fetchall())
    tickers = sorted(closes)[:15]
    assert "005930" in tickers
    with FakeKisThread(FakeKis(rate=18, move_probability=1.0, sample=True, halted=set())) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        # Windows of 4 s until every ticker was quoted a few times over (each quote moves it: its high
        # and low are then real moves), however slowly a loaded machine polls; 60 s is a hang guard.
        received, deadline = 0, time.monotonic() + 60
        for window in itertools.count(1):
            payload = asyncio.run(run_trigger(KisPollTrigger(tickers=tickers, stream="t-sample", window=window,
                                                             window_end=window_end(4), order_books=False)))
            assert payload["status"] == "ok", payload
            received += payload["quotes_received"]
            if received > 3 * len(tickers) or time.monotonic() > deadline:
                break
        assert received > 3 * len(tickers), (received, window)
        for ticker in tickers:
            state = srv.fake.tickers[ticker]
            assert state.base == closes[ticker], ticker
            lower, upper = price_limits(state.base)
            assert lower <= state.low <= state.price <= state.high <= upper
            assert lower % tick_size(lower) == 0 and upper % tick_size(upper) == 0
            assert lower >= state.base * 0.7 and upper <= state.base * 1.3
    kis_drain.drain("t-sample")
    rows = clean_db.execute("SELECT q.ticker, q.price, q.change, d.close FROM intraday_quotes q "
                            "JOIN daily_prices d ON d.ticker = q.ticker AND d.trade_date = %s",
                            (last_close_day,)).fetchall()
    assert {r[0] for r in rows} == set(tickers)
    # the Intraday dashboard's change is against the Stock dashboard's last close, within the limits
    assert all(price - change == close and 0.7 * close <= price <= 1.3 * close for _, price, change, close in rows)


@pytest.mark.integration
def test_the_demo_run_on_a_busy_loop_is_never_throttled(clean_db, redis_client, monkeypatch):
    """``make run``'s kis_intraday demo (DEMO_RUN: 20 tickers) for two windows of 15 s (the demo runs
    four of 30 s; what matters is a window starting after a drain) through the sensor's path, on an
    event loop blocked 0.3 s every 1.7 s like a busy triggerer: no EGW00201, and every window's
    load_stats row is ok (before the limiter gave up late slots: ~29 throttles
    in 16 s of this; before it confirmed slots once a call had its connection, a stall while a
    window's first calls connected could still send one late: 1 throttle on a loaded machine).

    The budget is still used: the calls served are counted against the slots that passed while
    the loop could run (:class:`~tests.fakes.loop_gaps.LoopGaps`), not against the wall clock."""
    from krxflow.kis.ratelimit import RateLimiter
    from krxflow.kis.session import DEMO_RUN
    from krxflow.sample.market import SampleMarket
    from tests.fakes.kis_session import run_session
    from tests.fakes.loop_gaps import LoopGaps

    tickers = SampleMarket(100).tickers[:DEMO_RUN["watchlist_size"]]
    loop = LoopGaps(longer_than=0.025)  # ~ the limiter's slack at 18/s
    windows, window_seconds = 2, DEMO_RUN["window_seconds"] / 2
    with FakeKisThread(FakeKis(rate=18, sample=True)) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        payloads = asyncio.run(loop.around(run_session(tickers, "t-demo", windows * window_seconds, window_seconds,
                                                       stall=0.3)))
        stats = srv.fake.stats()
    assert len(payloads) == windows
    assert stats.get("throttled", 0) == 0 and stats["max_in_window"] <= 18
    assert sum(p["throttles"] for p in payloads) == 0 and sum(p["errors"] for p in payloads) == 0
    assert sum(p["late_slots"] for p in payloads) > 0  # the stalls were real
    # the windows' polling time the loop could use (the drains between windows are left out), its
    # slots less one per gap (the first slot after a gap may be met late): 75 % of them served
    interval = RateLimiter(None, "any", rate=18).interval
    polling = sum(p["seconds"] for p in payloads) - loop.total
    usable = polling / interval - len(loop.gaps)
    assert stats["served"] >= 0.75 * usable, (stats["served"], usable, len(loop.gaps), loop.total)
    windows = clean_db.execute("SELECT status, error FROM load_stats WHERE operation = 'kis_poll_window'").fetchall()
    assert len(windows) == len(payloads) and all(w == ("ok", None) for w in windows), windows
