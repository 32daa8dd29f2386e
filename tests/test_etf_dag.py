"""The krx_etf DAG: one run per session, by logical date, and ``airflow backfill create`` over a week
with holidays run by a real scheduler (the sample source; see tests/test_krx_backfill_cli.py)."""

from __future__ import annotations

import pendulum
import pytest

from tests.test_krx_dags import _kst  # a session's KST evening, as the KRX DAGs' tests take it

SAMPLE_TICKERS = 20


@pytest.fixture
def sample_env(monkeypatch, clean_db, redis_client):
    monkeypatch.setenv("KRXFLOW_SOURCE", "sample")
    monkeypatch.setenv("KRXFLOW_SAMPLE_TICKERS", str(SAMPLE_TICKERS))
    clean_db.execute("TRUNCATE krx_etps, krx_etp_prices")
    return clean_db


def test_krx_etf_is_a_session_dag_in_the_krx_pool(dagbag):
    dag = dagbag.get_dag("krx_etf")
    assert dag is not None and type(dag.timetable).__name__ == "KRXSessionTimetable"
    assert dag.get_task("load").pool == "krx_api"
    assert {t.task_id for t in dag.tasks} == {"load", "check"}
    assert {a.uri.rsplit("/", 1)[-1] for a in dag.get_task("load").outlets} == {"krx_etps", "krx_etp_prices"}


def test_a_run_loads_its_kst_session_and_a_rerun_changes_nothing(airflow_db, dagbag, sample_env):
    from krxflow.sample.market import SampleMarket
    from krxflow.sample.market_etps import day_frame

    pg, dag = sample_env, dagbag.get_dag("krx_etf")
    assert dag.test(logical_date=_kst("2024-01-03")).state == "success"
    market = SampleMarket(SAMPLE_TICKERS)
    expected = sum(len(day_frame(market, k, pendulum.date(2024, 1, 3))) for k in ("ETF", "ETN"))
    assert pg.execute("SELECT trade_date, count(*) FROM krx_etp_prices GROUP BY 1").fetchall() == \
        [(pendulum.date(2024, 1, 3), expected)]
    check = pg.execute("SELECT status, details->>'rows' FROM load_stats WHERE operation = 'quality_check' "
                       "AND table_name = 'krx_etp_prices'").fetchall()
    assert check == [("ok", str(expected))]
    before = pg.execute("SELECT * FROM krx_etps ORDER BY code").fetchall()
    assert dag.test(logical_date=_kst("2024-01-03")).state == "success"
    assert pg.execute("SELECT * FROM krx_etps ORDER BY code").fetchall() == before
    assert dag.test(logical_date=_kst("2024-02-09")).state == "success"  # Seollal: skipped, not failed
    assert pg.execute("SELECT count(DISTINCT trade_date) FROM krx_etp_prices").fetchone()[0] == 1


@pytest.mark.integration
def test_backfill_create_loads_only_the_sessions_by_logical_date(airflow_db, clean_db, redis_client,
                                                                local_airflow_stack):
    from tests.test_krx_backfill_cli import SESSIONS, backfill_through_the_cli

    clean_db.execute("TRUNCATE krx_etps, krx_etp_prices")
    backfill_through_the_cli(local_airflow_stack, "krx_etf")
    from krxflow.sample.market import SampleMarket
    from krxflow.sample.market_etps import day_frame

    market = SampleMarket(SAMPLE_TICKERS)  # the shared stack's sample market (KRXFLOW_SAMPLE_TICKERS=20)
    days = clean_db.execute("SELECT trade_date, count(*) FROM krx_etp_prices GROUP BY 1 ORDER BY 1").fetchall()
    assert [d for d, _ in days] == SESSIONS, days
    assert [n for _, n in days] == [sum(len(day_frame(market, kind, day)) for kind in ("ETF", "ETN"))
                                    for day in SESSIONS], days
    assert clean_db.execute("SELECT count(*) FROM krx_etps WHERE first_seen = %s", (SESSIONS[0],)).fetchone()[0] > 0
    checks = clean_db.execute("SELECT count(*) FROM load_stats WHERE operation = 'quality_check' "
                              "AND table_name = 'krx_etp_prices'").fetchone()[0]
    assert checks == len(SESSIONS)
