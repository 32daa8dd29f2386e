"""End to end: start krxflow the way ``make run`` does, drive it only through the REST API and the CLI.

``scripts/stack.py up`` (what ``make run`` calls) runs against this machine's PostgreSQL and Redis
with its own throwaway database names, a free port, a private run dir and Redis prefix, in sample
mode (no KRX/KIS credentials). Then, only through Airflow's REST API (token from ``/auth/token``)
and the ``airflow`` CLI:

krx_tickers → ``airflow backfill create`` for krx_daily_prices over two weeks → krx_history_backfill
for 20 tickers → the upkeep DAGs (db_partitions, db_matviews, db_retention, db_backup); the rows
are checked in Postgres; a rerun of the same work changes no row; ``stack.py down`` stops every
process it started. Bounded: every wait ends on its event and has a cap of its own (no budget in
seconds for the whole drive, which a loaded machine would fail).
The whole drive runs twice: with the LocalExecutor (``make run``) and with the CeleryExecutor and two
workers (``KRXFLOW_EXECUTOR=celery make run``); there, one worker is killed with SIGKILL (its whole
process group: Celery's pool, the task supervisors, the task processes) while it runs a per-ticker
history task: the scheduler finds the task without heartbeat, retries it on the other worker, and the
rerun of step 5 then changes no row (nothing was lost or written twice).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from krxflow.stack import demo as stack_demo, env as stack_env, processes as stack_processes
from krxflow.market_time import kst_today

ROOT = Path(__file__).resolve().parents[1]

#: Hang guard of the whole drive, stack start included (pytest-timeout's): every wait ends on its
#: event (a run's final state, a backfill's completion mark) and has a cap of its own, so this only
#: ends a drive that hangs; it is not a speed target (unloaded, the drives take ~150 s and ~370 s,
#: and several times that while other suites share the machine's two cores).
HANG_GUARD_SECONDS = 1800
#: What a killed worker costs: for its running task the scheduler's heartbeat timeout (below), its
#: detection interval and the DAG's first retry delay (30-60 s); for the tasks it had prefetched, the
#: queued timeout and its check interval; with room for a loaded machine.
KILLED_WORKER_RECOVERY_SECONDS = 300
pytestmark = [pytest.mark.integration, pytest.mark.timeout(HANG_GUARD_SECONDS)]

PG_SERVER = os.environ.get("KRXFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
REDIS_URL = os.environ.get("KRXFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")
DATA_TABLES = ("stocks", "daily_prices", "daily_prices_adjusted")
UPKEEP_DAGS = ("db_partitions", "db_matviews", "db_retention", "db_backup")
HISTORY_TICKERS = 20
KST = dt.timezone(dt.timedelta(hours=9))
#: A smaller sample market keeps the run short on 2 cores; the shapes are the same.
SAMPLE_TICKERS = 400


def _progress(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


#: ``make run`` with each executor: LocalExecutor (standalone) and ``KRXFLOW_EXECUTOR=celery`` with
#: two Celery workers (broker on the next Redis database).
EXECUTORS = {"local": {}, "celery": {"KRXFLOW_EXECUTOR": "celery", "KRXFLOW_CELERY_WORKERS": "2",
                                     "KRXFLOW_CELERY_CONCURRENCY": "2",
                                     # a user's own Airflow settings, passed through by `make run`: the
                                     # killed worker's running task is found in 1 minute instead of 5, and
                                     # the tasks it had taken from the queue but not started are sent
                                     # again after 2 minutes instead of 10
                                     "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                                     "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
                                     "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15"}}


@pytest.fixture(scope="module", params=sorted(EXECUTORS))
def running_stack(request):
    token = uuid.uuid4().hex[:8]
    run_dir = Path(tempfile.mkdtemp(prefix="krxflow-e2e-"))
    market_db, airflow_db = f"krxflow_e2e_{token}", f"krxflow_e2e_{token}_af"
    grafana_user = f"krxflow_grafana_e2e_{token}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "KRXFLOW_", "KRX_", "KIS_"))}
    env.update({
        "KRXFLOW_RUN_DIR": str(run_dir), "KRXFLOW_PG_SERVER": PG_SERVER, "KRXFLOW_REDIS_URL": REDIS_URL,
        "KRXFLOW_MARKET_DB": market_db, "KRXFLOW_AIRFLOW_DB": airflow_db,
        "KRXFLOW_API_PORT": str(stack_processes.free_port()), "KRXFLOW_FAKE_KIS_PORT": str(stack_processes.free_port()),
        "KRXFLOW_REDIS_PREFIX": f"krxflow-e2e-{token}:", "KRXFLOW_DEMO": "0", "KRXFLOW_PARALLELISM": "4",
        "KRXFLOW_SAMPLE_TICKERS": str(SAMPLE_TICKERS),
        "KRXFLOW_KRX_POOL_SLOTS": "4", "KRXFLOW_BACKUP_DIR": str(run_dir / "backups"),
        # roles are cluster-wide: each drive its own Grafana login, as each has its own databases
        "KRXFLOW_GRAFANA_DB_USER": grafana_user,
        **EXECUTORS[request.param],
    })
    failed_before = request.session.testsfailed
    started = time.monotonic()
    up = subprocess.run([sys.executable, str(ROOT / "scripts" / "stack.py"), "up"], env=env, cwd=str(ROOT),
                        capture_output=True, text=True, timeout=360)
    info = {"executor": request.param, "env": env, "run_dir": run_dir, "market_db": market_db, "airflow_db": airflow_db,
            "up_output": up.stdout + up.stderr, "up_seconds": time.monotonic() - started}
    try:
        assert up.returncode == 0, f"stack.py up failed:\n{info['up_output'][-4000:]}"
        state = stack_processes.load_state(stack_env.Settings.from_env(env))
        info["state"] = state
        info["cli_env"] = _cli_env(run_dir / "env.sh")
        info["api"] = stack_demo.AirflowApi(state["ui_url"], "admin", stack_demo.admin_password(stack_env.Settings.from_env(env)))
        yield info
    finally:
        if "api" in info:
            info["api"].close()
        down = subprocess.run([sys.executable, str(ROOT / "scripts" / "stack.py"), "down"], env=env, cwd=str(ROOT),
                              capture_output=True, text=True, timeout=120)
        info["down_output"] = down.stdout + down.stderr
        leftovers = [name for name, p in info.get("state", {}).get("processes", {}).items()
                     if stack_processes.pid_alive(p["pid"]) or stack_processes._group_alive(p["pid"])]
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            for name in (market_db, airflow_db):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(grafana_user)))
        import redis

        from krxflow.stack.servers import celery_broker_url

        for url in (REDIS_URL, celery_broker_url(REDIS_URL)):  # krxflow's keys, and the Celery broker's
            client = redis.Redis.from_url(url)
            for key in client.scan_iter(match=f"krxflow-e2e-{token}:*", count=1000):
                client.delete(key)
            client.close()
        assert not leftovers, f"processes left running after `down`: {leftovers}\n{info['down_output']}"
        if request.session.testsfailed == failed_before:
            shutil.rmtree(run_dir, ignore_errors=True)  # kept after a failure: logs under <run dir>/logs


def _cli_env(env_file: Path) -> dict[str, str]:
    """The environment ``source .run/env.sh`` gives a shell: what a user's ``airflow`` CLI runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "KRXFLOW_"))}
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def _airflow_cli(info, *args: str, timeout: float = 120) -> str:
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "airflow"), *args], env=info["cli_env"], cwd=str(ROOT),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def _market(info) -> psycopg.Connection:
    return psycopg.connect(f"{PG_SERVER}/{info['market_db']}", autocommit=True)


def _failure_report(api, dag_id: str, run_id: str) -> str:
    tis = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
    return ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}" for t in tis if t["state"] != "success")


def _wait_run(api, dag_id: str, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            assert run["state"] == "success", f"{dag_id} {run_id} failed: {_failure_report(api, dag_id, run_id)}"
            return run
        time.sleep(2)
    raise TimeoutError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s: "
                       f"{_failure_report(api, dag_id, run_id)}")


def _trigger(api, dag_id: str, conf: dict | None = None) -> str:
    # A logical date, as the UI's trigger form sends: the DAGs read the run's KST date from it.
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    run = api.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": now, "conf": conf or {}})
    return run["dag_run_id"]


def _wait_backfill(api, dag_id: str, sessions: list[dt.date], timeout: float) -> list[dict]:
    """Wait until the DAG's newest backfill completed; one successful run per session of the range."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backfills = api.get("/backfills", dag_id=dag_id, limit=50)["backfills"]
        newest = max(backfills, key=lambda b: b["id"]) if backfills else None
        if newest and newest.get("completed_at"):
            runs = [r for r in api.get(f"/dags/{dag_id}/dagRuns", limit=200)["dag_runs"]
                    if r["run_type"] == "backfill"]
            bad = [(r["dag_run_id"], r["state"], _failure_report(api, dag_id, r["dag_run_id"]))
                   for r in runs if r["state"] != "success"]
            assert not bad, f"backfill runs did not succeed: {bad}"
            kst_days = sorted({dt.datetime.fromisoformat(r["logical_date"]).astimezone(KST).date() for r in runs})
            assert kst_days == list(sessions), f"backfill runs on {kst_days}, sessions are {sessions}"
            return runs
        time.sleep(3)
    raise TimeoutError(f"backfill of {dag_id} not complete after {timeout:.0f} s")


def _kill_a_worker_mid_task(info, api, run_id: str, timeout: float) -> dict:
    """SIGKILL the Celery worker that runs one of the run's ``load_history`` tasks, with all it started.

    The task process' ancestors say which recorded worker runs it; the worker's process group and
    every descendant (Celery's pool, the task supervisor, the task process) get SIGKILL at once, as
    when a host dies: nothing of the worker reports anything.
    """
    import psutil

    workers = {p["pid"]: name for name, p in info["state"]["processes"].items() if name.startswith("celery-worker-")}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in api.get(f"/dags/krx_history_backfill/dagRuns/{run_id}/taskInstances", limit=200)["task_instances"]:
            if ti["task_id"] != "load_history" or ti["state"] != "running" or not ti.get("pid"):
                continue
            try:
                task = psutil.Process(ti["pid"])
                worker_pid = next(p.pid for p in task.parents() if p.pid in workers)
                doomed = [psutil.Process(worker_pid), *psutil.Process(worker_pid).children(recursive=True)]
            except (psutil.NoSuchProcess, StopIteration):
                continue
            os.killpg(worker_pid, signal.SIGKILL)
            for process in doomed:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGKILL)
            stack_processes.wait_for(lambda: not any(stack_processes.pid_alive(p.pid) for p in doomed), 10,
                                     f"the processes of {workers[worker_pid]} to die")
            return {"worker": workers[worker_pid], "pid": worker_pid, "map_index": ti["map_index"],
                    "try_number": ti["try_number"]}
        time.sleep(0.2)
    raise TimeoutError(f"no load_history task of {run_id} was seen running on a Celery worker in {timeout:.0f} s")


def _snapshot(conn) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every data table's full contents."""
    out = {}
    for table in (*DATA_TABLES, "daily_market_summary"):
        row = conn.execute(sql.SQL("SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') "
                                   "FROM {} AS t").format(sql.Identifier(table))).fetchone()
        out[table] = (row[0], row[1])
    return out


def test_make_run_stack_end_to_end(running_stack):
    info, api = running_stack, running_stack["api"]
    timings = {"up": round(info["up_seconds"], 1)}
    _progress(f"stack up in {timings['up']} s")
    assert "SAMPLE MODE" in info["up_output"], info["up_output"][-2000:]
    if info["executor"] == "celery":
        workers = [n for n in info["state"]["processes"] if n.startswith("celery-worker-")]
        assert len(workers) == 2 and "CeleryExecutor" in info["up_output"], info["up_output"][-2000:]
    assert f"admin / {stack_demo.admin_password(stack_env.Settings.from_env(info['env']))}" in info["up_output"]

    # The deployment as bootstrap declared it, seen through the REST API.
    connections = {c["connection_id"]: c for c in api.get("/connections", limit=100)["connections"]}
    assert {"postgres_default", "redis_default", "krx_default", "kis_default"} <= set(connections)
    assert connections["kis_default"]["host"] == info["state"]["fake_kis_url"]
    pools = {p["name"]: p for p in api.get("/pools", limit=100)["pools"]}
    from krxflow.krx.pacing import KRX_POOL

    assert pools[KRX_POOL]["slots"] == 4, "slots from KRXFLOW_KRX_POOL_SLOTS"
    assert api.get("/variables/KRXFLOW_SOURCE")["value"] == "sample"
    dag_ids = set(stack_demo.krxflow_dag_ids(api))
    assert {"krx_tickers", "krx_daily_prices", "krx_history_backfill", *UPKEEP_DAGS} <= dag_ids
    assert not api.get("/importErrors")["import_errors"]
    # Unpause only what each step needs (the upkeep DAGs later), so db_matviews is not run by
    # every Asset update of the backfill on a 2-core machine.
    for dag_id in ("krx_tickers", "krx_daily_prices", "krx_history_backfill"):
        api.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    # 1. the ticker master
    t = time.monotonic()
    _wait_run(api, "krx_tickers", _trigger(api, "krx_tickers"), 600)
    timings["krx_tickers"] = round(time.monotonic() - t, 1)
    _progress(f"krx_tickers: {timings['krx_tickers']} s")
    with _market(info) as conn:
        listed = conn.execute("SELECT count(*) FROM stocks WHERE NOT delisted").fetchone()[0]
        markets = {r[0] for r in conn.execute("SELECT DISTINCT market FROM stocks")}
    assert listed > 0.8 * SAMPLE_TICKERS and {"KOSPI", "KOSDAQ"} <= markets

    # 2. two weeks of daily prices by date, through `airflow backfill create` (the scheduler runs it)
    from krxflow.calendar import previous_trading_day, trading_days

    # Ends two sessions back, so the scheduled run that unpausing creates (latest session) is not in it.
    last = previous_trading_day(previous_trading_day(kst_today()))
    first = last - dt.timedelta(days=13)
    sessions = trading_days(first, last)
    t = time.monotonic()
    backfill_args = ["backfill", "create", "--dag-id", "krx_daily_prices",
                     "--from-date", f"{first}T00:00:00+09:00", "--to-date", f"{last}T23:59:59+09:00",
                     "--max-active-runs", "4"]
    _airflow_cli(info, *backfill_args)
    _wait_backfill(api, "krx_daily_prices", sessions, 300)
    timings["backfill_two_weeks"] = round(time.monotonic() - t, 1)
    _progress(f"backfill_two_weeks: {timings['backfill_two_weeks']} s")
    with _market(info) as conn:
        days = [r[0] for r in conn.execute(
            "SELECT trade_date FROM daily_prices WHERE trade_date BETWEEN %s AND %s GROUP BY 1 ORDER BY 1",
            (first, last))]
        per_day = conn.execute("SELECT min(n), max(n) FROM (SELECT count(*) n FROM daily_prices "
                               "WHERE trade_date BETWEEN %s AND %s GROUP BY trade_date) d", (first, last)).fetchone()
    assert days == list(sessions), "one day of prices per XKRX session, nothing on holidays"
    assert per_day[0] > 0.8 * SAMPLE_TICKERS

    # 3. five years of history for 20 tickers (one mapped task per ticker)
    with _market(info) as conn:
        tickers = [r[0] for r in conn.execute(
            "SELECT ticker FROM stocks WHERE NOT delisted ORDER BY market_cap DESC NULLS LAST, ticker LIMIT %s",
            (HISTORY_TICKERS,))]
    history_conf = {"tickers": tickers, "years": 5}
    t = time.monotonic()
    run_id = _trigger(api, "krx_history_backfill", history_conf)
    killed = _kill_a_worker_mid_task(info, api, run_id, 180) if info["executor"] == "celery" else None
    _wait_run(api, "krx_history_backfill", run_id, 300 + (KILLED_WORKER_RECOVERY_SECONDS if killed else 0))
    timings["history_20_tickers"] = round(time.monotonic() - t, 1)
    _progress(f"history_20_tickers: {timings['history_20_tickers']} s")
    mapped = [ti for ti in api.get(f"/dags/krx_history_backfill/dagRuns/{run_id}/taskInstances", limit=200)[
        "task_instances"] if ti["map_index"] >= 0]
    assert len(mapped) == HISTORY_TICKERS
    assert {ti["rendered_map_index"] for ti in mapped} == set(tickers), "each mapped task is named after its ticker"
    if killed:
        retried = next(ti for ti in mapped if ti["map_index"] == killed["map_index"])
        assert retried["state"] == "success" and retried["try_number"] > killed["try_number"], (killed, retried)
        assert not stack_processes.pid_alive(killed["pid"]), f"{killed['worker']} was killed"
        _progress(f"{killed['worker']} killed while it loaded {retried['rendered_map_index']}: try {retried['try_number']} "
                  f"succeeded on {retried['hostname']}")
    with _market(info) as conn:
        per_ticker = dict(conn.execute(
            "SELECT ticker, count(*) FROM daily_prices_adjusted WHERE ticker = ANY(%s) GROUP BY 1", (tickers,)).fetchall())
        span = conn.execute("SELECT max(trade_date) - min(trade_date) FROM daily_prices_adjusted").fetchone()[0]
    assert set(per_ticker) == set(tickers)
    assert min(per_ticker.values()) > 200 and span > 4 * 365, (per_ticker, span)

    # 4. the upkeep DAGs
    t = time.monotonic()
    upkeep_runs = {}
    for dag_id in UPKEEP_DAGS:
        upkeep_runs[dag_id] = _trigger(api, dag_id)
        api.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    for dag_id, run_id in upkeep_runs.items():
        _wait_run(api, dag_id, run_id, 240)
    timings["upkeep"] = round(time.monotonic() - t, 1)
    _progress(f"upkeep: {timings['upkeep']} s")
    with _market(info) as conn:
        summary_days = conn.execute("SELECT count(DISTINCT trade_date) FROM daily_market_summary").fetchone()[0]
        future = conn.execute("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                              "WHERE c.relname LIKE 'daily_prices_p%%' AND c.relname >= %s",
                              (f"daily_prices_p{(kst_today() + dt.timedelta(days=62)):%Y%m}",)).fetchone()[0]
        stats = dict(conn.execute("SELECT status, count(*) FROM load_stats GROUP BY 1").fetchall())
    assert summary_days >= len(sessions), "db_matviews refreshed the market summary"
    assert future >= 1, "db_partitions created partitions ahead"
    assert stats.get("ok", 0) > 0 and not stats.get("failed")
    dumps = list((info["run_dir"] / "backups").rglob("krxflow-market-*.dump"))
    assert dumps, f"db_backup wrote no dump under {info['run_dir'] / 'backups'}"

    # The read API the plugin mounts in the same api-server, behind Airflow's login.
    import httpx

    base = info["state"]["ui_url"]
    assert httpx.get(f"{base}/krx/stocks", timeout=30).status_code == 401
    auth = {"Authorization": f"Bearer {api.token()}"}
    page = httpx.get(f"{base}/krx/stocks", params={"market": "KOSPI", "limit": 5}, headers=auth, timeout=30).json()
    assert page["total"] > 0 and all(item["market"] == "KOSPI" for item in page["items"])
    weekly = httpx.get(f"{base}/krx/stocks/{tickers[0]}/prices", headers=auth, timeout=30,
                       params={"interval": "week", "adjusted": "true", "start": str(first - dt.timedelta(days=365)),
                               "end": str(last)}).json()
    assert len(weekly["items"]) > 40, weekly

    # 5. a rerun of the same work changes nothing
    with _market(info) as conn:
        before = _snapshot(conn)
        stats_mark = conn.execute("SELECT coalesce(max(id), 0) FROM load_stats").fetchone()[0]
    t = time.monotonic()
    rerun_tickers = _trigger(api, "krx_tickers")
    rerun_history = _trigger(api, "krx_history_backfill", history_conf)
    _airflow_cli(info, *backfill_args, "--reprocess-behavior", "completed")
    _wait_run(api, "krx_tickers", rerun_tickers, 300)
    _wait_run(api, "krx_history_backfill", rerun_history, 300)
    _wait_backfill(api, "krx_daily_prices", sessions, 300)
    _wait_run(api, "db_matviews", _trigger(api, "db_matviews"), 600)
    timings["rerun"] = round(time.monotonic() - t, 1)
    _progress(f"rerun: {timings['rerun']} s")
    with _market(info) as conn:
        after = _snapshot(conn)
        rerun_writes = conn.execute(
            "SELECT table_name, sum(rows_in), sum(inserted), sum(updated) FROM load_stats "
            "WHERE id > %s AND table_name = ANY(%s) AND operation IN ('upsert', 'append') GROUP BY 1",
            (stats_mark, list(DATA_TABLES))).fetchall()
    assert after == before, {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert rerun_writes, "the rerun wrote through the hook"
    for table, rows_in, inserted, updated in rerun_writes:
        assert rows_in > 0 and inserted == 0 and updated == 0, (table, rows_in, inserted, updated)
    print(f"\ne2e timings (s): {timings}")
