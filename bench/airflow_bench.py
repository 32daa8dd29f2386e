"""What the benches that run krxflow's DAGs under a real Airflow share (``backfill.py``, ``cold_start.py``).

* :func:`configure` — throwaway market and Airflow databases, a private Airflow home and Redis
  prefix, in the environment (call it before anything imports Airflow);
* :func:`setup` / :func:`teardown` — create and migrate them / drop them and the Redis keys;
* :func:`airflow_stack` — ``airflow scheduler`` with the LocalExecutor (workers from the preloaded
  forkserver, :mod:`krxflow.preload`) or the CeleryExecutor (``airflow celery worker`` processes,
  preloaded by :mod:`krxflow.celery_config`) and the Execution API (``airflow api-server --apps
  execution``), with the ``krx_api`` pool as wide as the executor (the sample source never calls KRX);
* :class:`PeakRss` — the largest single process of each kind (task, worker, scheduler, ...), and
  which task instance the largest task process ran;
* :func:`run_state`, :func:`wait_for_run` — a DAG's newest run, read from the metadata database;
* :func:`krx_requests`, :func:`count_requests_by_date` — the KRX requests of loading sessions by
  date (and cross-checks, a listing) through pykrx and the offline KRX replay, logins included:
  what the replay really received.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from harness import admin, drop_redis_namespace

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
#: This bench's installation, as :func:`krxflow.environment.airflow_environment` takes it (set by :func:`configure`).
INSTALLATION: dict = {}


def configure(name: str = "bench") -> tuple[str, str]:
    """Point this process (and the Airflow processes it starts) at new throwaway databases; their names."""
    if str(ROOT) not in sys.path:  # the test fakes (tests.fakes); krxflow itself is installed
        sys.path.insert(0, str(ROOT))
    token = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    market_db, airflow_db = f"krxflow_{name}_{token}", f"krxflow_{name}_{token}_af"
    from krxflow import environment  # plain strings, no Airflow import

    INSTALLATION.update(
        home=tempfile.mkdtemp(prefix="krxflow-bench-airflow-"), metadata_db=f"{SERVER}/{airflow_db}",
        market_db=f"{SERVER}/{market_db}", redis_url=os.environ.get("KRXFLOW_BENCH_REDIS", "redis://127.0.0.1:6379/0"),
        dags_folder=ROOT / "dags",
        redis_prefix=f"krxflow-bench-{token}:")
    os.environ.update({
        **environment.airflow_environment(**INSTALLATION,
                                          logging_level=os.environ.get("KRXFLOW_BENCH_LOG_LEVEL", "WARNING")),
        "MPLCONFIGDIR": tempfile.mkdtemp(prefix="krxflow-bench-mpl-"),
        "PYTHONPATH": str(ROOT),
    })
    for leaked in ("KRX_ID", "KRX_PW"):
        os.environ.pop(leaked, None)
    return market_db, airflow_db


def setup(*databases: str) -> None:
    """Create the databases, migrate the market one (krxflow) and the Airflow one."""
    from psycopg import sql

    for name in databases:
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    from krxflow.db import migrations
    from krxflow.db.connection import connection

    with connection() as conn:
        migrations.migrate(conn)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=600)


def teardown(*databases: str) -> None:
    import psycopg
    from psycopg import sql

    for name in databases:
        try:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            print(f"could not drop {name}: {exc}", file=sys.stderr)
    drop_redis_namespace()


def _role(title: str) -> str:
    """What an Airflow process is, from its title: task, worker (an executor's worker or a task's
    supervisor), celery-main (a Celery worker's main process), or the component."""
    if "MainProcess" in title:  # a Celery worker's own process: the broker, the pool, the results
        return "celery-main"
    if "LocalExecutor" in title or "celery" in title or title.startswith("airflow supervisor"):
        return "worker"
    if title.startswith("airflow worker -- "):  # the forked task process (its title is the TI id)
        return "task"
    for role in ("scheduler", "api-server", "api_server", "forkserver", "serve-logs", "dags test"):
        if role in title:
            return role.replace("_", "-")
    return "other"


class PeakRss:
    """Samples the RSS of process trees; keeps the largest single process seen per role.

    It also adds up CPU seconds per role (each process's last sampled user + system time, so a
    process that lives less than one sampling period is missed and every process loses its last
    period) and, from ``/proc/stat``, the whole machine's CPU seconds while it ran: on a machine
    where the benchmark is all that runs, the machine's figure divided by the task instances is
    the CPU each one cost, whatever process it was spent in.
    """

    def __init__(self, pids: list[int], every: float = 0.25):
        self.pids, self.every = pids, every
        self.peaks: dict[str, float] = {}
        self.titles: dict[str, str] = {}  # the title of each role's largest process
        #: pid -> (role, its CPU seconds, its ended children's) at its last sample
        self._cpu: dict[int, tuple[str, float, float]] = {}
        self.machine_cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        def busy(t) -> float:  # the machine's CPU seconds not idle nor waiting on I/O
            return t.user + t.nice + t.system + t.irq + t.softirq

        machine_start = busy(psutil.cpu_times())
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    root = psutil.Process(pid)
                    for proc in [root, *root.children(recursive=True)]:
                        try:
                            with proc.oneshot():
                                title, mb = " ".join(proc.cmdline()), proc.memory_info().rss / 2**20
                                cpu = proc.cpu_times()
                        except psutil.Error:
                            continue
                        role = _role(title)
                        self._cpu[proc.pid] = (role, cpu.user + cpu.system,
                                               cpu.children_user + cpu.children_system)
                        if mb > self.peaks.get(role, 0.0):
                            self.peaks[role], self.titles[role] = mb, title
                except psutil.Error:
                    pass
            self.machine_cpu_s = busy(psutil.cpu_times()) - machine_start
            self._stop.wait(self.every)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds per role, as sampled (see the class); ``<role> children`` is what the ended
        children of that role's processes used (a supervisor's task processes, once reaped, are
        counted there in full however short they were)."""
        totals: dict[str, float] = {}
        for role, seconds, children in self._cpu.values():
            totals[role] = totals.get(role, 0.0) + seconds
            if children:
                totals[f"{role} children"] = totals.get(f"{role} children", 0.0) + children
        return totals

    def cpu_summary(self) -> str:
        roles = ", ".join(f"{role} {s:.0f}" for role, s in sorted(self.cpu_by_role().items(), key=lambda i: -i[1]))
        return f"machine {self.machine_cpu_s:.0f} CPU-s; sampled by role: {roles}"

    def task_peak(self) -> float:
        """The largest task process: the task itself or its supervisor (a whole ``dags test``: every task)."""
        return max(self.peaks.get(role, 0.0) for role in ("task", "worker", "dags test"))

    def krxflow_peak(self) -> float:
        """The largest process of all (tasks, scheduler, api-server, ...)."""
        return max(self.peaks.values(), default=0.0)

    def largest_task(self) -> str:
        """Which task instance the largest task process ran (``dag_id.task_id[map_index]``), from its title."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        title = self.titles.get("task", "")
        if not title.startswith("airflow worker -- "):
            return "none"
        ti_id = title.split(" -- ", 1)[1].strip()
        try:
            key = uuid.UUID(ti_id)
        except ValueError:
            return ti_id
        with create_session() as session:
            ti = session.query(TaskInstance).filter(TaskInstance.id == key).one_or_none()
            return ti_id if ti is None else f"{ti.dag_id}.{ti.task_id}[{ti.map_index}]"

    def __str__(self) -> str:
        return ", ".join(f"{role} {mb:.0f} MB" for role, mb in sorted(self.peaks.items()))

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def airflow_stack(parallelism: int, api_workers: int = 1, env: dict | None = None, unpause: tuple[str, ...] = (),
                  executor: str = "LocalExecutor", celery_workers: int = 2):
    """A scheduler, its executor's workers and the Execution API; yields (env, [processes], log_dir).

    ``executor`` is the LocalExecutor (workers forked from the preloaded forkserver) or the
    CeleryExecutor: then ``celery_workers`` ``airflow celery worker`` processes share ``parallelism``,
    on the bench Redis server's next database (as ``KRXFLOW_EXECUTOR=celery make run``).
    """
    from krxflow import environment
    from krxflow.krx.pacing import KRX_POOL
    from krxflow.sample.kis_server import free_port
    from krxflow.stack.servers import celery_broker_url
    from tests.fakes.airflow_processes import airflow_cli, start_airflow, stop_process

    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="krxflow-bench-logs-"))
    celery = executor == environment.CELERY_EXECUTOR
    options = {"celery_broker_url": celery_broker_url(INSTALLATION["redis_url"]),
               "celery_concurrency": max(1, parallelism // celery_workers)} if celery else {}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")},  # the builder's only
           **environment.airflow_environment(**INSTALLATION, api_port=port, parallelism=parallelism,
                                             executor=executor, **options,
                                             logging_level=os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"]),
           "AIRFLOW__API_AUTH__JWT_SECRET": f"krxflow-bench-{os.getpid()}",
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
           "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "64", **(env or {})}
    airflow_cli(env, "dags", "reserialize")
    # The sample source never calls KRX: the pool may be as wide as the executor.
    airflow_cli(env, "pools", "set", KRX_POOL, str(parallelism), "bench: sample source, no KRX calls")
    for dag_id in unpause:
        airflow_cli(env, "dags", "unpause", dag_id)
    api = start_airflow(env, log_dir, "api-server", "api-server", "--apps", "execution", "--port", str(port),
                        "--workers", str(api_workers))
    scheduler = start_airflow(env, log_dir, "scheduler", "scheduler")
    workers = [start_airflow(env, log_dir, f"celery-worker-{n}", "celery", "worker", "--celery-hostname",
                             f"bench-{os.getpid()}-{n}@%h", "--skip-serve-logs")
               for n in range(1, celery_workers + 1)] if celery else []
    try:
        time.sleep(5)
        yield env, [api, scheduler, *workers], log_dir
    finally:
        for process in (*workers, scheduler, api):
            stop_process(process)


def run_state(dag_id: str) -> str | None:
    """The state of ``dag_id``'s newest run (None: no run yet)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        return None if run is None else str(run.state)


def wait_for_run(dag_id: str, processes, log_dir: Path, timeout: float, started: float | None = None) -> str:
    """Poll until ``dag_id``'s newest run ends; its final state (a SystemExit after ``timeout``)."""
    started = time.perf_counter() if started is None else started
    state = None
    while time.perf_counter() - started < timeout:
        state = run_state(dag_id)
        if state in ("success", "failed"):
            return state
        if any(proc.poll() is not None for proc in processes):
            raise SystemExit(f"an Airflow process died; logs in {log_dir}")
        time.sleep(2)
    raise SystemExit(f"{dag_id} did not finish within {timeout:.0f}s (state {state}); logs in {log_dir}")


def krx_requests(tickers: int, days, *, ex_dates=(), listing_day=None) -> dict:
    """What the offline KRX replay receives (logins included) when pykrx, with the login, asks for the
    all-market answer of every session in ``days``, KRX's adjusted series around each ``(ticker, ex_date)``
    of ``ex_dates`` (the cross-check) and, given ``listing_day``, that day's listing and the delisted finder."""
    import datetime as dt

    from krxflow.krx.adjusting import CHECK_WINDOW_DAYS
    from krxflow.krx.source import PykrxSource
    from krxflow.sample.market import SampleMarket
    from tests.fakes.krx_replay import KrxReplay

    os.environ["AIRFLOW_CONN_KRX_DEFAULT"] = "generic://bench-user:bench-password@"
    started = time.perf_counter()
    rows = 0
    with KrxReplay(SampleMarket(tickers), require_login=True) as replay:
        source = PykrxSource(min_interval=0)
        for day in days:
            rows += len(source.market_day(day))
        for ticker, ex_date in ex_dates:
            source.krx_adjusted(ticker, ex_date - dt.timedelta(days=CHECK_WINDOW_DAYS), ex_date)
        if listing_day is not None:
            source.listing(listing_day)
            source.delisted()
    return {"sessions": len(days), "requests": replay.total, "by_kind": dict(replay.received), "rows": rows,
            "ex_dates": len(ex_dates), "seconds": time.perf_counter() - started}


def count_requests_by_date(tickers: int, years: int) -> dict:
    """Every session of ``years`` loaded by date through pykrx and the replay (:func:`krx_requests`)."""
    from krxflow.calendar import trading_days
    from krxflow.krx.loading import history_window

    return krx_requests(tickers, trading_days(*history_window(years)))
