"""``airflow backfill create`` of ``krx_market_reports`` over a week with a holiday, by a real scheduler.

As tests/test_krx_backfill_cli.py does for krx_daily_prices: the api-server (Execution API) and
the scheduler run as subprocesses against the test session's databases; 2024-02-07..2024-02-14
(Seollal: 9 and 12 February are holidays) is backfilled with the sample source for two reports
(the ``reports`` Param given with ``--dag-run-conf``, to keep the run short); exactly the four
sessions get runs, each with its rows and its quality check.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import pytest

from tests.fakes.airflow_processes import airflow_cli, start_airflow, stop_process
from krxflow.sample.kis_server import free_port
from tests.test_krx_backfill_cli import CLI_TIMEOUT, DEADLINE_SECONDS, SESSIONS, _run_states

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "krx_market_reports"


@pytest.mark.integration
def test_backfill_create_loads_the_reports_of_each_session_only(airflow_db, clean_db, redis_client, airflow_components_env):
    from psycopg import sql

    from krxflow.krx.report_catalog import REPORTS

    pg = clean_db  # every report table empty: the run must fill exactly the two reports asked for
    pg.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in
                                                                 sorted({r.table for r in REPORTS.values()}))))
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="krxflow-reports-backfill-it-"))
    env = {
        **airflow_components_env(port, parallelism=2),  # LocalExecutor, preloaded forkserver, as `make run`
        "KRXFLOW_SOURCE": "sample",
        "KRXFLOW_SAMPLE_TICKERS": "20",
        "AIRFLOW__API_AUTH__JWT_SECRET": "krxflow-integration-test-secret",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the backfill's runs, no "latest session" run
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }
    from krxflow.krx.pacing import KRX_POOL, KRX_POOL_DESCRIPTION, KRX_POOL_SLOTS

    airflow_cli(env, "dags", "reserialize", timeout=CLI_TIMEOUT)
    airflow_cli(env, "pools", "set", KRX_POOL, str(KRX_POOL_SLOTS), KRX_POOL_DESCRIPTION, timeout=CLI_TIMEOUT)
    airflow_cli(env, "dags", "unpause", DAG_ID, timeout=CLI_TIMEOUT)
    api = start_airflow(env, logs, "api-server", "api-server", "--apps", "execution", "--port", str(port), "--workers", "1")
    scheduler = start_airflow(env, logs, "scheduler", "scheduler")
    try:
        airflow_cli(env, "backfill", "create", "--dag-id", DAG_ID, "--from-date", "2024-02-07",
                    "--to-date", "2024-02-14", "--max-active-runs", "2",
                    "--dag-run-conf", json.dumps({"reports": ["fundamentals", "foreign_ownership"]}),
                    timeout=CLI_TIMEOUT)
        deadline = time.monotonic() + DEADLINE_SECONDS
        states: dict[dt.date, str] = {}
        while time.monotonic() < deadline:
            states = _run_states(DAG_ID)
            if len(states) == len(SESSIONS) and all(s in ("success", "failed") for s in states.values()):
                break
            assert api.poll() is None and scheduler.poll() is None, f"an Airflow process died; logs in {logs}"
            time.sleep(3)
        assert sorted(states) == SESSIONS, f"runs {states}; logs in {logs}"  # no run for the holidays
        assert set(states.values()) == {"success"}, f"runs {states}; logs in {logs}"
    finally:
        stop_process(scheduler)
        stop_process(api)
    for table in ("krx_fundamentals", "krx_foreign_ownership"):
        days = pg.execute(f"SELECT trade_date, count(*) FROM {table} GROUP BY 1 ORDER BY 1").fetchall()  # noqa: S608
        assert [d for d, _ in days] == SESSIONS and all(n > 10 for _, n in days), table
    checks = pg.execute("SELECT table_name, count(*) FROM load_stats WHERE operation = 'quality_check' "
                        "AND dag_id = %s GROUP BY 1 ORDER BY 1", (DAG_ID,)).fetchall()
    assert checks == [("krx_foreign_ownership", len(SESSIONS)), ("krx_fundamentals", len(SESSIONS))]
    assert pg.execute("SELECT count(*) FROM krx_investor_trading").fetchone()[0] == 0
