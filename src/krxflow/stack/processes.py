"""Processes ``make run`` starts: pid records in ``<run dir>/state.json``, start and stop by id, ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from krxflow.stack.env import REPO_ROOT, Settings


def log(message: str, started: float | None = None) -> None:
    suffix = f"  ({time.monotonic() - started:.1f} s)" if started is not None else ""
    print(f"[krxflow] {message}{suffix}", flush=True)


def load_state(settings: Settings) -> dict[str, Any]:
    if settings.state_file.exists():
        return json.loads(settings.state_file.read_text())
    return {"processes": {}}


def save_state(settings: Settings, state: dict[str, Any]) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(settings.state_file)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_port(preferred: int) -> int:
    return preferred if port_free(preferred) else free_port()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5, process_pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process_pid is not None and not pid_alive(process_pid):
            raise RuntimeError(f"{what}: the process exited (see the logs under the run dir)")
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


def spawn(settings: Settings, state: dict, name: str, argv: list[str], env: dict[str, str],
          restore_sigint: bool = False) -> int:
    """Start ``argv`` in its own session (so ``down`` can stop its whole process group), log to a file."""
    settings.logs.mkdir(parents=True, exist_ok=True)
    logfile = open(settings.logs / f"{name}.log", "ab")
    if restore_sigint:
        # A background child inherits SIGINT=ignored from a non-interactive shell; airflow standalone
        # stops cleanly only on SIGINT, so put the default handler back before exec.
        argv = [sys.executable, "-c",
                "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
                *argv]
    proc = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            cwd=str(REPO_ROOT), start_new_session=True)
    logfile.close()
    state["processes"][name] = {"pid": proc.pid, "argv": argv, "log": str(settings.logs / f"{name}.log")}
    save_state(settings, state)
    return proc.pid


def stop_process(name: str, info: dict, first_signal: int = signal.SIGTERM, grace: float = 10.0) -> str:
    """Stop one recorded process: ``first_signal`` to it, then SIGTERM/SIGKILL to its process group."""
    pid = info.get("pid")
    if not pid_alive(pid):
        return "not running"
    try:
        os.kill(pid, first_signal)
    except ProcessLookupError:
        return "not running"
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.3)
    how = "stopped"
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if not _group_alive(pid):
            break
        how = "stopped (forced)" if sig == signal.SIGKILL else how
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.3)
    return how


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


def run_step(argv: list[str], env: dict[str, str], what: str, timeout: float = 600) -> str:
    result = subprocess.run(argv, env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout
