"""KRX pacing across Celery workers: two ``airflow celery worker`` processes, one offline KRX.

The Redis pacer is what keeps krxflow polite when its tasks run on several workers (or hosts):
each request claims its turn in Redis right before it is sent. Here the CeleryExecutor spreads an
``airflow backfill create`` of ``krx_daily_prices`` over two workers (two tasks each, the
``krx_api`` pool four wide, four runs at once), and every task process talks to the same offline
KRX: a ``sitecustomize`` on the workers' ``PYTHONPATH`` joins the test's
:class:`~tests.fakes.krx_replay.KrxReplay` (pykrx's real HTTP and parsing, answers from the sample
market, the arrival of every request logged in Redis). What KRX saw is then checked: one login for
the installation and no two requests closer than the pacer's interval, though both workers sent.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import textwrap
from pathlib import Path

import pytest

from krxflow.sample.kis_server import free_port
from tests.fakes.airflow_processes import (CLI_TIMEOUT, airflow_cli, forget_dag_history, start_airflow, stop_process,
                                          wait_for_backfill)
from tests.fakes.krx_replay import KrxReplay

#: 2024-02-05..16 without Seollal (9 and 12 February).
SESSIONS = [dt.date(2024, 2, d) for d in (5, 6, 7, 8, 13, 14, 15, 16)]
TICKERS = 20
INTERVAL = 0.5  # seconds between two requests at KRX (KRXFLOW_KRX_MIN_INTERVAL; 1 s by default)
WORKERS = 2
DEADLINE_SECONDS = 300

#: Joins the test's offline KRX in every process of a worker (tasks are forked from them).
SITECUSTOMIZE = textwrap.dedent('''
    import os

    if os.environ.get("KRXFLOW_TEST_KRX_WIRE"):
        import atexit
        import datetime as dt

        from krxflow.sample.market import SampleMarket
        from tests.fakes.krx_replay import KrxReplay

        _replay = KrxReplay(SampleMarket(int(os.environ["KRXFLOW_SAMPLE_TICKERS"])), require_login=True,
                            wire_id=os.environ["KRXFLOW_TEST_KRX_WIRE"],
                            today=dt.date.fromisoformat(os.environ["KRXFLOW_TEST_KRX_TODAY"])).start()
        atexit.register(_replay.stop)
''')


@pytest.mark.integration
@pytest.mark.timeout(DEADLINE_SECONDS + 240)
def test_two_celery_workers_never_send_to_krx_closer_than_the_interval(airflow_db, clean_db, redis_client,
                                                                      airflow_components_env):
    from krxflow.krx.pacing import KRX_POOL
    from krxflow.sample.market import SampleMarket
    from krxflow.stack.servers import celery_broker_url

    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="krxflow-celery-pacing-"))
    site = logs / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {
        **airflow_components_env(port, parallelism=4, executor="CeleryExecutor", celery_concurrency=2,
                                 celery_broker_url=celery_broker_url(os.environ["AIRFLOW_CONN_REDIS_DEFAULT"])),
        "KRXFLOW_SOURCE": "pykrx", "KRXFLOW_SAMPLE_TICKERS": str(TICKERS),
        "AIRFLOW_CONN_KRX_DEFAULT": "generic://krx-user:krx-secret@",
        "KRXFLOW_KRX_MIN_INTERVAL": str(INTERVAL),
        "AIRFLOW__API_AUTH__JWT_SECRET": "krxflow-integration-test-secret",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the backfill's runs
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }
    forget_dag_history("krx_daily_prices")
    airflow_cli(env, "dags", "reserialize", timeout=CLI_TIMEOUT)
    airflow_cli(env, "pools", "set", KRX_POOL, "4", "test: four KRX tasks at once, on two workers", timeout=CLI_TIMEOUT)
    airflow_cli(env, "dags", "unpause", "krx_daily_prices", timeout=CLI_TIMEOUT)
    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        worker_env = {**env, "PYTHONPATH": os.pathsep.join([str(site), env["PYTHONPATH"]]),
                      "KRXFLOW_TEST_KRX_WIRE": replay.wire_id, "KRXFLOW_TEST_KRX_TODAY": replay.today.isoformat()}
        processes = [start_airflow(env, logs, "api-server", "api-server", "--apps", "execution", "--port", str(port),
                                   "--workers", "1"),
                     start_airflow(env, logs, "scheduler", "scheduler")]
        processes += [start_airflow(worker_env, logs, f"celery-worker-{n}", "celery", "worker", "--celery-hostname",
                                    f"pacing-{os.getpid()}-{n}@%h", "--skip-serve-logs")
                      for n in range(1, WORKERS + 1)]
        try:
            airflow_cli(env, "backfill", "create", "--dag-id", "krx_daily_prices", "--from-date", str(SESSIONS[0]),
                        "--to-date", str(SESSIONS[-1]), "--max-active-runs", "4", timeout=CLI_TIMEOUT)
            states = wait_for_backfill("krx_daily_prices", processes, DEADLINE_SECONDS, logs)
        finally:
            for process in reversed(processes):
                stop_process(process)
        wire = replay.wire()

    assert sorted(states) == SESSIONS and set(states.values()) == {"success"}, f"runs {states}; logs in {logs}"
    days = [r[0] for r in clean_db.execute("SELECT DISTINCT trade_date FROM daily_prices ORDER BY 1")]
    assert days == SESSIONS
    # Both workers ran krxflow's tasks (each logs the Celery tasks it received).
    received = {n: len(re.findall(r"execute_workload\[[^\]]+\] received", (logs / f"celery-worker-{n}.log").read_text()))
                for n in range(1, WORKERS + 1)}
    assert all(received.values()), f"tasks received per worker: {received}; logs in {logs}"
    senders = {entry["pid"] for entry in wire}
    assert len(senders) >= 2, f"requests from {len(senders)} process(es) only"
    kinds = [entry["kind"] for entry in wire]
    assert kinds.count("login") == 1, "one login for the installation, shared through Redis"
    assert kinds.count("MDCSTAT01501") == len(SESSIONS), "one all-market request per session"
    arrivals = [entry["t"] for entry in wire if entry["kind"] != "naver"]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= INTERVAL, f"two requests {min(gaps):.3f}s apart at KRX: {sorted(gaps)[:5]}"
    print(f"KRX saw {len(wire)} requests from {len(senders)} task processes; tasks per worker {received}; "
          f"smallest gap {min(gaps):.3f}s (interval {INTERVAL}s)")
