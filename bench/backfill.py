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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
from airflow_bench import (PeakRss, airflow_stack, configure, count_requests_by_date, setup, teardown,  # noqa: E402
                           wait_for_run)

MARKET_DB, AIRFLOW_DB = configure("bench")

from krxflow import environment  # noqa: E402  (plain strings, no Airflow import)


def _report() -> tuple[dict, int]:
    from krxflow.db.connection import connection

    with connection() as conn:
        report = conn.execute("SELECT details FROM load_stats WHERE operation = 'history_backfill' "
                              "ORDER BY id DESC LIMIT 1").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM daily_prices_adjusted").fetchone()[0]
    return report, rows


def load_ticker_master(count: int) -> tuple[int, list[str]]:
    """A ticker master of ``count`` tickers (listed and delisted), loaded by krxflow's own ``krx_tickers``
    code from the smallest sample market that has traded that many tickers by today (a few of a sample
    market's tickers list in the future); the backfill is then triggered as a user triggers it,
    ``tickers="all"``. Returns the sample market's size and the master's tickers.

    Not a 2,800-ticker list in the run's conf: Airflow's scheduler reads a run's task instances joined
    with the run, conf included, on every loop (``DagRun.fetch_task_instances``), so a conf that lists
    every ticker is decoded once per task instance per loop (measured at 700 tickers: 23 % of the
    scheduler's CPU).
    """
    from krxflow.calendar import previous_trading_day
    from krxflow.db.connection import connection
    from krxflow.krx.master import load_listing
    from krxflow.market_time import kst_today
    from krxflow.sample.market import SampleSource

    day, market_size = previous_trading_day(kst_today()), count
    while True:
        source = SampleSource(market_size)
        traded = len(source.listing(day)) + len(source.delisted())
        if traded >= count:
            break
        market_size += count - traded
    if traded != count:
        raise SystemExit(f"no sample market has traded exactly {count} tickers by {day}")
    load_listing(source, day)
    with connection() as conn:
        return market_size, [row[0] for row in conn.execute("SELECT ticker FROM stocks ORDER BY ticker")]


def run_backfill_dags_test(market_size: int, years: int) -> dict:
    """Every task instance in one process (``airflow dags test``): no parallelism, no task start cost."""
    env = {**os.environ, "KRXFLOW_SOURCE": "sample", "KRXFLOW_SAMPLE_TICKERS": str(market_size)}
    conf = json.dumps({"years": years})  # tickers "all": the ticker master (load_ticker_master)
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


def run_backfill_scheduled(market_size: int, years: int, parallelism: int, api_workers: int, timeout: float,
                           executor: str = environment.LOCAL_EXECUTOR, celery_workers: int = 2) -> dict:
    """A real scheduler + executor (+ the Execution API), as in production; the run is triggered once.

    LocalExecutor: workers from the preloaded forkserver. CeleryExecutor: ``celery_workers`` ``airflow
    celery worker`` processes (``parallelism`` shared between them, preload by krxflow.celery_config)
    on the bench Redis's next database."""
    from tests.fakes.airflow_processes import airflow_cli

    sample = {"KRXFLOW_SOURCE": "sample", "KRXFLOW_SAMPLE_TICKERS": str(market_size)}
    conf = json.dumps({"years": years})  # tickers "all": the ticker master (load_ticker_master)
    with airflow_stack(parallelism, api_workers, env=sample, unpause=("krx_history_backfill",), executor=executor,
                       celery_workers=celery_workers) as (env, processes, log_dir):
        with PeakRss([process.pid for process in processes]) as rss:
            started = time.perf_counter()
            airflow_cli(env, "dags", "trigger", "krx_history_backfill", "-c", conf)
            state = wait_for_run("krx_history_backfill", processes, log_dir, timeout, started)
            seconds = time.perf_counter() - started
    report, rows = _report()
    return {"seconds": seconds, "report": report, "rows": rows, "peak_rss_mb": rss.task_peak(), "rss": str(rss),
            "largest_task": rss.largest_task(), "state": state, "cpu": rss.cpu_summary(),
            "machine_cpu_s": rss.machine_cpu_s}


def measure_wire(tickers: int, workers: int, sessions_per_worker: int = 5, histories_per_worker: int = 2) -> dict:
    """Several paced workers against one offline KRX: logins received and the smallest arrival gap."""
    from krxflow.calendar import trading_days
    from krxflow.krx.loading import history_window
    from krxflow.sample.market import SampleMarket
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

    setup(MARKET_DB, AIRFLOW_DB)
    try:
        print(f"databases: market {MARKET_DB}, airflow {AIRFLOW_DB}", flush=True)
        market_size, tickers = load_ticker_master(args.tickers)
        print(f"ticker master: {len(tickers)} tickers (a sample market of {market_size})", flush=True)
        if args.runner == "local":
            backfill = run_backfill_scheduled(market_size, args.years, args.parallelism, args.api_workers, args.timeout,
                                              environment.EXECUTORS[args.executor], args.celery_workers)
        else:
            backfill = run_backfill_dags_test(market_size, args.years)
        report = backfill["report"]
        ti_per_s = len(tickers) / backfill["seconds"]
        runner = args.runner if args.runner == "dags-test" else f"{args.runner}, {args.executor} executor"
        print(f"backfill run ({runner}): {backfill['seconds']:.1f}s for {len(tickers)} mapped tasks ({ti_per_s:.2f}/s); "
              f"ok={report['ok']} empty={report['empty']} failed={report['failed']} rows={backfill['rows']} "
              f"peak_rss: {backfill['rss']} (largest task: {backfill.get('largest_task', 'n/a')})", flush=True)
        if "cpu" in backfill:
            print(f"CPU: {backfill['machine_cpu_s'] / len(tickers):.3f} CPU-s per mapped task; {backfill['cpu']}",
                  flush=True)
        requests = count_requests_by_date(args.tickers, args.years)
        print(f"by date through the replay: {requests['sessions']} sessions, {requests['requests']} requests "
              f"{requests['by_kind']}, {requests['rows']} rows parsed in {requests['seconds']:.1f}s", flush=True)
        wire = measure_wire(args.tickers, args.wire_workers)
        print(f"KRX wire, {wire['workers']} paced workers (interval {wire['interval']}): {wire['requests']} requests "
              f"{wire['by_kind']} in {wire['seconds']:.1f}s; {wire['logins']} login(s); smallest gap between two "
              f"arrivals {wire['min_gap']:.3f}s; failed jobs: {wire['failed'] or 'none'}", flush=True)
    finally:
        if not args.keep:
            teardown(MARKET_DB, AIRFLOW_DB)
    print(f"backfill: tickers={len(tickers)} seconds={backfill['seconds']:.1f} ti_per_s={ti_per_s:.2f} "
          f"rows={backfill['rows']} krx_requests_5y_by_date={requests['requests']} "
          f"peak_rss_mb={backfill['peak_rss_mb']:.0f} krx_logins={wire['logins']} krx_min_gap_s={wire['min_gap']:.3f}")


if __name__ == "__main__":
    main()
