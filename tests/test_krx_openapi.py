"""The KRX Open API path (issue 30): the strict fake, the source, its budget, equal rows with the portal,
and ``krx_daily_prices`` loading from it with no portal traffic.

The fake (:mod:`krxflow.sample.krx_openapi_server`) serves on loopback from a thread; the portal is the
offline replay (``tests/fakes/krx_replay.py``); both answer from the same sample market. Real PG/Redis.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pendulum
import pytest
import requests

from krxflow.market_time import KST
from krxflow.sample.krx_openapi_server import DEMO_KEY, FakeKrxOpenApi, FakeKrxOpenApiThread
from krxflow.sample.market import SampleMarket, to_tick

TICKERS = 40
#: Sessions compared both ways: Samsung's halt (2018-05-02), its 50:1 split ex-date (2018-05-04), two 2024 ones.
SESSIONS = [dt.date(2018, 5, 2), dt.date(2018, 5, 4), dt.date(2024, 1, 3), dt.date(2024, 1, 5)]
TRADING_FIELDS = ["BAS_DD", "ISU_CD", "ISU_NM", "MKT_NM", "SECT_TP_NM", "TDD_CLSPRC", "CMPPREVDD_PRC", "FLUC_RT",
                  "TDD_OPNPRC", "TDD_HGPRC", "TDD_LWPRC", "ACC_TRDVOL", "ACC_TRDVAL", "MKTCAP", "LIST_SHRS"]
BASE_FIELDS = ["ISU_CD", "ISU_SRT_CD", "ISU_NM", "ISU_ABBRV", "ISU_ENG_NM", "LIST_DD", "MKT_TP_NM", "SECUGRP_NM",
               "SECT_TP_NM", "KIND_STKCERT_TP_NM", "PARVAL", "LIST_SHRS"]


class Clock:
    """The fake's "now", moved by the tests."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(dt.datetime.now(KST))  # the newest sessions are published, as on a real day


@pytest.fixture
def server(clock):
    fake = FakeKrxOpenApi(SampleMarket(TICKERS), keys={DEMO_KEY: {"sto"}, "INDEXONLYKEY": {"idx"}}, clock=clock)
    with FakeKrxOpenApiThread(fake) as running:
        yield running


@pytest.fixture
def openapi_env(monkeypatch, server, redis_client):
    monkeypatch.setenv("AIRFLOW_CONN_KRX_OPENAPI_DEFAULT", server.connection_uri())
    monkeypatch.setenv("KRXFLOW_KRX_OPENAPI_MIN_INTERVAL", "0")
    monkeypatch.delenv("KRXFLOW_KRX_OPENAPI_DAILY_BUDGET", raising=False)
    return server


def _get(server, api: str, key: str | None = DEMO_KEY, **params):
    headers = {"AUTH_KEY": key} if key else {}
    return requests.get(f"{server.url}/svc/apis/sto/{api}.json", params=params, headers=headers, timeout=10)


# ---------------------------------------------------------------------------- the fake
def test_fake_checks_the_key_and_the_service_approval(server):
    assert _get(server, "stk_bydd_trd", key=None, basDd="20240105").status_code == 403
    assert _get(server, "stk_bydd_trd", key="WRONGKEY", basDd="20240105").status_code == 403
    unapproved = _get(server, "stk_bydd_trd", key="INDEXONLYKEY", basDd="20240105")
    assert unapproved.status_code == 200 and unapproved.json()["respCode"] == "401"
    assert "OutBlock_1" not in unapproved.json()
    assert [e["status"] for e in server.fake.log] == [403, 403, 200]
    assert server.fake.log[0]["key"] is None and server.fake.log[1]["key"] == "WRONGKEY"


def test_fake_takes_exactly_one_date_by_get_or_post_and_answers_strings_as_krx(server):
    url = f"{server.url}/svc/apis/sto/stk_bydd_trd"
    head = {"AUTH_KEY": DEMO_KEY}
    assert _get(server, "stk_bydd_trd").status_code == 400  # no basDd
    assert requests.get(url + ".json?basDd=20240104&basDd=20240105", headers=head, timeout=10).status_code == 400
    assert _get(server, "stk_bydd_trd", basDd="2024-01-05").status_code == 400
    assert requests.post(url + "?basDd=20240104", json={"basDd": "20240105"}, headers=head,
                         timeout=10).status_code == 400  # two dates
    by_get = _get(server, "stk_bydd_trd", basDd="20240105", strtDd="20230101", endDd="20231231")  # both ignored
    by_post = requests.post(url, json={"basDd": "20240105"}, headers=head, timeout=10)
    assert by_get.status_code == by_post.status_code == 200
    rows = by_get.json()["OutBlock_1"]
    assert rows == by_post.json()["OutBlock_1"] and len(rows) > 5
    expected = SampleMarket(TICKERS).day(dt.date(2024, 1, 5))
    assert len(rows) == (expected["market"] == "KOSPI").sum()
    for row in rows:
        assert list(row) == TRADING_FIELDS
        assert all(isinstance(v, str) and "," not in v for v in row.values())
        assert row["MKT_NM"] == "KOSPI" and row["BAS_DD"] == "20240105" and row["SECT_TP_NM"] == "-"
    samsung = next(r for r in rows if r["ISU_CD"] == "005930")
    truth = expected.set_index("ticker").loc["005930"]
    assert samsung["TDD_CLSPRC"] == str(truth["close"])
    assert int(samsung["TDD_CLSPRC"]) - int(samsung["CMPPREVDD_PRC"]) == truth["base_price"]
    kosdaq = _get(server, "ksq_bydd_trd", basDd="20240105").json()["OutBlock_1"]
    assert {r["MKT_NM"] for r in kosdaq} == {"KOSDAQ"} and all(r["SECT_TP_NM"] != "-" for r in kosdaq)
    info = _get(server, "stk_isu_base_info", basDd="20240105").json()["OutBlock_1"]
    assert [list(r) for r in info] == [BASE_FIELDS] * len(rows)
    assert next(r for r in info if r["ISU_SRT_CD"] == "005930")["ISU_CD"] == "KR7005930003"
    # a halted issue: open/high/low "0", volume "0", the close carried
    halted = next(r for r in _get(server, "stk_bydd_trd", basDd="20180502").json()["OutBlock_1"]
                  if r["ISU_CD"] == "005930")
    assert (halted["TDD_OPNPRC"], halted["TDD_HGPRC"], halted["TDD_LWPRC"], halted["ACC_TRDVOL"]) == ("0",) * 4
    assert int(halted["TDD_CLSPRC"]) > 0
    assert _get(server, "stk_bydd_trd_x", basDd="20240105").status_code == 404


def test_fake_answers_holidays_weekends_and_unpublished_days_with_an_empty_block(server, clock):
    for day in ("20240101", "20240106", "20240107", "20091231"):  # New Year, Sat, Sun, before the market
        answer = _get(server, "stk_bydd_trd", basDd=day)
        assert answer.status_code == 200 and answer.json() == {"OutBlock_1": []}, day
    clock.now = dt.datetime(2024, 1, 5, 23, 0, tzinfo=KST)  # the evening of the session
    assert _get(server, "stk_bydd_trd", basDd="20240105").json() == {"OutBlock_1": []}
    clock.now = dt.datetime(2024, 1, 6, 0, 4, tzinfo=KST)  # 00:04 the next day: still nothing (prism-insight#523)
    assert _get(server, "stk_bydd_trd", basDd="20240105").json() == {"OutBlock_1": []}
    clock.now = dt.datetime(2024, 1, 6, 8, 0, tzinfo=KST)  # the next morning
    assert len(_get(server, "stk_bydd_trd", basDd="20240105").json()["OutBlock_1"]) > 5
    server.fake.unpublished.add(dt.date(2024, 1, 5))
    assert _get(server, "stk_bydd_trd", basDd="20240105").json() == {"OutBlock_1": []}


def test_fake_counts_calls_per_key_and_day_and_answers_429_past_the_limit(server, clock):
    server.fake.daily_limit = 3
    assert [_get(server, "stk_bydd_trd", basDd="20240105").status_code for _ in range(3)] == [200] * 3
    assert _get(server, "stk_bydd_trd", basDd="20240105").status_code == 429
    assert _get(server, "stk_bydd_trd", key="INDEXONLYKEY", basDd="20240105").status_code == 200  # its own count
    assert server.fake.count(DEMO_KEY) == 3
    clock.now += dt.timedelta(days=1)  # a new KST day: a new count
    assert _get(server, "stk_bydd_trd", basDd="20240105").status_code == 200


# ---------------------------------------------------------------------------- the source
def _source():
    from krxflow.sources import get_source

    return get_source("krx_openapi")


def _expected_calls(days) -> int:
    """The calls the source should make for ``days`` from an empty ISIN map: two a session; for a market
    whose session lists an unknown code, first (once) the base information of the newest published
    session, then, if a code is still unknown, that of the session itself."""
    from krxflow.calendar import previous_trading_day
    from krxflow.krx.openapi import WARM_UP_TRIES

    market, fake = SampleMarket(TICKERS), FakeKrxOpenApi(SampleMarket(TICKERS))
    seen, warmed, calls = set(), set(), 0
    for day in days:
        frame = market.day(day)
        for name in ("KOSPI", "KOSDAQ"):
            codes = set(frame.loc[frame["market"] == name, "ticker"])
            calls += 1
            if codes - seen and name not in warmed:
                warmed.add(name)
                session = dt.datetime.now(KST).date()
                for _ in range(WARM_UP_TRIES):
                    session = previous_trading_day(session)
                    calls += 1
                    if fake.published(session):
                        latest = market.day(session)
                        seen |= set(latest.loc[latest["market"] == name, "ticker"])
                        break
            if codes - seen:
                calls += 1
                seen |= codes
    return calls


def test_source_reads_a_session_in_four_calls_and_parses_it_like_the_portal(openapi_env):
    from krxflow.krx.interface import MARKET_DAY_COLUMNS
    from krxflow.sample.market import SampleSource

    source = _source()
    frame = source.market_day(dt.date(2018, 5, 4))
    first_calls = _expected_calls(SESSIONS[1:2])
    assert source.requests_sent() == first_calls == len(openapi_env.fake.log) > 2
    assert {e["path"] for e in openapi_env.fake.log} == {f"/svc/apis/sto/{a}.json" for a in (
        "stk_bydd_trd", "stk_isu_base_info", "ksq_bydd_trd", "ksq_isu_base_info")}
    trading = [e for e in openapi_env.fake.log if "bydd_trd" in e["path"]]
    assert len(trading) == 2 and all(e["query"] == {"basDd": ["20180504"]} for e in trading)
    expected = SampleSource(TICKERS).market_day(dt.date(2018, 5, 4)).sort_values("ticker").reset_index(drop=True)
    assert list(frame.columns) == MARKET_DAY_COLUMNS
    assert frame.astype(str).equals(expected.astype(str))
    assert source.market_day(dt.date(2018, 5, 5)).empty and source.requests_sent() == first_calls  # Saturday
    # the ISINs are known now (Redis, installation-wide): a later session of the same codes takes two calls
    again = _source()
    later = again.market_day(dt.date(2018, 5, 8))
    assert again.requests_sent() == 2 == _expected_calls(SESSIONS[1:2] + [dt.date(2018, 5, 8)]) - first_calls
    assert later["isin"].notna().all() and len(later) == len(SampleMarket(TICKERS).day(dt.date(2018, 5, 8)))


def test_an_unpublished_session_is_an_error_and_writes_nothing(openapi_env, clean_db, clock):
    from krxflow.krx.errors import KrxNotPublishedError
    from krxflow.krx.loading import load_daily_prices

    clock.now = dt.datetime(2024, 1, 5, 20, 0, tzinfo=KST)
    with pytest.raises(KrxNotPublishedError, match="not published"):
        load_daily_prices(_source(), dt.date(2024, 1, 5))
    assert clean_db.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == 0
    assert clean_db.execute("SELECT count(*) FROM stocks").fetchone()[0] == 0
    clock.now = dt.datetime(2024, 1, 6, 9, 0, tzinfo=KST)
    loaded = load_daily_prices(_source(), dt.date(2024, 1, 5))
    assert loaded["source"] == "krx_openapi" and loaded["inserted"] == loaded["rows_in"] > 0


def test_wrong_or_unapproved_key_is_a_clear_fatal_error(openapi_env, monkeypatch):
    from krxflow.krx.errors import KrxFatalError, KrxOpenApiKeyError

    monkeypatch.setenv("AIRFLOW_CONN_KRX_OPENAPI_DEFAULT", openapi_env.connection_uri("WRONGKEY"))
    with pytest.raises(KrxOpenApiKeyError, match="HTTP 403") as refused:
        _source().market_day(dt.date(2024, 1, 5))
    assert isinstance(refused.value, KrxFatalError)  # not retried
    monkeypatch.setenv("AIRFLOW_CONN_KRX_OPENAPI_DEFAULT", openapi_env.connection_uri("INDEXONLYKEY"))
    with pytest.raises(KrxOpenApiKeyError, match="not approved"):
        _source().market_day(dt.date(2024, 1, 5))
    monkeypatch.setenv("AIRFLOW_CONN_KRX_OPENAPI_DEFAULT", json.dumps({"conn_type": "http", "host": openapi_env.url}))
    with pytest.raises(KrxOpenApiKeyError, match="no password"):
        _source()


def test_the_daily_budget_stops_short_of_the_limit_with_a_clear_message(openapi_env, monkeypatch, redis_client,
                                                                        clean_db):
    from krxflow.krx.errors import KrxFatalError, KrxOpenApiBudgetError
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.openapi import DailyBudget, budget_key

    load_daily_prices(_source(), dt.date(2024, 1, 4))  # the ISINs unknown yet: base information too
    used = DailyBudget().used()
    assert used == len(openapi_env.fake.log) == _expected_calls([dt.date(2024, 1, 4)])
    monkeypatch.setenv("KRXFLOW_KRX_OPENAPI_DAILY_BUDGET", str(used + 1))
    written = clean_db.execute("SELECT count(*) FROM daily_prices").fetchone()[0]
    with pytest.raises(KrxOpenApiBudgetError) as spent:
        load_daily_prices(_source(), dt.date(2024, 1, 5))  # KOSPI's call goes, the next is refused
    message = str(spent.value)
    assert f"budget spent: {used + 1} of {used + 1} calls" in message and "00:00 KST" in message
    assert isinstance(spent.value, KrxFatalError)
    assert len(openapi_env.fake.log) == used + 1  # the fake never saw the refused call
    assert clean_db.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == written  # nothing of the day
    assert int(redis_client.get(budget_key(DailyBudget.today()))) == used + 1
    # the default budget stops short of KRX's 10,000 for the whole installation (one Redis count)
    monkeypatch.delenv("KRXFLOW_KRX_OPENAPI_DAILY_BUDGET")
    redis_client.set(budget_key(DailyBudget.today()), 9_500)
    with pytest.raises(KrxOpenApiBudgetError, match="9500 of 9500 calls"):
        _source().market_day(dt.date(2024, 1, 5))
    assert len(openapi_env.fake.log) == used + 1


def test_krx_429_spends_the_budget_for_every_worker(openapi_env, redis_client):
    from krxflow.krx.errors import KrxOpenApiBudgetError
    from krxflow.krx.openapi import DailyBudget

    openapi_env.fake.daily_limit = 2
    with pytest.raises(KrxOpenApiBudgetError, match="HTTP 429"):
        _source().market_day(dt.date(2024, 1, 5))
    assert len(openapi_env.fake.log) == 3
    assert DailyBudget().used() >= 9_500
    with pytest.raises(KrxOpenApiBudgetError):
        _source().market_day(dt.date(2024, 1, 4))
    assert len(openapi_env.fake.log) == 3  # nothing more sent today


# ---------------------------------------------------------------------------- same rows either path
def _dump(pg):
    prices = pg.execute("SELECT * FROM daily_prices ORDER BY ticker, trade_date").fetchall()
    stocks = pg.execute("SELECT ticker, name, market, isin, sector, listed_shares, market_cap, first_seen, last_seen, "
                        "delisted, delisted_on FROM stocks ORDER BY ticker").fetchall()
    return prices, stocks


def test_the_portal_and_the_open_api_load_equal_rows(openapi_env, clean_db, monkeypatch):
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.krx.source import PykrxSource
    from tests.fakes.krx_replay import KrxReplay

    for name in ("AIRFLOW_CONN_KRX_DEFAULT", "KRX_ID", "KRX_PW"):
        monkeypatch.delenv(name, raising=False)
    reset_pykrx_state()
    with KrxReplay(SampleMarket(TICKERS)) as replay:
        portal = PykrxSource(min_interval=0)
        for day in SESSIONS:
            load_daily_prices(portal, day)
    reset_pykrx_state()
    assert replay.received["MDCSTAT01501"] == len(SESSIONS)
    by_portal = _dump(clean_db)
    clean_db.execute("TRUNCATE daily_prices, stocks, stock_changes")
    openapi = _source()
    for day in SESSIONS:
        load_daily_prices(openapi, day)
    by_openapi = _dump(clean_db)
    assert openapi.requests_sent() == _expected_calls(SESSIONS) < 4 * len(SESSIONS)
    assert len(by_portal[0]) > 3 * TICKERS * 0.8
    assert by_openapi[0] == by_portal[0]  # every row, every column of daily_prices (to the won)
    assert by_openapi[1] == by_portal[1]  # and the master placed on those sessions
    assert all(r[3] and r[3].startswith("KR7") for r in by_openapi[1])  # the ISIN from the base information
    columns = [d.name for d in clean_db.execute("SELECT * FROM daily_prices LIMIT 0").description]
    base = columns.index("base_price")
    samsung = [r for r in by_openapi[0] if r[0] == "005930"]
    assert samsung[0][columns.index("open")] is None  # halted 2018-05-02: no open, the close carried
    split_base = to_tick(np.array([samsung[0][columns.index("close")] / 50]))[0]
    assert samsung[1][base] == split_base  # the 50:1 split's base price (on KRX's tick grid), not the last close


# ---------------------------------------------------------------------------- the DAG
def test_krx_daily_prices_with_the_open_api_chosen_loads_with_no_portal_request(airflow_db, dagbag, openapi_env,
                                                                              clean_db, monkeypatch):
    from tests.fakes.krx_replay import KrxReplay

    monkeypatch.setenv("KRXFLOW_SOURCE", "pykrx")  # every other data set stays on the portal
    monkeypatch.setenv("KRXFLOW_SOURCE_DAILY_PRICES", "krx_openapi")
    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    clean_db.execute("TRUNCATE stock_changes")
    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        replay._mock.add_passthru(openapi_env.url)  # the Open API fake is on loopback, not in the replay
        run = dagbag.get_dag("krx_daily_prices").test(logical_date=pendulum.datetime(2018, 5, 4, 18, tz="Asia/Seoul"))
    assert run.state == "success"
    assert replay.total == 0 and not replay.received  # no login, no portal request at all
    assert len(openapi_env.fake.log) == _expected_calls([dt.date(2018, 5, 4)])  # trading + base information
    rows = clean_db.execute("SELECT count(*) FROM daily_prices WHERE trade_date = '2018-05-04'").fetchone()[0]
    assert rows == len(SampleMarket(TICKERS).day(dt.date(2018, 5, 4)))
    source = clean_db.execute("SELECT status, details->>'source' FROM load_stats WHERE table_name = 'daily_prices' "
                              "AND operation = 'quality_check'").fetchall()
    assert source == [("ok", "krx_openapi")]
    adjusted = clean_db.execute("SELECT count(*) FROM daily_prices_adjusted WHERE trade_date = '2018-05-04'").fetchone()
    assert adjusted[0] == rows


def test_daily_prices_may_have_a_source_of_its_own(monkeypatch):
    from krxflow.sources import source_name

    monkeypatch.setenv("KRXFLOW_SOURCE", "sample")
    monkeypatch.delenv("KRXFLOW_SOURCE_DAILY_PRICES", raising=False)
    assert source_name("daily_prices") == "sample" == source_name()
    monkeypatch.setenv("KRXFLOW_SOURCE_DAILY_PRICES", "KRX_OpenAPI")
    assert source_name("daily_prices") == "krx_openapi" and source_name() == "sample"
    monkeypatch.setenv("KRXFLOW_SOURCE_DAILY_PRICES", "portal")
    with pytest.raises(ValueError, match="KRXFLOW_SOURCE_DAILY_PRICES='portal' is not one of"):
        source_name("daily_prices")
    with pytest.raises(ValueError, match="no per-data-set source"):
        source_name("investors")


# ---------------------------------------------------------------------------- failover
def _portal_env(monkeypatch, login: bool):
    from krxflow.krx.pykrx_session import reset_pykrx_state

    monkeypatch.setenv("KRXFLOW_SOURCE", "pykrx")
    monkeypatch.delenv("KRXFLOW_SOURCE_DAILY_PRICES", raising=False)
    monkeypatch.setenv("KRXFLOW_KRX_MIN_INTERVAL", "0")
    for name in ("AIRFLOW_CONN_KRX_DEFAULT", "KRX_ID", "KRX_PW"):
        monkeypatch.delenv(name, raising=False)
    if login:
        monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    reset_pykrx_state()


def test_a_refused_login_fails_the_session_over_to_the_open_api(openapi_env, clean_db, monkeypatch):
    from krxflow.krx.errors import KrxLoginError
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.sources import get_source
    from tests.fakes.krx_replay import KrxReplay

    _portal_env(monkeypatch, login=True)
    day = dt.date(2024, 1, 5)
    with KrxReplay(SampleMarket(TICKERS), require_login=True, login_code="CD010") as replay:  # change your password
        replay._mock.add_passthru(openapi_env.url)
        loaded = load_daily_prices(get_source(data_set="daily_prices"), day)
        assert (loaded["source"], loaded["failed_over_from"]) == ("krx_openapi", "pykrx")
        assert loaded["inserted"] == len(SampleMarket(TICKERS).day(day))
        assert replay.received["MDCSTAT01501"] == 0  # never past the refused login
        monkeypatch.setenv("KRXFLOW_KRX_FAILOVER", "off")  # no failover: the portal's error stands
        reset_pykrx_state()
        with pytest.raises(KrxLoginError):
            load_daily_prices(get_source(data_set="daily_prices"), day)
    reset_pykrx_state()


def test_a_blocked_portal_fails_the_daily_run_over_and_the_open_circuit_sends_nothing_more(
        airflow_db, dagbag, openapi_env, clean_db, monkeypatch, clock):
    import time

    from tests.fakes.krx_replay import KrxReplay

    _portal_env(monkeypatch, login=False)
    clean_db.execute("TRUNCATE stock_changes")
    dag = dagbag.get_dag("krx_daily_prices")
    with KrxReplay(SampleMarket(TICKERS)) as replay:
        replay._mock.add_passthru(openapi_env.url)
        replay.block("403")
        started = time.monotonic()
        first = dag.test(logical_date=pendulum.datetime(2024, 1, 4, 18, tz="Asia/Seoul"))
        failover_s = time.monotonic() - started
        assert first.state == "success"
        assert replay.total == 1  # the one request that met the block; the circuit is open now
        clock.now = dt.datetime(2024, 1, 5, 20, 0, tzinfo=KST)  # the evening of 2024-01-05: not published yet
        monkeypatch.setattr(dag.get_task("fetch_and_load"), "retries", 0)  # (the retries would wait 10 min)
        second = dag.test(logical_date=pendulum.datetime(2024, 1, 5, 18, tz="Asia/Seoul"))
        assert second.state == "failed"
        states = {ti.task_id: ti.state for ti in second.get_task_instances()}
        assert states["fetch_and_load"] == "failed" and states["quality_check"] == "upstream_failed"
        assert replay.total == 1  # the open circuit: nothing more to the portal
        asked = [e["query"]["basDd"] for e in openapi_env.fake.log]
        assert asked[-1] == ["20240105"] and openapi_env.fake.log[-1]["status"] == 200  # failed over, found it empty
    assert failover_s < 60
    rows = dict(clean_db.execute("SELECT trade_date::text, count(*) FROM daily_prices GROUP BY 1").fetchall())
    assert rows == {"2024-01-04": len(SampleMarket(TICKERS).day(dt.date(2024, 1, 4)))}  # nothing of the 5th
    stats = clean_db.execute("SELECT details->>'source', details->>'failed_over_from' FROM load_stats WHERE "
                             "table_name = 'daily_prices' AND operation = 'quality_check'").fetchall()
    assert stats == [("krx_openapi", "pykrx")]
