"""``airflow backfill create`` over a week with a holiday, run by a real scheduler (LocalExecutor).

``backfill create`` only queues runs: a scheduler must run them, and tasks in Airflow 3 report
through the Execution API, so this test starts ``airflow api-server --apps execution`` and
``airflow scheduler`` as subprocesses against the test session's databases, serializes the DAGs
(``airflow dags reserialize``), creates the ``krx_api`` pool, unpauses the DAG, backfills
2024-02-07..2024-02-14 (Seollal: 9 and 12 February are holidays) with the sample source, waits
for the runs (bounded) and checks that exactly the four sessions were loaded. The processes are
stopped at the end whatever happens.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest

from tests.fakes.airflow_processes import (airflow_cli, forget_dag_history, start_airflow, stop_process,
                                          wait_for_backfill)
from krxflow.sample.kis_server import free_port

SESSIONS = [dt.date(2024, 2, 7), dt.date(2024, 2, 8), dt.date(2024, 2, 13), dt.date(2024, 2, 14)]
DEADLINE_SECONDS = 180
CLI_TIMEOUT = 180  # seconds per airflow CLI call


def backfill_through_the_cli(airflow_components_env, dag_id: str, *create_args: str) -> Path:
    """``airflow backfill create`` of ``dag_id`` over 2024-02-07..14 run to the end by a real scheduler.

    Forgets what earlier tests ran of ``dag_id``, starts the api-server (Execution API) and the
    scheduler, serializes the DAGs, creates the KRX pool, unpauses ``dag_id``, creates the backfill
    (``create_args`` added, e.g. ``--dag-run-conf``), waits (bounded) for the scheduler to mark it
    complete and checks that exactly the four sessions ran and succeeded. Returns the logs' folder;
    the processes are stopped whatever happens.
    """
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix=f"krxflow-backfill-{dag_id}-"))
    env = {
        **airflow_components_env(port, parallelism=2),  # LocalExecutor, preloaded forkserver, as `make run`
        "KRXFLOW_SOURCE": "sample",
        "KRXFLOW_SAMPLE_TICKERS": "20",
        "AIRFLOW__API_AUTH__JWT_SECRET": "krxflow-integration-test-secret",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the backfill's runs, no "latest session" run
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }
    from krxflow.krx.pacing import KRX_POOL, KRX_POOL_DESCRIPTION, KRX_POOL_SLOTS

    forget_dag_history(dag_id)
    airflow_cli(env, "dags", "reserialize", timeout=CLI_TIMEOUT)
    airflow_cli(env, "pools", "set", KRX_POOL, str(KRX_POOL_SLOTS), KRX_POOL_DESCRIPTION, timeout=CLI_TIMEOUT)
    airflow_cli(env, "dags", "unpause", dag_id, timeout=CLI_TIMEOUT)
    api = start_airflow(env, logs, "api-server", "api-server", "--apps", "execution", "--port", str(port), "--workers", "1")
    scheduler = start_airflow(env, logs, "scheduler", "scheduler")
    try:
        airflow_cli(env, "backfill", "create", "--dag-id", dag_id, "--from-date", "2024-02-07",
                    "--to-date", "2024-02-14", "--max-active-runs", "2", *create_args, timeout=CLI_TIMEOUT)
        states = wait_for_backfill(dag_id, [api, scheduler], DEADLINE_SECONDS, logs)
        assert sorted(states) == SESSIONS, f"runs {states}; logs in {logs}"  # no run for the holidays
        assert set(states.values()) == {"success"}, f"runs {states}; logs in {logs}"
    finally:
        stop_process(scheduler)
        stop_process(api)
    return logs


@pytest.mark.integration
def test_backfill_create_runs_only_sessions_and_loads_them(airflow_db, clean_db, redis_client, airflow_components_env):
    pg = clean_db
    logs = backfill_through_the_cli(airflow_components_env, "krx_daily_prices")
    assert "Set forkserver preload modules for scheduler" in (logs / "scheduler.log").read_text()
    days = pg.execute("SELECT trade_date, count(*) FROM daily_prices GROUP BY trade_date ORDER BY 1").fetchall()
    assert [d for d, _ in days] == SESSIONS
    assert all(n > 10 for _, n in days)
    checks = pg.execute("SELECT count(*) FROM load_stats WHERE operation = 'quality_check' "
                        "AND dag_id = 'krx_daily_prices'").fetchone()[0]
    assert checks == len(SESSIONS)
