"""``airflow backfill create`` over a week with a holiday, run by a real scheduler (LocalExecutor).

``backfill create`` only queues runs: a scheduler must run them, and tasks in Airflow 3 report
through the Execution API, so the session's ``local_airflow_stack`` (tests/conftest.py: ``airflow
api-server --apps execution`` and ``airflow scheduler`` as subprocesses against the test session's
databases, started once and shared with tests/test_krx_reports_backfill.py) runs them. The test
forgets earlier runs of the DAG, serializes the DAGs (``airflow dags reserialize``), unpauses the
DAG, backfills 2024-02-07..2024-02-14 (Seollal: 9 and 12 February are holidays) with the sample
source, waits for the runs (bounded) and checks that exactly the four sessions were loaded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.fakes.airflow_processes import CLI_TIMEOUT, airflow_cli, forget_dag_history, wait_for_backfill

SESSIONS = [dt.date(2024, 2, 7), dt.date(2024, 2, 8), dt.date(2024, 2, 13), dt.date(2024, 2, 14)]
DEADLINE_SECONDS = 180


def backfill_through_the_cli(stack: dict, dag_id: str, *create_args: str) -> Path:
    """``airflow backfill create`` of ``dag_id`` over 2024-02-07..14 run to the end by ``stack``'s scheduler.

    Forgets what earlier tests ran of ``dag_id`` (its serialized DAG too, so the DAGs are serialized
    again), unpauses ``dag_id``, creates the backfill (``create_args`` added, e.g. ``--dag-run-conf``),
    waits (bounded) for the scheduler to mark it complete and checks that exactly the four sessions
    ran and succeeded. Returns the logs' folder of the stack's components.
    """
    env, logs = stack["env"], stack["logs"]
    forget_dag_history(dag_id)
    airflow_cli(env, "dags", "reserialize", timeout=CLI_TIMEOUT)
    airflow_cli(env, "dags", "unpause", dag_id, timeout=CLI_TIMEOUT)
    airflow_cli(env, "backfill", "create", "--dag-id", dag_id, "--from-date", "2024-02-07",
                "--to-date", "2024-02-14", "--max-active-runs", "2", *create_args, timeout=CLI_TIMEOUT)
    states = wait_for_backfill(dag_id, stack["processes"], DEADLINE_SECONDS, logs)
    assert sorted(states) == SESSIONS, f"runs {states}; logs in {logs}"  # no run for the holidays
    assert set(states.values()) == {"success"}, f"runs {states}; logs in {logs}"
    return logs


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_backfill_create_runs_only_sessions_and_loads_them(airflow_db, clean_db, redis_client, local_airflow_stack):
    pg = clean_db
    logs = backfill_through_the_cli(local_airflow_stack, "krx_daily_prices")
    assert "Set forkserver preload modules for scheduler" in (logs / "scheduler.log").read_text()
    days = pg.execute("SELECT trade_date, count(*) FROM daily_prices GROUP BY trade_date ORDER BY 1").fetchall()
    assert [d for d, _ in days] == SESSIONS
    assert all(n > 10 for _, n in days)
    checks = pg.execute("SELECT count(*) FROM load_stats WHERE operation = 'quality_check' "
                        "AND dag_id = 'krx_daily_prices'").fetchone()[0]
    assert checks == len(SESSIONS)
