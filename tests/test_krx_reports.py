"""The other daily KRX reports (issue 17) through pykrx's real requests and the offline KRX replay.

For every report: a normal day (the same rows as the sample market, the bld codes and request
counts), a holiday (no request, no rows), a ticker without data, KRX's "-" values, a LOGOUT or
a block mid-way (no partial day written), loading through the batched hook into the real
Postgres with quality figures in load_stats, and idempotent reruns.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from krxflow.krx import errors
from krxflow.krx.interface import INSTITUTIONS, INVESTOR_TYPES
from krxflow.krx.report_catalog import REPORTS, selected_reports
from krxflow.sample.market import SampleMarket, SampleSource
from tests.fakes.krx_replay import KrxReplay

TICKERS = 40
DAY = dt.date(2024, 1, 4)
SEOLLAL = dt.date(2024, 2, 9)
KEYS = {"indices": ["index_code"], "investors": ["ticker", "investor"]}
EXPECTED_BLDS = {
    "indices": {"finder_equidx": 1, "MDCSTAT00101": 3},
    "investors": {"MDCSTAT02401": 11},
    "fundamentals": {"MDCSTAT03501": 1},
    "short_selling": {"MDCSTAT30101": 2},
    "short_balance": {"MDCSTAT30501": 2},
    "foreign_ownership": {"MDCSTAT03701": 1},
}
REPORT_TABLES = [r.table for r in REPORTS.values()] + ["krx_indices"]


@pytest.fixture
def market():
    return SampleMarket(TICKERS)


@pytest.fixture
def krx(monkeypatch, redis_client):
    """A pykrx source with no pacing delay and no credentials."""
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.krx.source import PykrxSource

    for name in ("AIRFLOW_CONN_KRX_DEFAULT", "KRX_ID", "KRX_PW"):
        monkeypatch.delenv(name, raising=False)
    reset_pykrx_state()
    yield PykrxSource(min_interval=0)
    reset_pykrx_state()


@pytest.fixture
def replay(market):
    with KrxReplay(market) as fake:
        yield fake


@pytest.fixture
def report_db(clean_db):
    from psycopg import sql

    clean_db.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, REPORT_TABLES))))
    return clean_db


def _sorted(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame.sort_values(KEYS.get(name, ["ticker"])).reset_index(drop=True).astype(str)


# ---------------------------------------------------------------------------- through the replay
@pytest.mark.parametrize("name", list(REPORTS))
def test_a_normal_day_is_the_sample_market_in_a_few_requests(krx, replay, name):
    report = REPORTS[name]
    frame = getattr(krx, report.method)(DAY)
    assert dict(replay.received) == EXPECTED_BLDS[name]
    assert replay.total == report.requests
    expected = getattr(SampleSource(TICKERS), report.method)(DAY)
    assert len(frame) > 0 and list(frame.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(_sorted(frame, name), _sorted(expected, name))
    assert set(frame["trade_date"]) == {DAY}


def test_the_requests_carry_pykrx_parameters(krx, replay):
    krx.investor_trading(DAY)
    krx.short_selling(DAY)
    krx.short_balance(DAY)
    krx.index_prices(DAY)
    params = [p for _, p in replay.log]
    assert sorted(p["invstTpCd"] for p in params if p["bld"].endswith("MDCSTAT02401")) == sorted(INVESTOR_TYPES)
    assert all(p["strtDd"] == p["endDd"] == "20240104" and p["mktId"] == "ALL"
               for p in params if p["bld"].endswith("MDCSTAT02401"))
    assert [p["mktId"] for p in params if p["bld"].endswith("MDCSTAT30101")] == ["STK", "KSQ"]
    assert all(p["inqCond"] == "STMFRTSCIFDRFS" for p in params if p["bld"].endswith("MDCSTAT30101"))
    assert [p["mktTpCd"] for p in params if p["bld"].endswith("MDCSTAT30501")] == ["1", "2"]
    assert [p["idxIndMidclssCd"] for p in params if p["bld"].endswith("MDCSTAT00101")] == ["01", "02", "03"]


@pytest.mark.parametrize("name", list(REPORTS))
def test_a_holiday_sends_nothing_and_has_no_rows(krx, replay, name):
    frame = getattr(krx, REPORTS[name].method)(SEOLLAL)
    assert frame.empty
    assert replay.total == 0


def test_investor_net_buys_sum_to_zero_and_buys_to_the_days_volume(krx, replay):
    frame = krx.investor_trading(DAY)
    per_ticker = frame.groupby("ticker")[["net_volume", "net_value", "buy_volume", "sell_volume"]].sum()
    assert (per_ticker["net_volume"] == 0).all() and (per_ticker["net_value"] == 0).all()
    prices = SampleSource(TICKERS).daily_prices(DAY).set_index("ticker")
    assert (per_ticker["buy_volume"] == prices.loc[per_ticker.index, "volume"]).all()
    assert set(frame["investor"]) == set(INVESTOR_TYPES.values()) and set(INSTITUTIONS) < set(frame["investor"])


def test_a_halted_ticker_has_no_investor_rows_but_keeps_its_other_reports(krx):
    # Samsung was halted 2018-04-30..05-03 for its 50:1 split: it traded nothing on 2018-05-02.
    halted = dt.date(2018, 5, 2)
    with KrxReplay(SampleMarket(TICKERS)):
        investors = krx.investor_trading(halted)
        fundamentals = krx.fundamentals(halted)
        foreign = krx.foreign_ownership(halted)
    assert "005930" not in set(investors["ticker"]) and len(investors)
    assert "005930" in set(fundamentals["ticker"]) and "005930" in set(foreign["ticker"])


def test_tickers_that_cannot_be_shorted_have_no_short_rows(krx, replay):
    listed = set(SampleSource(TICKERS).daily_prices(DAY)["ticker"])
    shorted, balances = set(krx.short_selling(DAY)["ticker"]), set(krx.short_balance(DAY)["ticker"])
    assert shorted == balances and shorted < listed and len(shorted) > len(listed) / 2


def test_krx_dashes_are_null_not_zero(krx, replay):
    fundamentals = krx.fundamentals(DAY)
    losses = fundamentals[fundamentals["eps"].isna()]
    assert len(losses) and losses["per"].isna().all()  # pykrx's wrapper would say EPS 0, PER 0
    raw = [r for r in _raw(replay, "MDCSTAT03501") if r["EPS"] == "-"]
    assert raw and all(r["PER"] == "-" for r in raw)
    # The KOSPI group's "코스피 (외국주포함)" comes with "-" prices and no code: left out.
    indices = krx.index_prices(DAY)
    assert "코스피 (외국주포함)" not in set(indices["name"]) and indices["close"].notna().all()
    assert {"1001", "1028", "2001", "2203", "5300"} <= set(indices["index_code"])


def _raw(replay, bld: str) -> list[dict]:
    """What the replay answers for ``bld`` on DAY (the JSON rows KRX would send)."""
    from tests.fakes.krx_replay import _REPORT_ANSWERS

    key, answer = _REPORT_ANSWERS[bld]
    return answer(replay, {"trdDd": DAY.strftime("%Y%m%d"), "mktId": "ALL"})


def test_dash_values_of_every_report_parse_as_null():
    from krxflow.krx import report_parsing as frames

    dash = pd.DataFrame([{"ISU_SRT_CD": "000020", "ISU_CD": "000020", "ASK_TRDVOL": "-", "BID_TRDVOL": "-",
                          "NETBID_TRDVOL": "-", "ASK_TRDVAL": "-", "BID_TRDVAL": "-", "NETBID_TRDVAL": "-",
                          "EPS": "-", "PER": "-", "BPS": "-", "PBR": "-", "DPS": "-", "DVD_YLD": "-",
                          "CVSRTSELL_TRDVOL": "-", "ACC_TRDVOL": "1,234", "CVSRTSELL_TRDVAL": "", "ACC_TRDVAL": "-",
                          "BAL_QTY": "-", "BAL_AMT": "-", "LIST_SHRS": "1,000", "MKTCAP": "-", "BAL_RTO": "-",
                          "FORN_HD_QTY": "-", "FORN_SHR_RT": "-", "FORN_ORD_LMT_QTY": "-", "FORN_LMT_EXHST_RT": "-"}])
    for parse in (lambda r: frames.investor_frame(r, "foreign", DAY), lambda r: frames.fundamentals_frame(r, DAY),
                  lambda r: frames.short_selling_frame(r, DAY), lambda r: frames.short_balance_frame(r, DAY),
                  lambda r: frames.foreign_ownership_frame(r, DAY)):
        row = parse(dash).iloc[0]
        values = row.drop(["ticker", "trade_date"] + (["investor"] if "investor" in row else []))
        assert values.isna().sum() >= len(values) - 1, row  # only ACC_TRDVOL / LIST_SHRS carry a number


def test_a_site_change_is_a_bad_answer_not_an_empty_day():
    from krxflow.krx import report_parsing as frames

    with pytest.raises(errors.KrxBadAnswerError, match="MDCSTAT03501 answer lacks"):
        frames.fundamentals_frame(pd.DataFrame([{"ISU_SRT_CD": "000020", "PER": "1.0"}]), DAY)


def test_an_empty_answer_on_a_trading_day_is_an_error(krx, replay):
    replay.fail("MDCSTAT03701", "empty")
    with pytest.raises(errors.KrxEmptyAnswerError):
        krx.foreign_ownership(DAY)


# ---------------------------------------------------------------------------- into the database
def _load_prices(days):
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.master import load_listing

    source = SampleSource(TICKERS)
    load_listing(source, days[-1], include_delisted=False)
    for day in days:
        load_daily_prices(source, day)


def test_every_report_loads_checks_ok_and_a_rerun_changes_nothing(krx, replay, report_db):
    from krxflow.krx.report_loading import check_report_quality, load_report

    pg = report_db
    _load_prices([dt.date(2024, 1, 2), dt.date(2024, 1, 3), DAY])
    first = {name: load_report(krx, name, DAY) for name in REPORTS}
    for name, result in first.items():
        assert result["rows_in"] > 0 and result["inserted"] == result["rows_in"], result
        assert result["requests"] == REPORTS[name].requests
    assert first["short_balance"]["day"] == "2024-01-02"  # KRX publishes balances two sessions late
    assert sum(r["requests"] for r in first.values()) == 21
    for name, report in REPORTS.items():
        count = pg.execute(f"SELECT count(*) FROM {report.table}").fetchone()[0]  # noqa: S608 (test)
        assert count == first[name]["rows_in"]
    assert pg.execute("SELECT index_code, name, index_group, first_seen, last_seen FROM krx_indices "
                      "WHERE index_code = '1001'").fetchone() == ("1001", "코스피", "KOSPI", DAY, DAY)
    checks = {name: check_report_quality(name, DAY) for name in REPORTS}
    assert {name: c["status"] for name, c in checks.items()} == {name: "ok" for name in REPORTS}, checks
    assert checks["investors"]["net_not_zero"] == 0 and checks["investors"]["incomplete_types"] == 0
    logged = pg.execute("SELECT table_name, status, details->>'report' FROM load_stats "
                        "WHERE operation = 'quality_check' ORDER BY id").fetchall()
    assert [(t, s) for t, s, _ in logged] == [(r.table, "ok") for r in REPORTS.values()]
    snapshot = {r.table: pg.execute(f"SELECT * FROM {r.table} ORDER BY 1, 2").fetchall()  # noqa: S608
                for r in REPORTS.values()}
    again = {name: load_report(krx, name, DAY) for name in REPORTS}
    for result in again.values():
        assert result["inserted"] == result["updated"] == 0 and result["unchanged"] == result["rows_in"], result
    for r in REPORTS.values():
        assert pg.execute(f"SELECT * FROM {r.table} ORDER BY 1, 2").fetchall() == snapshot[r.table]  # noqa: S608


def test_exact_numbers_in_the_tables(krx, replay, report_db):
    from krxflow.krx.report_loading import load_report

    pg = report_db
    load_report(krx, "indices", DAY)
    load_report(krx, "fundamentals", DAY)
    expected = SampleSource(TICKERS).index_prices(DAY).set_index("index_code").loc["1001"]
    close, change = pg.execute("SELECT close, change FROM krx_index_prices WHERE index_code = '1001'").fetchone()
    assert str(close) == f"{expected['close']:.2f}" and str(change) == f"{expected['change']:.2f}"
    nulls = pg.execute("SELECT count(*) FROM krx_fundamentals WHERE eps IS NULL AND per IS NULL").fetchone()[0]
    assert nulls > 0
    assert pg.execute("SELECT count(*) FROM krx_fundamentals WHERE per = 0").fetchone()[0] == 0


def test_a_block_mid_way_leaves_no_partial_day(krx, replay, report_db):
    from krxflow.krx.report_loading import load_report

    pg = report_db
    replay.block("403", after=5)  # the 6th of the 11 investor requests is refused
    with pytest.raises(errors.KrxBlockedError):
        load_report(krx, "investors", DAY)
    assert replay.received["MDCSTAT02401"] == 6
    assert pg.execute("SELECT count(*) FROM krx_investor_trading").fetchone()[0] == 0
    with pytest.raises(errors.KrxCircuitOpenError):  # the circuit is open: nothing more is sent
        load_report(krx, "fundamentals", DAY)
    assert replay.received["MDCSTAT03501"] == 0


def test_logout_mid_way_relogs_in_once_and_completes_the_day(logged_in_krx, market, report_db):
    from krxflow.krx.report_loading import load_report

    pg = report_db
    with KrxReplay(market, require_login=True) as replay:
        replay.fail("MDCSTAT30501", "logout", after=1)  # the KOSDAQ half of the short balances
        result = load_report(logged_in_krx, "short_balance", DAY)
    data = [(e["kind"], e["status"]) for e in replay.wire() if e["kind"] == "MDCSTAT30501"]
    assert data == [("MDCSTAT30501", 200), ("MDCSTAT30501", 400), ("MDCSTAT30501", 200)]  # KOSPI, LOGOUT, KOSDAQ
    # one renewal of the shared login (KRX still holds the old session: CD011, then skipDup=Y)
    assert replay.received["login_page"] == 2
    assert [p.get("skipDup") for k, p in replay.log if k == "login"][-1] == "Y"
    assert pg.execute("SELECT count(*) FROM krx_short_balance").fetchone()[0] == result["rows_in"] > 0
    markets = pg.execute("SELECT count(DISTINCT s.market) FROM krx_short_balance b JOIN stocks s USING (ticker)")
    assert markets.fetchone()[0] in (0, 2)  # (stocks may be empty here; when present both markets are in)


def test_logout_twice_mid_way_fails_and_writes_nothing_of_the_day(logged_in_krx, market, report_db):
    from krxflow.krx.report_loading import load_report

    pg = report_db
    with KrxReplay(market, require_login=True) as replay:
        replay.fail("MDCSTAT02401", "logout", times=2, after=4)
        with pytest.raises(errors.KrxLogoutError, match="again right after a new login"):
            load_report(logged_in_krx, "investors", DAY)
    assert replay.received["MDCSTAT02401"] == 6
    assert pg.execute("SELECT count(*) FROM krx_investor_trading").fetchone()[0] == 0


def test_a_holiday_writes_nothing(krx, replay, report_db):
    from krxflow.krx.report_loading import load_report

    results = [load_report(krx, name, SEOLLAL) for name in REPORTS if REPORTS[name].lag == 0]
    assert all(r["rows_in"] == 0 and r["requests"] == 0 for r in results)
    assert replay.total == 0


def test_quality_flags_investor_sums_that_do_not_hold(krx, replay, report_db):
    from krxflow.krx.report_loading import check_report_quality, load_report

    pg = report_db
    _load_prices([DAY])
    load_report(krx, "investors", DAY)
    pg.execute("UPDATE krx_investor_trading SET buy_volume = buy_volume + 1000, net_volume = net_volume + 1000 "
               "WHERE ticker = '005930' AND investor = 'foreign'")
    check = check_report_quality("investors", DAY)
    assert check["status"] == "warning" and check["net_not_zero"] == 1 and check["volume_mismatch"] == 1
    row = pg.execute("SELECT status, error FROM load_stats WHERE operation = 'quality_check' "
                     "ORDER BY id DESC LIMIT 1").fetchone()
    assert row[0] == "warning" and "net buys" in row[1]


def test_report_selection():
    assert selected_reports("all") == list(REPORTS) == selected_reports(None)
    assert selected_reports("fundamentals, indices") == ["indices", "fundamentals"]
    assert selected_reports(["short_balance"]) == ["short_balance"]
    with pytest.raises(ValueError, match="unknown reports"):
        selected_reports("pe_ratios")
    assert sum(r.requests for r in REPORTS.values()) <= 25


# ---------------------------------------------------------------------------- the DAG
def _kst(day: str, hour: int = 18, minute: int = 30):
    import pendulum

    return pendulum.parse(day, tz="Asia/Seoul").add(hours=hour, minutes=minute)


def test_the_dag_has_a_task_per_report_in_the_krx_pool(dagbag):
    from krxflow.timetables import KRXSessionTimetable

    dag = dagbag.get_dag("krx_market_reports")
    assert isinstance(dag.timetable, KRXSessionTimetable) and dag.timetable.at == "18:30"
    assert dag.params["reports"] == "default"
    for name in REPORTS:
        load, check = dag.get_task(f"load_{name}"), dag.get_task(f"check_{name}")
        assert load.pool == "krx_api" and check.pool != "krx_api"
        assert check.upstream_task_ids == {load.task_id} and load.upstream_task_ids == {"choose"}
    assert all(t.retries >= 2 for t in dag.tasks)


def test_dag_test_loads_every_report_checks_them_and_a_rerun_changes_nothing(dagbag, monkeypatch, report_db,
                                                                               redis_client):
    pg = report_db
    monkeypatch.setenv("KRXFLOW_SOURCE", "sample")
    monkeypatch.setenv("KRXFLOW_SAMPLE_TICKERS", str(TICKERS))
    pg.execute("TRUNCATE stock_changes")
    _load_prices([dt.date(2024, 1, 2), dt.date(2024, 1, 3), DAY])
    dag = dagbag.get_dag("krx_market_reports")
    run = dag.test(logical_date=_kst(DAY.isoformat()))
    assert run.state == "success"
    counts = {r.table: pg.execute(f"SELECT count(*) FROM {r.table}").fetchone()[0] for r in REPORTS.values()}  # noqa: S608
    sample = SampleSource(TICKERS)
    assert counts == {r.table: len(getattr(sample, r.method)(r.day_for(DAY))) for r in REPORTS.values()}
    checks = pg.execute("SELECT table_name, status, dag_id FROM load_stats WHERE operation = 'quality_check' "
                        "ORDER BY table_name").fetchall()
    assert checks == sorted((r.table, "ok", "krx_market_reports") for r in REPORTS.values())
    snapshot = {t: pg.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in counts}  # noqa: S608
    rerun = dag.test(logical_date=_kst(DAY.isoformat()), run_conf={"reports": "all"})
    assert rerun.state == "success"
    assert {t: pg.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in counts} == snapshot  # noqa: S608
    writes = pg.execute("SELECT sum(inserted + updated) FROM load_stats WHERE run_id = %s AND operation = 'upsert'",
                        (rerun.run_id,)).fetchone()[0]
    assert writes == 0


def test_the_reports_param_selects_reports_and_skips_the_others(dagbag, monkeypatch, report_db, redis_client):
    pg = report_db
    monkeypatch.setenv("KRXFLOW_SOURCE", "sample")
    monkeypatch.setenv("KRXFLOW_SAMPLE_TICKERS", str(TICKERS))
    dag = dagbag.get_dag("krx_market_reports")
    run = dag.test(logical_date=_kst("2024-01-05"), run_conf={"reports": ["fundamentals"]})
    assert run.state == "success"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["load_fundamentals"] == "success"
    assert states["load_investors"] == "skipped" and states["check_investors"] == "skipped"
    assert pg.execute("SELECT count(*) FROM krx_fundamentals").fetchone()[0] > 0
    assert pg.execute("SELECT count(*) FROM krx_investor_trading").fetchone()[0] == 0


def test_a_manual_run_on_a_holiday_is_skipped(dagbag, monkeypatch, report_db, redis_client):
    monkeypatch.setenv("KRXFLOW_SOURCE", "sample")
    monkeypatch.setenv("KRXFLOW_SAMPLE_TICKERS", str(TICKERS))
    run = dagbag.get_dag("krx_market_reports").test(logical_date=_kst(SEOLLAL.isoformat()))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert all(s == "skipped" for t, s in states.items() if t != "choose"), states


def test_the_reports_keep_the_documented_promises_at_the_wire(monkeypatch, market, redis_client):
    """One shared login, every request at least the interval after the previous one (logins included),
    as docs/backfill.md and docs/market-reports.md promise."""
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.krx.source import PykrxSource

    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    reset_pykrx_state()
    interval = 0.2
    with KrxReplay(market, require_login=True) as replay:
        source = PykrxSource(min_interval=interval)
        for report in REPORTS.values():
            assert len(getattr(source, report.method)(DAY)) > 0
    reset_pykrx_state()
    assert replay.received["login"] == 1 and replay.received["login_page"] == 1
    assert replay.total == 3 + sum(r.requests for r in REPORTS.values())
    assert min(replay.gaps()) >= interval


# ---------------------------------------------------------------------------- a session KRX has not published (issue 27, 7)
#: What a load sends before the first all-"-" answer stops it (the index finder is not by day).
FIRST_ANSWER = {"indices": 2, "investors": 1, "fundamentals": 1, "short_selling": 1, "short_balance": 1,
                "foreign_ownership": 1}


def _upserts(pg, table: str) -> int:
    return pg.execute("SELECT count(*) FROM load_stats WHERE operation = 'upsert' AND table_name = %s",
                      (table,)).fetchone()[0]


@pytest.mark.parametrize("name", list(REPORTS))
def test_an_unpublished_session_writes_nothing_and_loads_once_published(krx, replay, report_db, name):
    """KRX answers a session it has not published with its rows all "-": no NULL rows, no load
    recorded, a clear error (the task retries); once published, the same call loads the day."""
    from krxflow.krx.report_loading import load_report

    pg, report = report_db, REPORTS[name]
    _load_prices([dt.date(2024, 1, 2), dt.date(2024, 1, 3), DAY])
    replay.unpublish(report.day_for(DAY))
    with pytest.raises(errors.KrxNotPublishedError, match=f'KRX has not published {report.day_for(DAY)} yet.*all "-"'):
        load_report(krx, name, DAY)
    assert replay.total == FIRST_ANSWER[name]  # stopped at the first all-"-" answer
    assert all(e["status"] == 200 for e in replay.wire())
    assert pg.execute(f"SELECT count(*) FROM {report.table}").fetchone()[0] == 0  # noqa: S608 (test)
    assert _upserts(pg, report.table) == 0, "the day is not recorded as loaded"

    replay.publish(report.day_for(DAY))
    loaded = load_report(krx, name, DAY)
    assert replay.total == FIRST_ANSWER[name] + report.requests
    assert loaded["rows_in"] > 0 and loaded["inserted"] == loaded["rows_in"]
    assert pg.execute(f"SELECT count(*) FROM {report.table}").fetchone()[0] == loaded["rows_in"]  # noqa: S608


def test_the_unpublished_answer_has_krx_shape_rows_listed_values_dashed(replay):
    """The replay's unpublished answer is KRX's for a day without data: every ticker listed, with its
    name and listed shares, and "-" for every value (the shape of the recorded holiday answer)."""
    import json

    import requests

    replay.unpublish(DAY)
    for bld, fields in (("MDCSTAT03501", {"EPS", "PER", "BPS", "PBR", "DPS", "DVD_YLD", "TDD_CLSPRC"}),
                        ("MDCSTAT03701", {"FORN_HD_QTY", "FORN_SHR_RT", "FORN_ORD_LMT_QTY", "FORN_LMT_EXHST_RT"}),
                        ("MDCSTAT01501", {"TDD_CLSPRC", "TDD_OPNPRC", "ACC_TRDVOL", "MKTCAP"})):
        answer = requests.post("https://data.krx.co.kr/comm/bldAttendant/getJsonData.cmd",
                               data={"bld": f"dbms/MDC/STAT/standard/{bld}", "trdDd": "20240104", "mktId": "ALL"})
        rows = next(v for k, v in json.loads(answer.text).items() if k != "CURRENT_DATETIME")
        assert len(rows) >= TICKERS // 2 and all(r["ISU_SRT_CD"] and r.get("ISU_ABBRV") for r in rows)
        assert {r[f] for r in rows for f in fields} == {"-"}, bld
        assert all(r.get("FLUC_TP_CD", "3") == "3" for r in rows)
        if "LIST_SHRS" in rows[0]:
            assert all(r["LIST_SHRS"] != "-" for r in rows)  # the listing is known, the day's values are not


def test_daily_prices_refuse_an_unpublished_session_too(krx, replay, report_db):
    from krxflow.krx.loading import load_daily_prices

    pg = report_db
    pg.execute("TRUNCATE daily_prices, stocks, stock_changes")
    replay.unpublish(DAY)
    with pytest.raises(errors.KrxNotPublishedError, match="not published"):
        load_daily_prices(krx, DAY)
    assert replay.received["MDCSTAT01501"] == 1
    assert pg.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == 0
    assert pg.execute("SELECT count(*) FROM stocks").fetchone()[0] == 0, "an unpublished day places no listing"
    replay.publish(DAY)
    loaded = load_daily_prices(krx, DAY)
    assert replay.received["MDCSTAT01501"] == 2
    assert pg.execute("SELECT count(*) FROM daily_prices WHERE close IS NOT NULL").fetchone()[0] == loaded["rows_in"] > 0


def test_konex_tickers_of_all_market_answers_are_left_out_as_the_daily_prices_leave_them(krx, market, report_db):
    """KRX's mktId=ALL answers list KONEX tickers; the prices drop them by their market field, the
    reports (whose answers carry no market) by the day's daily_prices, before them by stocks."""
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.report_loading import load_report

    pg = report_db
    pg.execute("TRUNCATE daily_prices, stocks, stock_changes")
    all_market = [n for n, r in REPORTS.items() if r.all_markets]
    assert all_market == ["investors", "fundamentals", "foreign_ownership"]
    with KrxReplay(market, konex=3) as replay:
        konex = set(replay.konex_tickers)
        raw = {n: set(getattr(krx, REPORTS[n].method)(DAY)["ticker"]) for n in all_market}
        assert all(konex <= tickers for tickers in raw.values()), "the answers do carry KONEX"
        load_daily_prices(krx, dt.date(2024, 1, 3))  # the day before: stocks knows the KOSPI/KOSDAQ tickers
        before_prices = load_report(krx, "fundamentals", DAY)
        load_daily_prices(krx, DAY)
        results = {n: load_report(krx, n, DAY) for n in all_market}
    assert before_prices["left_out"] == 3 and before_prices["listed_by"] == "stocks"
    assert results["fundamentals"]["left_out"] == results["foreign_ownership"]["left_out"] == 3
    assert results["investors"]["left_out"] == 3 * len(INVESTOR_TYPES)
    assert {r["listed_by"] for r in results.values()} == {"daily_prices"}
    for name in all_market + ["stocks", "daily_prices"]:
        table = REPORTS[name].table if name in REPORTS else name
        tickers = {t for (t,) in pg.execute(f"SELECT DISTINCT ticker FROM {table}")}  # noqa: S608 (test)
        assert tickers and not tickers & konex, table
    sample = SampleSource(TICKERS)
    assert pg.execute("SELECT count(*) FROM krx_fundamentals").fetchone()[0] == len(sample.fundamentals(DAY))


def test_dag_test_of_an_unpublished_session_fails_the_run_then_a_rerun_loads_it(dagbag, monkeypatch, market,
                                                                               report_db, redis_client):
    """At the DAG: the load task fails with the clear message (in production it is retried twice,
    10 minutes apart), its check does not run, nothing is written; once KRX publishes, a rerun loads."""
    pg = report_db
    monkeypatch.setenv("KRXFLOW_SOURCE", "pykrx")
    monkeypatch.setenv("KRXFLOW_KRX_MIN_INTERVAL", "0")
    for name in ("AIRFLOW_CONN_KRX_DEFAULT", "KRX_ID", "KRX_PW"):
        monkeypatch.delenv(name, raising=False)
    _load_prices([DAY])
    dag = dagbag.get_dag("krx_market_reports")
    monkeypatch.setattr(dag.get_task("load_fundamentals"), "retries", 0)  # no 10-minute wait in the test
    with KrxReplay(market) as replay:
        replay.unpublish(DAY)
        run = dag.test(logical_date=_kst(DAY.isoformat()), run_conf={"reports": ["fundamentals"]})
        assert run.state == "failed"
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert states["load_fundamentals"] == "failed" and states["check_fundamentals"] == "upstream_failed"
        assert replay.received["MDCSTAT03501"] == 1
        assert pg.execute("SELECT count(*) FROM krx_fundamentals").fetchone()[0] == 0
        assert pg.execute("SELECT count(*) FROM load_stats WHERE table_name = 'krx_fundamentals'").fetchone()[0] == 0
        replay.publish(DAY)
        rerun = dag.test(logical_date=_kst(DAY.isoformat()), run_conf={"reports": ["fundamentals"]})
        assert replay.received["MDCSTAT03501"] == 2
    assert rerun.state == "success"
    assert pg.execute("SELECT count(*) FROM krx_fundamentals").fetchone()[0] == len(SampleSource(TICKERS).fundamentals(DAY))
    assert pg.execute("SELECT count(*) FROM krx_fundamentals WHERE eps IS NULL AND bps IS NULL AND pbr IS NULL"
                      ).fetchone()[0] == 0
