"""The KRX DAGs: parse cleanly and light, and run end to end with ``dag.test()`` against the real Postgres.

The sample source (few tickers) feeds most runs; one run goes through the pykrx source and the
offline KRX replay, so pykrx's real requests and parsing are exercised inside a DAG run too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest

from krxflow.sample.market import EVENT_TICKERS

ROOT = Path(__file__).resolve().parents[1]
KRX_DAGS = ("krx_tickers", "krx_daily_prices", "krx_history_backfill", "krx_market_reports")
SAMPLE_TICKERS = 30


@pytest.fixture
def sample_env(monkeypatch, clean_db, redis_client):
    monkeypatch.setenv("KRXFLOW_SOURCE", "sample")
    monkeypatch.setenv("KRXFLOW_SAMPLE_TICKERS", str(SAMPLE_TICKERS))
    clean_db.execute("TRUNCATE stock_changes")
    return clean_db


def _kst(day: str, hour: int = 18) -> pendulum.DateTime:
    return pendulum.parse(day, tz="Asia/Seoul").add(hours=hour)


def _table(pg, query: str):
    return pg.execute(query).fetchall()


def test_krx_dags_import_without_errors_and_use_the_session_timetable(dagbag):
    from krxflow.timetables import KRXSessionTimetable

    errors = {k: v for k, v in dagbag.import_errors.items() if Path(k).stem in KRX_DAGS}
    assert errors == {}
    for dag_id in KRX_DAGS:
        dag = dagbag.get_dag(dag_id)
        assert dag is not None, dag_id
        assert "krxflow" in dag.tags and dag.doc_md
        assert all(t.retries >= 2 for t in dag.tasks)
    assert isinstance(dagbag.get_dag("krx_daily_prices").timetable, KRXSessionTimetable)
    assert isinstance(dagbag.get_dag("krx_tickers").timetable, KRXSessionTimetable)
    backfill = dagbag.get_dag("krx_history_backfill")
    assert type(backfill.timetable).__name__ == "NullTimetable"  # manual only
    assert set(backfill.params.keys()) == {"years", "tickers", "adjusted_from"}
    assert backfill.params["years"] == 5 and backfill.params["tickers"] == "all"
    assert backfill.params["adjusted_from"] == "krx"
    assert backfill.get_task("load_history").pool == "krx_api"


def test_krx_tickers_dag_loads_the_listing_and_emits_stocks(airflow_db, dagbag, sample_env):
    pg = sample_env
    dag = dagbag.get_dag("krx_tickers")
    run = dag.test(logical_date=_kst("2024-01-03", 17))
    assert run.state == "success"
    count, markets = pg.execute("SELECT count(*), array_agg(DISTINCT market ORDER BY market) FROM stocks "
                                "WHERE NOT delisted").fetchone()
    from krxflow.sample.market import SampleSource

    assert count == len(SampleSource(SAMPLE_TICKERS).listing("2024-01-03"))
    assert markets == ["KOSDAQ", "KOSPI"]
    samsung = pg.execute("SELECT name, market, isin, listed_shares, first_seen, last_seen FROM stocks "
                         "WHERE ticker = '005930'").fetchone()
    assert samsung == ("삼성전자", "KOSPI", "KR7005930003", 6_419_324_700, dt.date(2024, 1, 3), dt.date(2024, 1, 3))
    events = pg.execute("SELECT count(*) FROM load_stats WHERE dag_id = 'krx_tickers' AND table_name = 'stocks'").fetchone()
    assert events[0] >= 1


def test_krx_daily_prices_dag_loads_one_session_and_a_rerun_changes_nothing(airflow_db, dagbag, sample_env):
    pg = sample_env
    from krxflow.sample.market import SampleSource

    dag = dagbag.get_dag("krx_tickers")
    assert dag.test(logical_date=_kst("2024-01-03", 17)).state == "success"
    prices = dagbag.get_dag("krx_daily_prices")
    # 18:00 KST on 2024-01-04 is 09:00 UTC; at 08:30 KST the UTC date would be the day before.
    first = prices.test(logical_date=_kst("2024-01-04"))
    assert first.state == "success"
    snapshot = _table(pg, "SELECT * FROM daily_prices ORDER BY ticker, trade_date")
    expected = SampleSource(SAMPLE_TICKERS).daily_prices("2024-01-04")
    assert len(snapshot) == len(expected) > 0
    assert {r[1] for r in snapshot} == {dt.date(2024, 1, 4)}
    quality = pg.execute("SELECT status, rows_in, details FROM load_stats WHERE operation = 'quality_check' "
                         "ORDER BY id DESC LIMIT 1").fetchone()
    assert quality[1] == len(expected)
    assert quality[2]["bad_ohlc"] == 0 and quality[2]["negative_volume"] == 0 and quality[2]["listed"] > 0
    # Rerunning the same date: same rows in, same table out, nothing inserted or updated.
    dag_run = prices.test(logical_date=_kst("2024-01-04"))  # clears and runs the same date again
    assert dag_run.state == "success"
    assert _table(pg, "SELECT * FROM daily_prices ORDER BY ticker, trade_date") == snapshot
    last_write = pg.execute("SELECT inserted, updated, unchanged FROM load_stats WHERE table_name = 'daily_prices' "
                            "AND operation = 'upsert' ORDER BY id DESC LIMIT 1").fetchone()
    assert last_write == (0, 0, len(expected))


def test_krx_daily_prices_manual_run_on_a_holiday_is_skipped_not_failed(airflow_db, dagbag, sample_env):
    pg = sample_env
    prices = dagbag.get_dag("krx_daily_prices")
    run = prices.test(logical_date=_kst("2024-02-09"))  # Seollal
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["fetch_and_load"] == "skipped"
    assert pg.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == 0


def test_krx_history_backfill_maps_per_ticker_and_reports(airflow_db, dagbag, sample_env):
    pg = sample_env
    from krxflow.sample.market import SampleMarket

    market = SampleMarket(SAMPLE_TICKERS)
    delisted = market.tickers[EVENT_TICKERS["split_then_delisted"]]  # split 2021-11-02, delisted 2024-05-02
    wanted = ["005930", delisted, "999990"]
    dag = dagbag.get_dag("krx_history_backfill")
    run = dag.test(run_conf={"years": 6, "tickers": wanted})
    assert run.state == "success"
    tis = [ti for ti in run.get_task_instances() if ti.task_id == "load_history"]
    assert sorted(ti.rendered_map_index for ti in tis) == sorted(wanted)
    report = pg.execute("SELECT details FROM load_stats WHERE operation = 'history_backfill' ORDER BY id DESC LIMIT 1"
                        ).fetchone()[0]
    assert report["tickers"] == 3 and report["ok"] == 2 and report["empty"] == 1 and report["failed"] == 0
    raw = pg.execute("SELECT count(*) FROM daily_prices").fetchone()[0]
    adjusted = pg.execute("SELECT count(DISTINCT ticker), count(*) FROM daily_prices_adjusted").fetchone()
    assert raw == report["raw_rows"] > 1_000 and adjusted == (2, raw)  # the delisted ticker has its series too
    factors = pg.execute("SELECT ticker, ex_date, kind FROM adjustment_factors ORDER BY ticker").fetchall()
    assert factors == [(delisted, dt.date(2021, 11, 2), "split")]  # 005930's 2018 split is out of the window
    outcomes = dict(pg.execute("SELECT details->>'ticker', details->>'status' FROM load_stats "
                               "WHERE operation = 'history_ticker'").fetchall())
    assert outcomes == {wanted[0]: "ok", wanted[1]: "ok", wanted[2]: "empty"}
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        pushed = session.scalar(select(func.count()).select_from(XComModel).where(
            XComModel.dag_id == dag.dag_id, XComModel.run_id == run.run_id, XComModel.task_id == "load_history"))
    assert pushed == 0, "outcomes go to load_stats, not XCom"
    emitted = {ti.task_id: ti.state for ti in run.get_task_instances() if ti.task_id.startswith("emit_")}
    assert emitted == {"emit_adjusted": "success", "emit_raw": "success"}


def test_krx_daily_prices_dag_through_pykrx_and_the_replay_matches_the_sample(airflow_db, dagbag, sample_env,
                                                                              monkeypatch):
    from krxflow.sample.market import SampleMarket, SampleSource
    from tests.fakes.krx_replay import KrxReplay

    pg = sample_env
    monkeypatch.setenv("KRXFLOW_SOURCE", "pykrx")
    monkeypatch.setenv("KRXFLOW_KRX_MIN_INTERVAL", "0")
    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    for name in ("KRX_ID", "KRX_PW"):  # the source exports them for pykrx; gone again after the test
        monkeypatch.delenv(name, raising=False)
    with KrxReplay(SampleMarket(SAMPLE_TICKERS), require_login=True) as replay:
        run = dagbag.get_dag("krx_daily_prices").test(logical_date=_kst("2018-05-04"))
    assert run.state == "success"
    assert replay.received["MDCSTAT01501"] == 1
    rows = pg.execute("SELECT ticker, open, high, low, close, volume, listed_shares FROM daily_prices "
                      "ORDER BY ticker").fetchall()
    expected = SampleSource(SAMPLE_TICKERS).daily_prices("2018-05-04")
    assert len(rows) == len(expected)
    samsung = next(r for r in rows if r[0] == "005930")
    assert samsung[6] == 6_419_324_700  # the first session after the 50:1 split
    assert 30_000 < samsung[4] < 80_000


def test_a_history_backfill_whose_tickers_fail_ends_failed_and_still_reports(airflow_db, dagbag, sample_env,
                                                                              monkeypatch):
    """Naver blocks at the first ticker: every ticker fails, the report records it, the run is red."""
    from krxflow.sample.market import SampleMarket
    from tests.fakes.krx_replay import KrxReplay

    pg = sample_env
    monkeypatch.setenv("KRXFLOW_SOURCE", "pykrx")
    monkeypatch.setenv("KRXFLOW_KRX_MIN_INTERVAL", "0")
    market = SampleMarket(SAMPLE_TICKERS)
    wanted = market.tickers[:3]
    with KrxReplay(market) as replay:
        replay.block("403")
        run = dagbag.get_dag("krx_history_backfill").test(run_conf={"years": 1, "tickers": wanted})
    assert run.state == "failed"
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert [states[("load_history", i)] for i in range(3)] == ["failed"] * 3
    assert states[("report", -1)] == "success" and states[("check", -1)] == "failed"
    assert [entry["status"] for entry in replay.wire()] == [403], "one request into the block, none after it"
    report = pg.execute("SELECT status, details FROM load_stats WHERE operation = 'history_backfill'").fetchone()
    assert report[0] == "failed" and report[1]["failed"] == 3 and report[1]["failed_tickers"] == sorted(wanted)


def test_a_history_backfill_where_every_ticker_is_empty_succeeds_with_a_warning(airflow_db, dagbag, sample_env):
    pg = sample_env
    run = dagbag.get_dag("krx_history_backfill").test(run_conf={"years": 1, "tickers": ["999990", "999991"]})
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances() if ti.map_index == -1}
    assert states["check"] == "success" and states["emit_adjusted"] == "skipped"
    report = pg.execute("SELECT status, details FROM load_stats WHERE operation = 'history_backfill'").fetchone()
    assert report[0] == "warning" and report[1]["empty"] == 2 and report[1]["failed"] == 0


def test_daily_runs_after_a_history_backfill_keep_the_adjusted_series_current(airflow_db, dagbag, sample_env):
    """History up to 2024-09-03, then seven daily runs: the rights issue of 2024-09-10 lands in between."""
    from krxflow.calendar import trading_days
    from krxflow.krx.loading import load_ticker_history
    from krxflow.sample.market import SampleSource

    pg = sample_env
    source = SampleSource(SAMPLE_TICKERS)
    for ticker in source.market.tickers:
        load_ticker_history(source, ticker, "2023-09-01", "2024-09-03")
    rights = source.market.tickers[EVENT_TICKERS["rights"]]
    before = dict(pg.execute("SELECT trade_date, close FROM daily_prices_adjusted WHERE ticker = %s",
                             (rights,)).fetchall())
    days = trading_days("2024-09-04", "2024-09-12")
    for day in days:
        run = dagbag.get_dag("krx_daily_prices").test(logical_date=_kst(day.isoformat()))
        assert run.state == "success", day
    current = pg.execute("SELECT count(*) FILTER (WHERE a.ticker IS NULL), count(*) FROM daily_prices p "
                         "LEFT JOIN daily_prices_adjusted a USING (ticker, trade_date)").fetchone()
    assert current[0] == 0 and current[1] > 0, "every raw row has its adjusted row, to the last session"
    assert pg.execute("SELECT max(trade_date) FROM daily_prices_adjusted").fetchone()[0] == days[-1]
    factor = pg.execute("SELECT ex_date, factor::float8, kind FROM adjustment_factors WHERE ticker = %s",
                        (rights,)).fetchall()
    assert [(f[0], f[2]) for f in factor] == [(dt.date(2024, 9, 10), "rights_or_bonus")]
    after = dict(pg.execute("SELECT trade_date, close FROM daily_prices_adjusted WHERE ticker = %s",
                            (rights,)).fetchall())
    day = dt.date(2024, 6, 3)  # well before the ex-date: rewritten by the factor
    assert float(after[day]) == pytest.approx(float(before[day]) * factor[0][1], abs=1e-4)
    stats = pg.execute("SELECT details->>'rewritten' FROM load_stats WHERE operation = 'adjust_session'").fetchall()
    assert stats, "each adjust run is recorded in load_stats"
