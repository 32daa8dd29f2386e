"""Start and stop Airflow components (scheduler, api-server) as subprocesses for tests and benches."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CLI_TIMEOUT = 180  # seconds per airflow CLI call


def airflow_cli(env: dict, *args: str, timeout: float = 300) -> str:
    """``airflow <args>`` to completion; its stdout, or a RuntimeError carrying its output."""
    result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def forget_dag_history(dag_id: str) -> None:
    """Delete every run, task instance and backfill of ``dag_id`` from the metadata database.

    Tests of one session share that database, and a backfill skips the dates that already have a
    run (``reprocess_behavior`` none): an earlier test's runs of the same DAG would make a backfill
    create nothing. Call before ``dags reserialize`` (the DAG's row goes too, serializing brings it back).
    """
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound

    try:
        delete_dag(dag_id)
    except DagNotFound:
        pass


def newest_backfill(dag_id: str) -> tuple[bool, dict[dt.date, str]]:
    """The newest backfill of ``dag_id`` in the metadata database: whether the scheduler has marked it
    complete, and the state of each of its runs by market session.

    Only that backfill's runs: tests of one session share the metadata database, and an earlier
    test's backfill of the same DAG must neither count here nor still be running (Airflow refuses a
    second running backfill per DAG), hence :func:`wait_for_backfill` waits for the completion mark.
    """
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from krxflow.market_time import kst_date

    with create_session() as session:
        backfill = session.scalars(select(Backfill).where(Backfill.dag_id == dag_id)
                                   .order_by(Backfill.id.desc()).limit(1)).first()
        if backfill is None:
            return False, {}
        runs = session.scalars(select(DagRun).where(DagRun.backfill_id == backfill.id)).all()
        return backfill.completed_at is not None, {kst_date(r.logical_date): str(r.state) for r in runs}


def wait_for_backfill(dag_id: str, processes: list[subprocess.Popen], deadline_seconds: float,
                      logs: Path) -> dict[dt.date, str]:
    """Wait (bounded) until the scheduler has marked the newest backfill of ``dag_id`` complete.

    The scheduler checks for finished backfills every 30 s, after the runs themselves ended. Fails
    at once when one of ``processes`` dies, and at the deadline when the backfill is not complete.
    Returns the runs' states by session (complete means none is queued or running: each is
    success or failed, which the caller asserts on).
    """
    deadline = time.monotonic() + deadline_seconds
    completed, states = newest_backfill(dag_id)
    while not completed and time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), f"an Airflow process died; logs in {logs}"
        time.sleep(3)
        completed, states = newest_backfill(dag_id)
    assert completed, f"the backfill of {dag_id} is not complete after {deadline_seconds}s: {states}; logs in {logs}"
    return states


def start_airflow(env: dict, log_dir: Path, name: str, *args: str) -> subprocess.Popen:
    """``airflow <args>`` in its own process group, logging to ``<log_dir>/<name>.log``."""
    out = open(log_dir / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies waiting for a reaper do not count)."""
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def stop_process(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the process group, SIGKILL whatever is left of it after ``grace`` seconds.

    The whole group, not only its leader: an idle LocalExecutor worker outlives the scheduler
    that started it when only the scheduler is waited for.
    """
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    if proc.poll() is None or _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _group_alive(pgid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


class SharedComponents:
    """Airflow components that consecutive tests share: started by ``start(logs)`` (which returns
    ``env`` for the CLI and the ``processes`` it started) when the first of them asks (:meth:`started`),
    stopped (:meth:`stop`) when the next test does not need them, so no other test runs beside a live
    scheduler on the same metadata database; a later test that needs them again gets them anew.
    """

    def __init__(self, name: str, start):
        self.name, self._start = name, start
        self._running: dict | None = None

    def started(self) -> dict:
        """``env`` (for the CLI), ``logs`` (the components' log folder), ``processes`` (in start order)."""
        if self._running is None:
            import tempfile

            logs = Path(tempfile.mkdtemp(prefix=f"krxflow-{self.name}-"))
            self._running = {"logs": logs, **self._start(logs)}
        return self._running

    def stop(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            for process in reversed(running["processes"]):
                stop_process(process)
