"""``up`` / ``down`` / ``status``: ``scripts/stack.py`` (``make run``, ``make stop``, ``make status``).

What ``up`` does, in order, each step printed with its time:

1. PostgreSQL and Redis (:func:`krxflow.stack.servers.ensure_servers`): the configured ones, or
   private ones when none is reachable.
2. Creates the market database (``KRXFLOW_MARKET_DB``, default ``krxflow``) and Airflow's metadata
   database (``KRXFLOW_AIRFLOW_DB``, default ``krxflow_airflow``) when missing; migrates both, and
   creates Grafana's read-only login role (``grafana/provisioning/create_login_role.sql`` with psql).
3. ``python -m krxflow.bootstrap``: Connections, Pools, Variables.
4. Sample mode (no ``KRX_ID``/``KRX_PW``, no ``KIS_APPKEY``/``KIS_APPSECRET``): ``KRXFLOW_SOURCE=sample``
   and the local fake KIS server as a process, and says so.
5. ``airflow standalone`` (scheduler, dag-processor, triggerer, api-server) with the environment of
   :mod:`krxflow.environment`; with ``KRXFLOW_EXECUTOR=celery`` also N ``airflow celery worker``
   processes on a Redis database of their own. Standalone is started with SIGINT restored (a
   background standalone otherwise ignores it) and stopped with SIGINT.
6. In sample mode (``KRXFLOW_DEMO=0`` turns it off) it unpauses the krxflow DAGs and starts a first
   round of runs through the REST API, so that within minutes the UI shows runs and the tables hold data.

Everything ``up`` starts is recorded in ``<run dir>/state.json`` (the run dir is ``KRXFLOW_RUN_DIR``,
default ``.run/`` in the repo); ``down`` stops exactly those processes by their ids.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from typing import Any

from krxflow.environment import CELERY_EXECUTOR
from krxflow.stack.demo import AirflowApi, admin_password, health_ok, krxflow_dag_ids, start_demo
from krxflow.stack.env import (REPO_ROOT, VENV_BIN, Settings, airflow_env, create_grafana_login, grafana_login,
                               load_dotenv_file, sample_mode, write_env_file)
from krxflow.stack.processes import (load_state, log, pick_port, pid_alive, port_free, run_step, save_state, spawn,
                                     stop_process, wait_for)
from krxflow.stack.servers import celery_broker_url, ensure_database, ensure_servers, stop_private_postgres

#: The process ``up`` waits on and ``make status`` names first: ``airflow standalone`` (LocalExecutor)
#: or the api-server (CeleryExecutor, where each component is a process of its own).
AIRFLOW_PROCESS = "airflow"
#: With the CeleryExecutor: the scheduler, dag-processor and triggerer beside the api-server.
AIRFLOW_COMPONENTS = ("scheduler", "dag-processor", "triggerer")
CELERY_WORKER_PREFIX = "celery-worker-"


def start_airflow(settings: Settings, state: dict, env: dict[str, str]) -> int:
    """``airflow standalone`` (it forces the LocalExecutor), or, with the CeleryExecutor, the api-server,
    scheduler, dag-processor and triggerer as processes of their own; returns the pid to wait on."""
    airflow = str(VENV_BIN / "airflow")
    if settings.executor != CELERY_EXECUTOR:
        pid = spawn(settings, state, AIRFLOW_PROCESS, [airflow, "standalone"], env, restore_sigint=True)
        state["processes"][AIRFLOW_PROCESS]["standalone"] = True
        save_state(settings, state)
        return pid
    pid = spawn(settings, state, AIRFLOW_PROCESS, [airflow, "api-server", "--port", str(state["api_port"])], env)
    for component in AIRFLOW_COMPONENTS:
        spawn(settings, state, component, [airflow, component], env)
    return pid


def start_celery_workers(settings: Settings, state: dict, env: dict[str, str]) -> list[str]:
    """``settings.celery_workers`` ``airflow celery worker`` processes, each with its own Celery hostname;
    they do not serve logs (one port per host): the api-server reads the task logs from the shared
    ``AIRFLOW_HOME/logs``."""
    names = []
    for number in range(1, settings.celery_workers + 1):
        name = f"{CELERY_WORKER_PREFIX}{number}"
        spawn(settings, state, name, [str(VENV_BIN / "airflow"), "celery", "worker", "--concurrency",
                                      str(settings.celery_concurrency), "--celery-hostname", f"{name}@%h",
                                      "--skip-serve-logs"], env)
        names.append(name)
    return names


def up(settings: Settings) -> dict[str, Any]:
    t0 = time.monotonic()
    state = load_state(settings)
    running = {n: i for n, i in state.get("processes", {}).items() if pid_alive(i.get("pid"))}
    if AIRFLOW_PROCESS in running:
        raise SystemExit(f"already running (pid {running[AIRFLOW_PROCESS]['pid']}): `make stop` first, or `make status`")
    state = {"processes": running, "started_at": time.time(), "root": str(REPO_ROOT)}
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    save_state(settings, state)

    # 1. PostgreSQL and Redis
    ensure_servers(settings, state, running)

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
        state["fake_kis_ws_url"] = f"ws://127.0.0.1:{pick_port(settings.fake_kis_port + 1)}"
    if settings.executor == CELERY_EXECUTOR:
        state["celery_broker_url"] = celery_broker_url(state["redis_url"])
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

    # 4. sample mode: the local fake KIS server (REST gateway, and the realtime WebSocket for kis_realtime)
    if state["sample"]["kis"]:
        step = time.monotonic()
        from krxflow.bootstrap import SAMPLE_KIS_APPKEY, SAMPLE_KIS_APPSECRET

        ws_port = state["fake_kis_ws_url"].rsplit(":", 1)[1]
        pid = spawn(settings, state, "fake_kis", [str(VENV_BIN / "python"), "-m", "krxflow.sample.kis_ws_server",
                                                  "--host", "127.0.0.1", "--rest-port", str(state["fake_kis_port"]),
                                                  "--ws-port", ws_port,
                                                  "--env", "live", "--appkey", SAMPLE_KIS_APPKEY,
                                                  "--appsecret", SAMPLE_KIS_APPSECRET,
                                                  # quotes start from the sample market's last close
                                                  *(["--sample"] if state["sample"]["krx"] else [])], env)
        wait_for(lambda: not port_free(state["fake_kis_port"]), 30, "fake KIS server", process_pid=pid)
        log(f"fake KIS server on {state['fake_kis_url']} (realtime {state['fake_kis_ws_url']})", step)

    # 5. Airflow: standalone (LocalExecutor), or its components and Celery workers (CeleryExecutor)
    step = time.monotonic()
    base_url = f"http://127.0.0.1:{state['api_port']}"
    state["ui_url"] = base_url
    pid = start_airflow(settings, state, env)
    wait_for(lambda: health_ok(base_url), 240, "airflow", interval=1.0, process_pid=pid)
    wait_for(lambda: admin_password(settings) is not None, 60, "admin password file", process_pid=pid)
    log(f"airflow healthy ({settings.executor}, pid {pid})", step)
    if settings.executor == CELERY_EXECUTOR:
        step = time.monotonic()
        for name in start_celery_workers(settings, state, env):
            log(f"{name}: pid {state['processes'][name]['pid']}")
        log(f"{settings.celery_workers} Celery workers x {settings.celery_concurrency} on "
            f"{state['celery_broker_url']}", step)

    api = AirflowApi(base_url, "admin", admin_password(settings))
    try:
        step = time.monotonic()
        expected = len([p for p in (REPO_ROOT / "dags").glob("*.py") if not p.name.startswith("_")])
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
    # Celery workers first (no new task starts), then Airflow (it writes to Postgres and Redis), servers last.
    servers = ("redis", "postgres")
    workers = [n for n in processes if n.startswith(CELERY_WORKER_PREFIX)]
    order = workers + [n for n in (AIRFLOW_PROCESS, "fake_kis") if n in processes]
    order += [n for n in processes if n not in (*order, *servers)]
    order += [n for n in servers if n in processes]
    for name in order:
        info = processes[name]
        if name == "postgres":
            result[name] = stop_private_postgres(info)
        elif name == AIRFLOW_PROCESS and info.get("standalone"):
            result[name] = stop_process(name, info, first_signal=signal.SIGINT, grace=20)
        else:
            result[name] = stop_process(name, info, grace=20)
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
