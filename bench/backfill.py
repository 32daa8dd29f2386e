"""The 5-year per-ticker history backfill at market scale, and the KRX request budget of loading by date.

1. ``krx_history_backfill`` for ``--tickers N`` (default 2,800) sample tickers, 5 years each,
   on the sample source (no added latency), against throwaway databases, run by
   ``--runner local`` (default; as deployed): ``airflow scheduler`` with the LocalExecutor
   (workers from the preloaded forkserver, :mod:`krxflow.preload`), or with ``--executor celery``
   the CeleryExecutor and ``--celery-workers`` workers (preloaded the same way), and the Execution API
   (``airflow api-server --apps execution``), the ``krx_api`` pool as wide as the executor; or by
   ``--runner dags-test``: ``airflow dags test``, every task instance in one process.
   Figures: wall seconds from the trigger to the run's end, mapped task instances per second,
   rows written, and the peak RSS of each kind of process, sampled every 0.25 s. ``peak_rss_mb``
   is the largest *task* process (a task, or the executor worker supervising it; under
   ``dags test``, the one process that runs every task); the scheduler and the api-server are
   reported beside it.
2. ``krx_requests_5y_by_date``: the pykrx source loads every session of the same 5 years BY
   DATE (one all-market request per session) through the offline KRX replay, with a login;
   the figure is what the replay really received (logins included), not a computation.
3. ``krx_logins`` and ``krx_min_gap_s``: what KRX sees from several workers at once. ``--wire-workers``
   processes (default 4), each a PykrxSource with the **real** pacing (``KRXFLOW_KRX_MIN_INTERVAL``,
   default 1 s) and the ``krx_default`` login, load by-date sessions, five-year raw histories (pykrx's
   730-day split) and adjusted series through one shared offline KRX, which logs every request's
   arrival: the login POSTs it received, and the smallest gap between two arrivals at KRX (logins
   included) or at Naver. Goals: ``krx_logins`` ≤ 2, ``krx_min_gap_s`` ≥ the interval (1.0).

    python bench/backfill.py [--tickers 2800] [--years 5] [--runner local|dags-test]
                             [--executor local|celery] [--celery-workers 2] [--parallelism 16] [--keep]

Last line (the form progress is measured by):
    backfill: tickers=N seconds=S ti_per_s=X rows=R krx_requests_5y_by_date=Q peak_rss_mb=M krx_logins=L krx_min_gap_s=G
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
TOKEN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
MARKET_DB, AIRFLOW_DB = f"krxflow_bench_{TOKEN}", f"krxflow_bench_{TOKEN}_af"

from krxflow import environment  # noqa: E402  (plain strings, no Airflow import)
from krxflow.stack.servers import celery_broker_url  # noqa: E402

#: This bench's installation, as :func:`krxflow.environment.airflow_environment` takes it.
INSTALLATION = dict(
    home=tempfile.mkdtemp(prefix="krxflow-bench-airflow-"), metadata_db=f"{SERVER}/{AIRFLOW_DB}",
    market_db=f"{SERVER}/{MARKET_DB}", redis_url=os.environ.get("KRXFLOW_BENCH_REDIS", "redis://127.0.0.1:6379/0"),
    dags_folder=ROOT / "dags", plugins_folder=ROOT / "plugins", sql_dir=ROOT / "include" / "sql",
    redis_prefix=f"krxflow-bench-{TOKEN}:")
os.environ.update({
    **environment.airflow_environment(**INSTALLATION,
                                      logging_level=os.environ.get("KRXFLOW_BENCH_LOG_LEVEL", "WARNING")),
    "MPLCONFIGDIR": tempfile.mkdtemp(prefix="krxflow-bench-mpl-"),
    "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
})
for leaked in ("KRX_ID", "KRX_PW"):
    os.environ.pop(leaked, None)

import psutil  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def setup() -> None:
    for name in (MARKET_DB, AIRFLOW_DB):
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    from krxflow.db import migrations
    from krxflow.db.connection import connection

    with connection() as conn:
        migrations.migrate(conn)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=600)


def teardown() -> None:
    for name in (MARKET_DB, AIRFLOW_DB):
        try:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            print(f"could not drop {name}: {exc}", file=sys.stderr)
    from bench.harness import drop_redis_namespace

    drop_redis_namespace()


def _role(proc: psutil.Process) -> str:
    """What an Airflow process is, from its title: task, worker (a task's supervisor), or the component."""
    title = " ".join(proc.cmdline())
    if "LocalExecutor" in title or "celery" in title:
        return "worker"
    if title.startswith("airflow worker -- "):  # the forked task process (its title is the TI id)
        return "task"
    for role in ("scheduler", "api-server", "api_server", "forkserver", "serve-logs", "dags test"):
        if role in title:
            return role.replace("_", "-")
    return "other"


class PeakRss:
    """Samples the RSS of process trees; keeps the largest single process seen per role."""

    def __init__(self, pids: list[int], every: float = 0.25):
        self.pids, self.every = pids, every
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    root = psutil.Process(pid)
                    for proc in [root, *root.children(recursive=True)]:
                        try:
                            role, mb = _role(proc), proc.memory_info().rss / 2**20
                        except psutil.Error:
                            continue
                        self.peaks[role] = max(self.peaks.get(role, 0.0), mb)
                except psutil.Error:
                    pass
            self._stop.wait(self.every)

    def task_peak(self) -> float:
        """The largest task process: the task itself or its supervisor (a whole ``dags test``: every task)."""
        return max(self.peaks.get(role, 0.0) for role in ("task", "worker", "dags test"))

    def __str__(self) -> str:
        return ", ".join(f"{role} {mb:.0f} MB" for role, mb in sorted(self.peaks.items()))

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _report() -> tuple[dict, int]:
    from krxflow.db.connection import connection

    with connection() as conn:
        report = conn.execute("SELECT details FROM load_stats WHERE operation = 'history_backfill' "
                              "ORDER BY id DESC LIMIT 1").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM daily_prices_adjusted").fetchone()[0]
    return report, rows


def run_backfill_dags_test(tickers: list[str], years: int) -> dict:
    """Every task instance in one process (``airflow dags test``): no parallelism, no task start cost."""
    env = {**os.environ, "KRXFLOW_SOURCE": "sample", "KRXFLOW_SAMPLE_TICKERS": str(len(tickers))}
    conf = json.dumps({"years": years, "tickers": tickers})
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "dags", "test", "krx_history_backfill", "-c", conf],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakRss([proc.pid]) as rss:
        output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        print(output[-5000:], file=sys.stderr)
        raise SystemExit(f"airflow dags test failed ({proc.returncode})")
    report, rows = _report()
    return {"seconds": seconds, "report": report, "rows": rows, "peak_rss_mb": rss.task_peak(), "rss": str(rss)}


def run_backfill_scheduled(tickers: list[str], years: int, parallelism: int, api_workers: int, timeout: float,
                           executor: str = environment.LOCAL_EXECUTOR, celery_workers: int = 2) -> dict:
    """A real scheduler + executor (+ the Execution API), as in production; the run is triggered once.

    LocalExecutor: workers from the preloaded forkserver. CeleryExecutor: ``celery_workers`` ``airflow
    celery worker`` processes (``parallelism`` shared between them, preload by krxflow.celery_config)
    on the bench Redis's next database."""
    from tests.fakes.airflow_processes import airflow_cli, start_airflow, stop_process
    from krxflow.sample.kis_server import free_port

    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="krxflow-bench-logs-"))
    celery = executor == environment.CELERY_EXECUTOR
    options = {"celery_broker_url": celery_broker_url(INSTALLATION["redis_url"]),
               "celery_concurrency": max(1, parallelism // celery_workers)} if celery else {}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")},  # the builder's only
           **environment.airflow_environment(**INSTALLATION, api_port=port, parallelism=parallelism,
                                             executor=executor, logging_level=os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"],
                                             **options),
           "KRXFLOW_SOURCE": "sample", "KRXFLOW_SAMPLE_TICKERS": str(len(tickers)),
           "AIRFLOW__API_AUTH__JWT_SECRET": f"krxflow-bench-{TOKEN}",
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
           "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "64"}
    from krxflow.krx.pacing import KRX_POOL

    airflow_cli(env, "dags", "reserialize")
    # The sample source never calls KRX: the pool may be as wide as the executor.
    airflow_cli(env, "pools", "set", KRX_POOL, str(parallelism), "bench: sample source, no KRX calls")
    airflow_cli(env, "dags", "unpause", "krx_history_backfill")
    api = start_airflow(env, log_dir, "api-server", "api-server", "--apps", "execution", "--port", str(port),
                 "--workers", str(api_workers))
    scheduler = start_airflow(env, log_dir, "scheduler", "scheduler")
    workers = [start_airflow(env, log_dir, f"celery-worker-{n}", "celery", "worker", "--celery-hostname",
                             f"bench-{TOKEN}-{n}@%h", "--skip-serve-logs") for n in range(1, celery_workers + 1)] if celery else []
    conf = json.dumps({"years": years, "tickers": tickers})
    try:
        with PeakRss([api.pid, scheduler.pid, *(w.pid for w in workers)]) as rss:
            time.sleep(5)
            started = time.perf_counter()
            airflow_cli(env, "dags", "trigger", "krx_history_backfill", "-c", conf)
            state = None
            while time.perf_counter() - started < timeout:
                state = _run_state("krx_history_backfill")
                if state in ("success", "failed"):
                    break
                if any(proc.poll() is not None for proc in (api, scheduler, *workers)):
                    raise SystemExit(f"an Airflow process died; logs in {log_dir}")
                time.sleep(2)
            seconds = time.perf_counter() - started
    finally:
        for proc in (*workers, scheduler, api):
            stop_process(proc)
    if state not in ("success", "failed"):
        raise SystemExit(f"the backfill did not finish within {timeout:.0f}s (state {state}); logs in {log_dir}")
    report, rows = _report()
    return {"seconds": seconds, "report": report, "rows": rows, "peak_rss_mb": rss.task_peak(), "rss": str(rss),
            "state": state}


def _run_state(dag_id: str) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        return None if run is None else str(run.state)


def count_requests_by_date(tickers: int, years: int) -> dict:
    """Load every session of ``years`` by date through the pykrx source and the replay; count what it received."""
    from krxflow.calendar import trading_days
    from krxflow.krx.loading import history_window
    from krxflow.krx.source import PykrxSource
    from krxflow.sources.sample import SampleMarket
    from tests.fakes.krx_replay import KrxReplay

    os.environ["AIRFLOW_CONN_KRX_DEFAULT"] = "generic://bench-user:bench-password@"
    first, last = history_window(years)
    days = trading_days(first, last)
    started = time.perf_counter()
    rows = 0
    with KrxReplay(SampleMarket(tickers), require_login=True) as replay:
        source = PykrxSource(min_interval=0)
        for day in days:
            rows += len(source.daily_prices(day))
    return {"sessions": len(days), "requests": replay.total, "by_kind": dict(replay.received), "rows": rows,
            "seconds": time.perf_counter() - started}


def measure_wire(tickers: int, workers: int, sessions_per_worker: int = 5, histories_per_worker: int = 2) -> dict:
    """Several paced workers against one offline KRX: logins received and the smallest arrival gap."""
    from krxflow.calendar import trading_days
    from krxflow.krx.loading import history_window
    from krxflow.sources.sample import SampleMarket
    from tests.fakes.krx_replay import KrxReplay
    from tests.fakes.krx_traffic import run_workers

    market = SampleMarket(tickers)
    first, last = history_window(5)
    days = [d.isoformat() for d in trading_days(first, last)[-workers * sessions_per_worker:]]
    listed = [t for t in market.tickers if market.profile(t).delisted is None]
    jobs = []
    for w in range(workers):
        job = [["day", day] for day in days[w::workers]]
        for h in range(histories_per_worker):
            ticker = listed[(w * histories_per_worker + h) % len(listed)]
            job.append(["history" if h % 2 == 0 else "adjusted", ticker, first.isoformat(), last.isoformat()])
        jobs.append(job)
    env = {"AIRFLOW_CONN_KRX_DEFAULT": "generic://bench-user:bench-password@"}
    started = time.perf_counter()
    with KrxReplay(market, require_login=True) as replay:
        outcomes = run_workers(replay, jobs, env=env, timeout=1800)
    gaps = replay.gaps() + replay.gaps(naver=True)
    failed = [o for worker in outcomes for o in worker if not o.startswith("ok ")]
    return {"workers": workers, "requests": replay.total, "by_kind": dict(replay.received),
            "logins": replay.received["login"], "min_gap": min(gaps), "failed": failed,
            "interval": os.environ.get("KRXFLOW_KRX_MIN_INTERVAL", "1.0 (default)"),
            "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=2_800)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--runner", choices=("local", "dags-test"), default="local",
                        help="local: scheduler + LocalExecutor + execution API, as deployed (default); "
                             "dags-test: airflow dags test, every task instance in one process")
    parser.add_argument("--executor", choices=sorted(environment.EXECUTORS), default="local",
                        help="the local runner's executor: local (LocalExecutor) or celery (CeleryExecutor)")
    parser.add_argument("--celery-workers", type=int, default=2, help="airflow celery worker processes (celery)")
    parser.add_argument("--parallelism", type=int, default=16, help="executor parallelism (and pool slots)")
    parser.add_argument("--api-workers", type=int, default=1, help="execution API server workers (local runner)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on the run after this many seconds")
    parser.add_argument("--wire-workers", type=int, default=4, help="paced worker processes of the KRX wire figures")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway databases")
    args = parser.parse_args()

    from krxflow.sources.sample import universe

    tickers = universe(args.tickers)
    setup()
    try:
        print(f"databases: market {MARKET_DB}, airflow {AIRFLOW_DB}", flush=True)
        if args.runner == "local":
            backfill = run_backfill_scheduled(tickers, args.years, args.parallelism, args.api_workers, args.timeout,
                                              environment.EXECUTORS[args.executor], args.celery_workers)
        else:
            backfill = run_backfill_dags_test(tickers, args.years)
        report = backfill["report"]
        ti_per_s = len(tickers) / backfill["seconds"]
        runner = args.runner if args.runner == "dags-test" else f"{args.runner}, {args.executor} executor"
        print(f"backfill run ({runner}): {backfill['seconds']:.1f}s for {len(tickers)} mapped tasks ({ti_per_s:.2f}/s); "
              f"ok={report['ok']} empty={report['empty']} failed={report['failed']} rows={backfill['rows']} "
              f"peak_rss: {backfill['rss']}", flush=True)
        requests = count_requests_by_date(args.tickers, args.years)
        print(f"by date through the replay: {requests['sessions']} sessions, {requests['requests']} requests "
              f"{requests['by_kind']}, {requests['rows']} rows parsed in {requests['seconds']:.1f}s", flush=True)
        wire = measure_wire(args.tickers, args.wire_workers)
        print(f"KRX wire, {wire['workers']} paced workers (interval {wire['interval']}): {wire['requests']} requests "
              f"{wire['by_kind']} in {wire['seconds']:.1f}s; {wire['logins']} login(s); smallest gap between two "
              f"arrivals {wire['min_gap']:.3f}s; failed jobs: {wire['failed'] or 'none'}", flush=True)
    finally:
        if not args.keep:
            teardown()
    print(f"backfill: tickers={len(tickers)} seconds={backfill['seconds']:.1f} ti_per_s={ti_per_s:.2f} "
          f"rows={backfill['rows']} krx_requests_5y_by_date={requests['requests']} "
          f"peak_rss_mb={backfill['peak_rss_mb']:.0f} krx_logins={wire['logins']} krx_min_gap_s={wire['min_gap']:.3f}")


if __name__ == "__main__":
    main()
