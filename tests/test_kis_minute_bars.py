"""Minute bars: the fake's two chart TRs as strict as KIS, the paginated fetch, idempotent upserts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.request

import pytest

from krxflow.intraday import minute_bars as minute_bar_loading
from krxflow.kis import minute_bars
from krxflow.kis.config import KisConfig
from krxflow.kis.errors import KisConfigError, KisResponseError
from krxflow.market_time import KST
from krxflow.sample.kis_minute_bars import MinuteBarMarket, day_bars, session_minutes
from krxflow.sample.kis_server import DEMO_APPKEY, DEMO_APPSECRET, FakeKis, FakeKisThread

TODAY = dt.date(2026, 11, 27)  # a Friday
PAST = dt.date(2026, 11, 20)


def fake(env: str = "live", rate: int = 18) -> FakeKis:
    kis = FakeKis(env=env, rate=rate)
    kis.minute_bars = MinuteBarMarket(KST, today=TODAY, now="160000")
    return kis


@pytest.fixture
def server(redis_client):
    with FakeKisThread(fake()) as srv:
        yield srv


@pytest.fixture
def bars_db(clean_db):
    clean_db.execute("TRUNCATE minute_bars")
    return clean_db


def config(url: str, **overrides) -> KisConfig:
    return KisConfig(**{"base_url": url, "appkey": DEMO_APPKEY, "appsecret": DEMO_APPSECRET, "env": "live",
                        "rate": 18, **overrides})


def get(url: str, path: str, tr_id: str, params: dict, token: str) -> tuple[int, dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    request = urllib.request.Request(f"{url}{path}?{query}", headers={
        "authorization": f"Bearer {token}", "appkey": DEMO_APPKEY, "appsecret": DEMO_APPSECRET, "tr_id": tr_id})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def token(url: str) -> str:
    body = json.dumps({"grant_type": "client_credentials", "appkey": DEMO_APPKEY, "appsecret": DEMO_APPSECRET})
    request = urllib.request.Request(url + "/oauth2/tokenP", data=body.encode(), method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())["access_token"]


def test_fake_pages_are_newest_first_and_capped_like_kis(server):
    access = token(server.url)
    _, today = get(server.url, minute_bars.TODAY_PATH, minute_bars.TR_TODAY,
                   {"FID_ETC_CLS_CODE": "", "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930",
                    "FID_INPUT_HOUR_1": "100000", "FID_PW_DATA_INCU_YN": "N"}, access)
    hours = [b["stck_cntg_hour"] for b in today["output2"]]
    assert len(hours) == 30 and hours[0] == "100000" and hours == sorted(hours, reverse=True)
    assert set(today["output2"][0]) == {"stck_bsop_date", "stck_cntg_hour", "stck_prpr", "stck_oprc", "stck_hgpr",
                                        "stck_lwpr", "cntg_vol", "acml_tr_pbmn"}
    assert all(isinstance(v, str) for v in today["output2"][0].values())
    _, past = get(server.url, minute_bars.PAST_PATH, minute_bars.TR_PAST,
                  {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930", "FID_INPUT_HOUR_1": "200000",
                   "FID_INPUT_DATE_1": f"{PAST:%Y%m%d}", "FID_PW_DATA_INCU_YN": "N", "FID_FAKE_TICK_INCU_YN": ""},
                  access)
    assert len(past["output2"]) == 120 and past["output2"][0]["stck_cntg_hour"] == "153000"
    assert {b["stck_bsop_date"] for b in past["output2"]} == {f"{PAST:%Y%m%d}"}


def test_fake_refuses_a_missing_parameter_a_wrong_tr_id_and_bursts(server):
    access = token(server.url)
    full = {"FID_ETC_CLS_CODE": "", "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930",
            "FID_INPUT_HOUR_1": "100000", "FID_PW_DATA_INCU_YN": "N"}
    status, body = get(server.url, minute_bars.TODAY_PATH, minute_bars.TR_TODAY,
                       {k: v for k, v in full.items() if k != "FID_PW_DATA_INCU_YN"}, access)
    assert (status, body["msg_cd"]) == (500, "OPSQ0002")
    status, body = get(server.url, minute_bars.TODAY_PATH, minute_bars.TR_PAST, full, access)
    assert (status, body["msg_cd"]) == (500, "OPSQ9999")
    answers = [get(server.url, minute_bars.TODAY_PATH, minute_bars.TR_TODAY, full, access)[1]["rt_cd"]
               for _ in range(25)]
    assert answers.count("0") <= 18 and "1" in answers
    assert server.fake.counts["throttled"] >= 1


def test_paper_appkey_cannot_ask_for_past_days(redis_client):
    with FakeKisThread(fake(env="paper")) as srv:
        cfg = config(srv.url, env="paper", rate=1)

        async def run():
            from krxflow.kis.client import KisClient

            async with KisClient(cfg) as kis:
                await minute_bars.fetch_ticker_day(kis, "005930", PAST, today=False)

        with pytest.raises((KisConfigError, KisResponseError)):
            asyncio.run(run())


def test_pagination_collects_every_bar_of_a_day(server):
    from krxflow.kis.client import KisClient

    async def run():  # one client, one token: KIS issues one a minute (the fake too)
        async with KisClient(config(server.url)) as kis:
            return (await minute_bars.fetch_ticker_day(kis, "005930", TODAY, True),
                    await minute_bars.fetch_ticker_day(kis, "005930", PAST, False))

    (bars, calls), (past, past_calls) = asyncio.run(run())
    assert len(bars) == len(session_minutes()) == 381 and calls == 13  # 12 full pages of 30 + 21
    assert len(past) == 381 and past_calls == 4  # 3 × 120 + 21
    assert sorted(b["stck_cntg_hour"] for b in past) == session_minutes()


def test_bar_rows_take_the_minute_value_from_the_cumulative_value():
    bars = day_bars("005930", PAST)
    rows = minute_bars.bar_rows("005930", PAST, list(reversed(bars)) + [{**bars[0], "stck_bsop_date": "20261119"}])
    assert len(rows) == 381
    assert rows[0]["value"] == int(bars[0]["acml_tr_pbmn"])
    assert rows[5]["value"] == int(bars[5]["acml_tr_pbmn"]) - int(bars[4]["acml_tr_pbmn"])
    assert sum(r["value"] for r in rows) == int(bars[-1]["acml_tr_pbmn"])
    assert rows[0]["minute"].isoformat() == "2026-11-20T09:00:00+09:00"
    # a day whose first bars are missing: the first value is unknown, not the day's cumulative
    assert minute_bars.bar_rows("005930", PAST, bars[10:])[0]["value"] is None


def test_load_day_is_idempotent_and_matches_the_fake(server, bars_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", server.connection_json())
    tickers = ["005930", "000660", "035720"]
    first = minute_bar_loading.load_day(tickers, PAST, today=False)
    assert (first.bars, first.inserted, first.requests, first.failed) == (3 * 381, 3 * 381, 12, [])
    again = minute_bar_loading.load_day(tickers, PAST, today=False)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3 * 381)
    assert bars_db.execute("SELECT count(*), count(DISTINCT (ticker, minute)) FROM minute_bars").fetchone() == (
        3 * 381, 3 * 381)
    expected = day_bars("000660", PAST)[100]
    row = bars_db.execute("SELECT open, high, low, close, volume FROM minute_bars WHERE ticker = '000660' "
                          "ORDER BY minute OFFSET 100 LIMIT 1").fetchone()
    assert row == tuple(int(expected[k]) for k in ("stck_oprc", "stck_hgpr", "stck_lwpr", "stck_prpr", "cntg_vol"))
    assert server.fake.counts["throttled"] == 0


def test_universe_and_backfill_dates(bars_db):
    bars_db.execute("INSERT INTO stocks (ticker, name, market, market_cap) VALUES "
                    "('005930', 'A', 'KOSPI', 300), ('000660', 'B', 'KOSPI', 200), ('035720', 'C', 'KOSDAQ', 100)")
    assert minute_bars.tickers_to_fetch({"universe": "top", "top_n": 2}, bars_db) == ["005930", "000660"]
    assert sorted(minute_bars.tickers_to_fetch({"universe": "all"}, bars_db)) == ["000660", "005930", "035720"]
    assert minute_bars.tickers_to_fetch({"universe": "005930,000660"}, bars_db) == ["005930", "000660"]
    session = dt.date(2026, 11, 27)
    assert minute_bars.days_to_fetch(session, None) == ["2026-11-27"]
    # the Saturday is no session; duplicates collapse
    assert minute_bars.days_to_fetch(session, ["2026-11-21", "2026-11-20", "2026-11-20"]) == ["2026-11-20"]
    with pytest.raises(ValueError, match="a year"):
        minute_bars.days_to_fetch(session, ["2025-11-01"])


def test_dag_is_wired(dagbag):
    assert dagbag.import_errors == {}
    dag = dagbag.dags["kis_minute_bars"]
    assert set(dag.task_ids) == {"plan_days", "plan_tickers", "load_day"}
    assert dag.default_args["retries"] >= 2
    assert dag.timetable.serialize() == {"at": "20:10"}
    assert dag.get_task("load_day").max_active_tis_per_dag == 1


def test_minute_bars_have_daily_partitions_kept_400_days(bars_db):
    from krxflow.db.partitions import ensure_partitions, get_policy

    policy = get_policy(bars_db, "minute_bars")
    assert (policy.granularity, policy.retention_days) == ("day", 400)
    created = ensure_partitions(bars_db, "minute_bars", PAST, PAST + dt.timedelta(days=1))
    existing = {r[0] for r in bars_db.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'minute_bars'::regclass")}
    assert {"minute_bars_p20261120", "minute_bars_p20261121"} <= existing
    assert set(created) <= {"minute_bars_p20261120", "minute_bars_p20261121"}


def test_dag_test_backfills_a_past_day_and_a_rerun_changes_nothing(dagbag, server, bars_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", server.connection_json())
    dag = dagbag.dags["kis_minute_bars"]
    conf = {"universe": "005930,000660", "dates": [PAST.isoformat()]}
    logical = dt.datetime(2026, 11, 27, 20, 10, tzinfo=KST)
    run = dag.test(logical_date=logical, run_conf=conf)
    assert run.state == "success"
    count = "SELECT count(*) FROM minute_bars WHERE (minute AT TIME ZONE 'Asia/Seoul')::date = %s"
    assert bars_db.execute(count, (PAST,)).fetchone()[0] == 2 * 381
    snapshot = bars_db.execute("SELECT * FROM minute_bars ORDER BY ticker, minute").fetchall()
    rerun = dag.test(logical_date=logical + dt.timedelta(seconds=1), run_conf=conf)
    assert rerun.state == "success"
    assert bars_db.execute("SELECT * FROM minute_bars ORDER BY ticker, minute").fetchall() == snapshot
    assert server.fake.counts["throttled"] == 0
