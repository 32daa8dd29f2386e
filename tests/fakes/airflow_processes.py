"""Start and stop Airflow components (scheduler, api-server) as subprocesses for tests and benches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def airflow_cli(env: dict, *args: str, timeout: float = 300) -> str:
    """``airflow <args>`` to completion; its stdout, or a RuntimeError carrying its output."""
    result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


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
