"""Start and stop Airflow components (scheduler, api-server) as subprocesses for tests and benches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def start_airflow(env: dict, log_dir: Path, name: str, *args: str) -> subprocess.Popen:
    """``airflow <args>`` in its own process group, logging to ``<log_dir>/<name>.log``."""
    out = open(log_dir / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after 30 s; a process already gone is fine."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
