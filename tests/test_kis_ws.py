"""KIS realtime: the WebSocket trigger, its protocol cases against the fake, the push buffer and the drain.

Real Redis (the session's namespace, or a private ``redis-server`` for the restart test), real
PostgreSQL (the session's throwaway market database), the fake KIS realtime server
(:mod:`krxflow.sample.kis_ws_server`) over loopback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from krxflow.intraday import drain as kis_drain
from krxflow.kis import realtime
from krxflow.triggers.kis_ws import KisStreamTrigger, registrations
from krxflow.triggers.running import first_event
from krxflow.sample.kis_ws_server import FakeRealtime, FakeRealtimeThread
from tests.fakes.private_redis import private_redis  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
TICKERS = ["005930", "000660", "035420", "005380", "051910"]
OFFICIAL_TRADE = ("0|H0STCNT0|001|005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
                  "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^"
                  "092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100")


@pytest.fixture
def ws_db(clean_db):
    clean_db.execute("TRUNCATE trades, minute_bars")
    return clean_db


def fake(**options) -> FakeRealtimeThread:
    options.setdefault("ping_interval", 0.5)
    return FakeRealtimeThread(FakeRealtime(**options))


def pause_push_before(srv: FakeRealtimeThread, seconds: float) -> None:
    """Stop the fake's push ``seconds`` from now, so every record it sent is read before the window ends."""
    srv.loop.call_soon_threadsafe(srv.loop.call_later, seconds, setattr, srv.realtime, "rate", 0.0)


def window_end(seconds: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).isoformat()


async def run_trigger(trigger: KisStreamTrigger) -> dict:
    """Run a trigger the way the triggerer does: rebuilt from its serialized form, first event wins."""
    return await first_event(trigger)


def trigger(stream: str, seconds: float, trades=TICKERS, books=TICKERS[:2], **kwargs) -> KisStreamTrigger:
    kwargs.setdefault("send_interval", 0.0)
    kwargs.setdefault("stats_seconds", 1.0)
    kwargs.setdefault("backoff_base", 0.1)
    return KisStreamTrigger(trade_tickers=list(trades), book_tickers=list(books), stream=stream, window=1,
                            window_end=window_end(seconds), **kwargs)


def count(pg, statement: str, *params) -> int:
    return pg.execute(statement, params).fetchone()[0]


# ------------------------------------------------------------------ protocol units
def test_official_sample_frame_parses_to_a_trade_row():
    frame = realtime.split_frame(OFFICIAL_TRADE)
    assert frame.raw_reason is None and frame.tr_id == "H0STCNT0" and len(frame.records) == 1
    row = realtime.trade_row(frame.records[0], 1_686_530_034_000_000)
    assert row["ticker"] == "005930" and row["price"] == 71900 and row["change"] == -100
    assert str(row["change_rate"]) == "-0.14" and row["volume"] == 1 and row["cum_volume"] == 3052507
    assert row["side"] == "buy" and row["ask_price_1"] == 71900 and row["bid_price_1"] == 71800
    assert row["ts"].isoformat() == "2023-06-12T09:33:54+09:00" and row["halted"] is False


def test_multi_record_frame_splits_and_odd_widths_stay_raw():
    payload = OFFICIAL_TRADE.split("|", 3)[3]
    other = payload.replace("005930", "000660", 1)
    two = realtime.split_frame(f"0|H0STCNT0|002|{payload}^{other}")
    assert [r[0] for r in two.records] == ["005930", "000660"] and all(len(r) == 46 for r in two.records)
    wider = realtime.split_frame(f"0|H0STCNT0|001|{payload}^2")  # the announced 47th field
    assert wider.records == [] and "47 fields" in wider.raw_reason
    short = realtime.split_frame(f"0|H0STCNT0|002|{payload}")  # count says 2, one record's worth
    assert short.records == [] and short.raw_reason
    assert realtime.split_frame("1|H0STCNI0|001|abc").raw_reason == "encrypted frame"
    assert realtime.split_frame("0|H0XXXXX0|001|a^b").raw_reason == "unknown tr_id"


def test_registrations_follow_the_venue_and_the_cap():
    regs = registrations("J", [f"{i:06d}" for i in range(30)], [f"{i:06d}" for i in range(30)], cap=40)
    assert len(regs) == 40 and regs[0] == ("H0STCNT0", "000000") and regs[-1] == ("H0STASP0", "000009")
    assert registrations("UN", ["005930"], ["005930"])[1] == ("H0UNASP0", "005930")


# ------------------------------------------------------------------ trigger + drain end to end
async def test_push_is_buffered_and_drained_into_trades_and_order_books(monkeypatch, redis_client, ws_db):
    with fake(rate=400, records_per_frame=3) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        pause_push_before(srv, 2.0)
        payload = await run_trigger(trigger("w-basic", 2.5))
        stats = srv.realtime.stats()
    assert payload["status"] == "ok", payload
    assert payload["registered"] == payload["registrations"] == 7
    assert payload["reconnects"] == 0 and payload["unparsed"] == 0
    assert payload["held_entries"] == 0 and payload["spill_files"] == []
    assert payload["trades"] == stats["trades_sent"] > 0 and payload["books"] == stats["books_sent"] > 0
    assert payload["frames"] == stats["frames_sent"] < stats["records_sent"]  # multi-record frames arrived
    assert payload["pingpongs"] >= 2 and stats["pongs_received"] >= 2  # PINGPONG answered with a pong frame
    assert stats["approvals"] == 1 and payload["approval_keys_issued"] == 1

    result = kis_drain.drain("w-basic")
    assert result.trades_written == stats["trades_sent"] and result.books_written == stats["books_sent"]
    assert result.rejected == 0 and result.unparsed == 0
    assert count(ws_db, "SELECT count(*) FROM trades") == stats["trades_sent"]
    assert count(ws_db, "SELECT count(*) FROM order_books") == stats["books_sent"]
    # several trades in one second are kept apart; volumes add up per ticker
    assert count(ws_db, "SELECT max(n) FROM (SELECT count(*) n FROM trades GROUP BY ticker, ts) t") > 1
    bad = count(ws_db, "SELECT count(*) FROM (SELECT ticker, max(cum_volume) - min(cum_volume) d, "
                       "sum(volume) - (array_agg(volume ORDER BY cum_volume))[1] s FROM trades GROUP BY ticker) t "
                       "WHERE d <> s")
    assert bad == 0
    lag = count(ws_db, "SELECT max(extract(epoch FROM received_at - ts)) FROM trades")
    assert 0 <= lag < 5
    rows = ws_db.execute("SELECT status, details FROM load_stats WHERE operation = 'kis_ws_stats' "
                         "ORDER BY (details->>'seq')::int").fetchall()
    assert rows and rows[-1][1]["final"] is True
    assert sum(d["messages"] for _, d in rows) == payload["messages"]
    assert rows[-1][1]["lag_p99_s"] is not None
    assert kis_drain.pending_count("w-basic") == 0


async def test_cap_refusal_is_counted_and_reported(monkeypatch, redis_client, ws_db):
    with fake(rate=50, cap=4) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        payload = await run_trigger(trigger("w-cap", 1.5, cap=40))
        stats = srv.realtime.stats()
    assert payload["status"] == "warning" and payload["registered"] == 4
    assert len(payload["refused"]) == 3 == stats["refused_cap"]  # OPSP0008 MAX SUBSCRIBE OVER
    assert payload["refused"][0] == f"H0STASP0:{TICKERS[0]}" or payload["refused"][0].startswith("H0ST")


async def test_a_session_stuck_past_its_window_is_cut_at_a_fixed_bound(monkeypatch, redis_client, ws_db):
    """Whatever the session awaits after the window's end (here: a read that never returns), the trigger ends."""
    from krxflow.kis.ws import RealtimeSession

    async def never_quiet(self, reader, limit, quiet=0.5):
        await asyncio.Event().wait()

    monkeypatch.setattr(RealtimeSession, "_read_what_is_in_flight", never_quiet)
    with fake(rate=50) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        started = time.monotonic()
        payload = await asyncio.wait_for(run_trigger(trigger("w-stuck", 1.0)), timeout=60)
        took = time.monotonic() - started
    bound = 2.0 + 2.0 + RealtimeSession.OVERRUN_GRACE_SECONDS  # in-flight read + close + grace
    assert payload["overran"] is True and payload["status"] == "warning"
    assert took < 1.0 + bound + 30  # ended at the bound (plus the flush), not at pytest's timeout
    result = kis_drain.drain("w-stuck")
    assert result.trades_written == payload["trades"] > 0  # what arrived before the cut is kept


async def test_trigger_trims_to_its_own_cap(monkeypatch, redis_client, ws_db):
    many = [f"{100000 + i:06d}" for i in range(50)]
    with fake(rate=20) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        payload = await run_trigger(trigger("w-trim", 1.5, trades=many[:30], books=many[:30]))
        stats = srv.realtime.stats()
    assert payload["registrations"] == 40 and payload["registered"] == 40 and stats["subscribed"] == 40
    assert stats.get("refused_cap", 0) == 0 and payload["refused"] == []


async def test_dropped_connection_reconnects_and_resubscribes(monkeypatch, redis_client, ws_db):
    with fake(rate=300, records_per_frame=2) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        task = asyncio.create_task(run_trigger(trigger("w-drop", 4.0)))
        await asyncio.sleep(1.5)
        assert srv.call(srv.realtime.drop(abrupt=True)) == 1  # TCP abort: close code 1006
        payload = await task
        stats = srv.realtime.stats()
    assert payload["reconnects"] == 1 and payload["connects"] == 2
    assert stats["connections"] == 2 and stats["subscribed"] == 2 * 7  # every registration sent again
    assert stats["approvals"] == 1  # the cached approval key is reused
    assert payload["registered"] == 7 and payload["status"] == "ok"
    result = kis_drain.drain("w-drop")
    # what the fake pushed after the reconnect arrived too
    late = count(ws_db, "SELECT count(*) FROM trades WHERE received_at > now() - interval '2 seconds'")
    assert late > 0 and result.trades_written == payload["trades"]


async def test_field_count_change_is_kept_raw_and_counted(monkeypatch, redis_client, ws_db):
    with fake(rate=200, extra_trade_field=True) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        pause_push_before(srv, 1.0)
        payload = await run_trigger(trigger("w-fields", 1.5))
        stats = srv.realtime.stats()
    assert payload["status"] == "warning"
    assert payload["unparsed"] == stats["sent_by_tr"]["H0STCNT0"] > 0 and payload["trades"] == 0
    assert payload["books"] == stats["books_sent"] > 0  # books keep their layout and keep flowing
    result = kis_drain.drain("w-fields")
    assert result.unparsed == payload["unparsed"] and result.trades_written == 0
    assert count(ws_db, "SELECT count(*) FROM trades") == 0  # never mis-parsed
    raw = ws_db.execute("SELECT key, payload FROM market_data WHERE source = 'kis_ws' LIMIT 1").fetchone()
    assert raw[0].startswith("H0STCNT0:47 fields") and raw[1]["frame"].startswith("0|H0STCNT0|001|")
    assert count(ws_db, "SELECT count(*) FROM market_data WHERE source = 'kis_ws'") == payload["unparsed"]
    problems = ws_db.execute("SELECT error FROM load_stats WHERE operation = 'kis_ws_stats' AND status = 'warning'"
                             ).fetchall()
    assert any("unexpected layout" in p[0] for p in problems)


async def test_unanswered_pingpong_gets_dropped_by_the_fake_but_ours_are_answered(monkeypatch, redis_client, ws_db):
    from websockets.asyncio.client import connect

    with fake(rate=0, ping_interval=0.3, pong_timeout=0.5) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        payload = await run_trigger(trigger("w-ping", 2.5))
        assert payload["reconnects"] == 0 and payload["pingpongs"] >= 4
        async with connect(srv.ws_url) as mute:  # a client that never answers PINGPONG
            with pytest.raises(Exception):
                for _ in range(20):
                    await asyncio.wait_for(mute.recv(), 2)
        assert srv.realtime.stats()["dropped_no_pong"] == 1


async def test_fake_answers_every_control_case():
    from websockets.asyncio.client import connect

    with fake(rate=0, cap=2) as srv:
        status, body = srv.realtime.approve({"appkey": "PSfakeKrxflowDemoAppKey0000000000000",
                                             "secretkey": "fake-krxflow-demo-appsecret"})
        key = body["approval_key"]
        async with connect(srv.ws_url + "/tryitout") as ws:
            async def ask(tr_type, tr_key, approval=key):
                await ws.send(realtime.subscription_message(approval, "H0STCNT0", tr_key, tr_type))
                return realtime.parse_control(await ws.recv())

            assert (await ask("1", "005930")).msg_cd == "OPSP0000"
            assert (await ask("1", "005930")).msg_cd == "OPSP0002"
            assert (await ask("1", "000660")).msg_cd == "OPSP0000"
            assert (await ask("1", "035420")).msg_cd == "OPSP0008"
            assert (await ask("2", "005930")).msg_cd == "OPSP0001"
            assert (await ask("2", "005930")).msg_cd == "OPSP0003"
            assert (await ask("1", "005930", approval="nope")).msg_cd == "OPSP0011"
            await ws.send("{not json")
            assert realtime.parse_control(await ws.recv()).rt_cd == "9"
            async with connect(srv.ws_url) as second:  # one session per appkey
                await second.send(realtime.subscription_message(key, "H0STCNT0", "005930"))
                assert realtime.parse_control(await second.recv()).msg_cd == "OPSP8996"


async def test_bad_credentials_end_the_window_with_an_error_event(monkeypatch, redis_client):
    with fake(rate=10) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json(appsecret="wrong"))
        payload = await run_trigger(trigger("w-bad", 20))
    assert payload["status"] == "error" and "EGW00105" in payload["message"] and payload["seconds"] < 20


async def test_approval_key_is_shared_between_sessions(monkeypatch, redis_client):
    with fake(rate=10) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        first = await run_trigger(trigger("w-share-1", 0.8))
        second = await run_trigger(trigger("w-share-2", 0.8))
        assert first["approval_keys_issued"] == 1 and second["approval_keys_issued"] == 0
        assert srv.realtime.stats()["approvals"] == 1


# ------------------------------------------------------------------ killed drain, Redis restart
KILLED_DRAIN = """
    import os, sys
    from krxflow.intraday import drain

    def die_before_ack(ids):
        os._exit(9)

    drain.drain(sys.argv[1], on_committed=die_before_ack)
    os._exit(0)
"""


async def test_killed_drain_loses_nothing_and_writes_nothing_twice(monkeypatch, redis_client, ws_db):
    with fake(rate=300, records_per_frame=2) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        pause_push_before(srv, 1.5)
        payload = await run_trigger(trigger("w-killed", 2.0))
        sent = srv.realtime.stats()["records_sent"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", textwrap.dedent(KILLED_DRAIN), "w-killed"],
                                   env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert kis_drain.pending_count("w-killed") == payload["entries"]  # committed, never acknowledged
    rerun = kis_drain.drain("w-killed")
    assert rerun.entries == payload["entries"]
    trades, books = count(ws_db, "SELECT count(*) FROM trades"), count(ws_db, "SELECT count(*) FROM order_books")
    assert trades + books == sent == payload["messages"]
    stats_rows = count(ws_db, "SELECT count(*) FROM load_stats WHERE operation = 'kis_ws_stats'")
    assert stats_rows >= 2 and stats_rows == count(  # each stats entry recorded once despite the rerun
        ws_db, "SELECT count(DISTINCT details->>'seq') FROM load_stats WHERE operation = 'kis_ws_stats'")
    assert kis_drain.pending_count("w-killed") == 0


async def test_redis_restart_mid_window_loses_nothing(monkeypatch, ws_db, private_redis):  # noqa: F811
    from krxflow import redis_client

    with fake(rate=300, records_per_frame=2) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        pause_push_before(srv, 4.5)
        task = asyncio.create_task(run_trigger(trigger("w-restart", 5.0, redis_conn_id="redis_private")))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(private_redis.stop)  # everything in it is gone (no persistence)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(private_redis.start)
        payload = await task
        sent = srv.realtime.stats()["records_sent"]
    assert payload["status"] == "warning" and (payload["redis_errors"] or payload["redis_restarts"])
    assert payload["held_entries"] == 0 and payload["spill_files"] == [] and payload["messages"] == sent
    client = redis_client.client("redis_private")
    result = kis_drain.drain("w-restart", client=client)
    client.close()
    trades, books = count(ws_db, "SELECT count(*) FROM trades"), count(ws_db, "SELECT count(*) FROM order_books")
    assert trades + books == sent  # nothing lost, nothing twice
    assert result.rejected == 0


async def test_follow_drains_while_the_trigger_streams(monkeypatch, redis_client, ws_db):
    with fake(rate=500, records_per_frame=4) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        done = asyncio.Event()
        follower = asyncio.create_task(asyncio.to_thread(kis_drain.follow, "w-follow", until=done.is_set,
                                                         block_ms=100))
        pause_push_before(srv, 2.5)
        streaming = asyncio.create_task(run_trigger(trigger("w-follow", 3.0)))
        while not streaming.done() and not count(ws_db, "SELECT count(*) FROM trades"):
            await asyncio.sleep(0.1)
        drained_while_streaming = not streaming.done()  # rows committed before the window ended (no timing)
        payload = await streaming
        done.set()
        result = await follower
        sent = srv.realtime.stats()["records_sent"]
    assert drained_while_streaming
    assert result.trades_written + result.books_written == sent == payload["messages"]
    assert result.lag_percentile(0.99) is not None  # exchange time → committed row, measured per record
    assert kis_drain.pending_count("w-follow") == 0
    assert count(ws_db, "SELECT count(*) FROM load_stats WHERE operation = 'append'") == 0  # one row per stats entry
    assert count(ws_db, "SELECT count(*) FROM load_stats WHERE operation = 'kis_ws_stats'") >= 3


def test_a_record_with_an_odd_value_is_kept_raw_and_the_others_written(ws_db):
    fields = OFFICIAL_TRADE.split("|", 3)[3].split("^")
    plus = list(fields)
    plus[4], plus[13] = "+100", "3052508"  # a signed positive change: Arrow refuses it, the exact parser doesn't
    odd = list(fields)
    odd[2], odd[13] = "71,9OO", "3052509"  # not a number: never guessed at
    entry = {"kind": "ws_trade", "window": "1", "data": json.dumps([[1_686_530_034_000_001, fields],
                                                                    [1_686_530_034_000_002, plus],
                                                                    [1_686_530_034_000_003, odd]])}
    result = kis_drain.write_entries("w-odd", [entry])
    assert result.trades_written == 2 and result.unparsed == 1 and result.raw_written == 1
    assert ws_db.execute("SELECT change FROM trades WHERE cum_volume = 3052508").fetchone()[0] == 100
    key, payload = ws_db.execute("SELECT key, payload FROM market_data WHERE source = 'kis_ws'").fetchone()
    assert key.startswith("ws_trade:unparsable record") and payload["fields"][2] == "71,9OO"
