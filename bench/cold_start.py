"""The cold start: an empty database to N years of the whole sample market, under a real Airflow.

1. Throwaway databases; ``airflow scheduler`` with the LocalExecutor and the Execution API (as
   ``bench/backfill.py``, :mod:`airflow_bench`); the sample source with no added latency;
   ``krx_cold_start`` and ``db_matviews`` unpaused, every other DAG paused.
2. ``krx_cold_start`` is triggered with ``{"years": N}``; the bench waits for it and for the
   ``db_matviews`` run its Asset events trigger (views, candles, indicators). ``wall_s`` runs from
   the trigger to the end of that ``db_matviews`` run; ``indicators_s`` from the first
   ``update_indicators`` task's start to the last one's end.
3. What the upkeep did during the backfill (point 3 of issue 16): ``db_matviews`` runs, view
   refreshes and indicator writes, from the metadata database and ``load_stats``.
4. ``krx_requests``: the source calls the cold start made — one all-market answer per session,
   one KRX-adjusted series per ex-date ticker (the cross-check), the last session's listing and
   the delisted finder — sent through pykrx to the offline KRX replay with the login; the figure
   is what the replay received, logins included.
5. ``peak_rss_mb``: the largest single krxflow/Airflow process (task, worker, scheduler, api-server),
   sampled every 0.25 s.

    python bench/cold_start.py [--years 5] [--tickers 2700] [--parallelism 8] [--keep]

Last line (the form progress is measured by):
    cold_start: years=Y tickers=T sessions=S rows=R krx_requests=Q wall_s=W indicators_s=I peak_rss_mb=M

The indicator fill alone (``--only-indicators``), to compare two versions of it on one machine at
one time: the sample market of the same size is loaded once through the normal load path (or a
database kept by ``--keep`` is reused with ``--database``), then, round after round, the fill runs
from an empty ``daily_indicators`` exactly as ``db_matviews`` runs it — one process per price table,
both at once — with this checkout's krxflow and, alternately, with the checkout given by
``--against`` (e.g. an export of the commit before a change). ``seconds`` runs from the first
process's start of ``indicators.update`` to the last one's end.

    python bench/cold_start.py --only-indicators [--against DIR] [--rounds 2] [--database NAME]

``cpu_s`` adds up the CPU seconds of both processes and of their PostgreSQL backends: the other
work on a shared machine stretches the wall time much more than it.

Last line (medians over the rounds):
    cold_start_indicators: tickers=T rows=R this_s=I this_cpu_s=C against_s=J against_cpu_s=D
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
from airflow_bench import (SERVER, PeakRss, airflow_stack, configure, krx_requests, run_state, setup,  # noqa: E402
                           teardown, wait_for_run)

MARKET_DB, AIRFLOW_DB = configure("cold_start")
UPKEEP = "db_matviews"


def _upkeep_run(after: dt.datetime):
    """The newest db_matviews run queued after ``after`` (its state), or None."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = (session.query(DagRun).filter(DagRun.dag_id == UPKEEP, DagRun.queued_at >= after)
               .order_by(DagRun.id.desc()).first())
        return None if run is None else (run.run_id, str(run.state), str(run.run_type))


def _upkeep_figures(after: dt.datetime) -> dict:
    """db_matviews runs since ``after`` and the seconds of their indicator tasks (first start to last end)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == UPKEEP, DagRun.queued_at >= after).all()
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == UPKEEP,
                                                 TaskInstance.run_id.in_([r.run_id for r in runs]),
                                                 TaskInstance.task_id == "update_indicators").all()
        spans = [(ti.start_date, ti.end_date) for ti in tis if ti.start_date and ti.end_date]
        indicators = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds() if spans else float("nan")
        return {"runs": [(r.run_id, str(r.run_type), str(r.state)) for r in runs], "indicators_s": indicators,
                "indicator_tasks": [(ti.map_index, ti.state, ti.duration) for ti in tis]}


def _market_figures() -> dict:
    from krxflow.db.connection import connection

    with connection() as conn:
        one = lambda query: conn.execute(query).fetchone()[0]  # noqa: E731
        return {
            "tickers": one("SELECT count(DISTINCT ticker) FROM daily_prices"),
            "stocks": one("SELECT count(*) FROM stocks"),
            "sessions": one("SELECT count(DISTINCT trade_date) FROM daily_prices"),
            "rows": one("SELECT count(*) FROM daily_prices"),
            "adjusted_rows": one("SELECT count(*) FROM daily_prices_adjusted"),
            "indicator_rows": one("SELECT count(*) FROM daily_indicators"),
            "factors": one("SELECT count(*) FROM adjustment_factors"),
            "summary_rows": one("SELECT count(*) FROM daily_market_summary"),
            "weekly_rows": one("SELECT count(*) FROM weekly_candles"),
            "monthly_rows": one("SELECT count(*) FROM monthly_candles"),
            "master_placements": one("SELECT count(*) FROM load_stats WHERE operation = 'cold_start_session' "
                                     "AND (details->>'master_placed')::boolean"),
            "view_refreshes": one("SELECT count(*) FROM load_stats WHERE operation = 'refresh'"),
            "indicator_writes": one("SELECT count(*) FROM load_stats WHERE table_name = 'daily_indicators'"),
            "ex_date_tickers": conn.execute(
                "SELECT ticker, ex_date FROM adjustment_factors ORDER BY ex_date").fetchall(),
        }


def count_requests(tickers: int, years: int, ex_date_tickers: list) -> dict:
    """The cold start's source calls through pykrx and the offline KRX (with its login): what KRX received."""
    from krxflow.calendar import trading_days
    from krxflow.krx.loading import history_window

    first, last = history_window(years)
    return krx_requests(tickers, trading_days(first, last), ex_dates=ex_date_tickers, listing_day=last)


#: One ``db_matviews`` indicator task outside Airflow: ``indicators.update`` for one price table
#: (argv[1]) through the writer, with the krxflow on PYTHONPATH; prints its start, end and report.
FILL_ONE_SOURCE = """
import json, sys, time
from krxflow.db.connection import connection
from krxflow.hooks import BatchedPostgresHook
from krxflow.upkeep import indicators
hook = BatchedPostgresHook(stats_context={"dag_id": "db_matviews", "run_id": "bench", "task_id": "update_indicators"})
with connection() as conn:
    started = time.time()
    reports = indicators.update(conn, hook, sources=(sys.argv[1],))
    ended = time.time()
print(json.dumps({"started": started, "ended": ended, "summary": [r.summary() for r in reports],
                  "rows": sum(r.inserted + r.updated for r in reports)}))
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fill_indicators(checkout: Path) -> dict:
    """Fill ``daily_indicators`` from empty with ``checkout``'s krxflow, both price tables at once.

    Besides the wall time, the CPU seconds it cost, which the other work on a shared machine
    changes much less: the two processes' own (all their threads) and their PostgreSQL backends'
    (found by application name, sampled every 0.2 s while they run).
    """
    import resource

    from krxflow.db.connection import connection

    with connection() as conn:
        conn.execute("TRUNCATE daily_indicators")
        conn.execute("VACUUM ANALYZE daily_indicators")
        conn.execute("CHECKPOINT")  # the previous round's dirty pages are not this round's work
        name = f"krxflow-bench-indicators-{os.getpid()}"
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        package = checkout / "src" if (checkout / "src" / "krxflow").is_dir() else checkout / "plugins"  # older layout
        env = {**os.environ, "PYTHONPATH": f"{package}:{checkout}",
               "KRXFLOW_SQL_DIR": str(checkout / "include" / "sql"), "PGAPPNAME": name}
        processes = [subprocess.Popen([sys.executable, "-c", FILL_ONE_SOURCE, source], env=env, cwd=checkout,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for source in ("daily_prices", "daily_prices_adjusted")]
        backends: dict[int, float] = {}
        while any(process.poll() is None for process in processes):
            for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)):
                backends[pid] = max(backends.get(pid, 0.0), _cpu_seconds(pid))
            time.sleep(0.2)
    answers = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"the indicator fill of {checkout} failed:\n{err[-3000:]}")
        answers.append(json.loads(out.strip().splitlines()[-1]))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return {"seconds": max(a["ended"] for a in answers) - min(a["started"] for a in answers),
            "cpu_s": client + sum(backends.values()), "client_cpu_s": client, "server_cpu_s": sum(backends.values()),
            "rows": sum(a["rows"] for a in answers), "summary": [line for a in answers for line in a["summary"]]}


def only_indicators(args) -> None:
    """``--only-indicators``: time the indicator fill of this checkout (and ``--against``'s) on one data set."""
    from psycopg import sql

    from harness import admin

    if args.database:
        os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{args.database}"
    else:
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(MARKET_DB)))
    try:
        from krxflow.db.connection import connection

        with connection() as conn:
            if not args.database:
                from krxflow.db import migrations

                from grafana import sample_data
                from krxflow.hooks import BatchedPostgresHook
                from krxflow.krx.loading import history_window
                from krxflow.sample.market import SampleSource

                migrations.migrate(conn)
                first, last = history_window(args.years)
                hook = BatchedPostgresHook(stats_context={"dag_id": "bench", "run_id": "bench", "task_id": "load"})
                loaded = sample_data.load_market(hook, SampleSource(tickers=args.tickers), first, last)
                print(f"loaded {loaded.tickers} tickers, {loaded.daily_rows} daily and {loaded.adjusted_rows} "
                      f"adjusted rows {first}..{last} in {loaded.seconds:.1f}s ({MARKET_DB})", flush=True)
                conn.execute("VACUUM ANALYZE")
            tickers = conn.execute("SELECT count(DISTINCT ticker) FROM daily_prices").fetchone()[0]
        variants = {"this": ROOT} | ({"against": Path(args.against).resolve()} if args.against else {})
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        rows = 0
        for round_ in range(args.rounds):
            for name, checkout in (variants.items() if round_ % 2 == 0 else reversed(variants.items())):
                fill = _fill_indicators(checkout)
                seconds[name].append(fill["seconds"])
                cpu[name].append(fill["cpu_s"])
                rows = fill["rows"]
                print(f"round {round_ + 1} {name} ({checkout}): {fill['seconds']:.1f}s, {fill['rows']} rows, CPU "
                      f"{fill['cpu_s']:.1f}s ({fill['client_cpu_s']:.1f}s krxflow, {fill['server_cpu_s']:.1f}s "
                      f"PostgreSQL), load average {os.getloadavg()[0]:.2f}", flush=True)
                for line in fill["summary"]:
                    print(f"    {line}", flush=True)
    finally:
        if not (args.keep or args.database):
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(MARKET_DB)))
    figures = " ".join(f"{name}_s={statistics.median(seconds[name]):.1f} {name}_cpu_s={statistics.median(cpu[name]):.1f}"
                       for name in seconds)
    print(f"cold_start_indicators: tickers={tickers} rows={rows} {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--tickers", type=int, default=2_700, help="size of the sample market")
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor parallelism (and pool slots)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway databases")
    parser.add_argument("--only-indicators", action="store_true",
                        help="time only the indicator fill (from empty, as db_matviews runs it) on the sample market")
    parser.add_argument("--against", help="with --only-indicators: a second checkout whose fill is timed alternately")
    parser.add_argument("--rounds", type=int, default=2, help="with --only-indicators: fills per checkout (median)")
    parser.add_argument("--database", help="with --only-indicators: a market database kept by --keep (no load)")
    args = parser.parse_args()
    if args.only_indicators:
        only_indicators(args)
        return

    from tests.fakes.airflow_processes import airflow_cli

    setup(MARKET_DB, AIRFLOW_DB)
    load = os.getloadavg()
    try:
        print(f"databases: market {MARKET_DB}, airflow {AIRFLOW_DB}; load average {load[0]:.2f}", flush=True)
        # the scheduler's own scheduling stays on: it is what turns Asset events into db_matviews runs
        env = {"KRXFLOW_SOURCE": "sample", "KRXFLOW_SAMPLE_TICKERS": str(args.tickers),
               "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"}
        with airflow_stack(args.parallelism, env=env, unpause=("krx_cold_start", UPKEEP)) as (env, processes, log_dir):
            # an installation that runs already: db_matviews' first (scheduled) run on the empty database is over
            settled = time.perf_counter()
            while run_state(UPKEEP) not in ("success", "failed") and time.perf_counter() - settled < 120:
                time.sleep(2)
            with PeakRss([p.pid for p in processes]) as rss:
                queued = dt.datetime.now(dt.timezone.utc)
                started = time.perf_counter()
                airflow_cli(env, "dags", "trigger", "krx_cold_start", "-c", json.dumps({"years": args.years}))
                state = wait_for_run("krx_cold_start", processes, log_dir, args.timeout, started)
                loaded_s = time.perf_counter() - started
                print(f"krx_cold_start {state} after {loaded_s:.1f}s", flush=True)
                if state != "success":
                    raise SystemExit(f"krx_cold_start ended {state}; logs in {log_dir}")
                while True:  # the db_matviews run its Asset events queued, to its end
                    run = _upkeep_run(queued)
                    if run and run[2].endswith("asset_triggered") and run[1] in ("success", "failed"):
                        break
                    if time.perf_counter() - started > args.timeout:
                        raise SystemExit(f"{UPKEEP} did not finish; logs in {log_dir}")
                    time.sleep(2)
                wall = time.perf_counter() - started
        upkeep = _upkeep_figures(queued)
        market = _market_figures()
        print(f"upkeep during and after the backfill: {upkeep['runs']}; indicator tasks {upkeep['indicator_tasks']}",
              flush=True)
        print("market: " + ", ".join(f"{k}={v}" for k, v in market.items() if k != "ex_date_tickers"), flush=True)
        print(f"peak RSS: {rss}; the largest task process ran {rss.largest_task()}", flush=True)
        requests = count_requests(args.tickers, args.years, market["ex_date_tickers"])
        print(f"through the replay: {requests['requests']} requests {requests['by_kind']} "
              f"({requests['seconds']:.1f}s)", flush=True)
    finally:
        if not args.keep:
            teardown(MARKET_DB, AIRFLOW_DB)
    print(f"load average at the end {os.getloadavg()[0]:.2f}", flush=True)
    print(f"cold_start: years={args.years} tickers={market['tickers']} sessions={market['sessions']} "
          f"rows={market['rows']} krx_requests={requests['requests']} wall_s={wall:.1f} "
          f"indicators_s={upkeep['indicators_s']:.1f} peak_rss_mb={rss.krxflow_peak():.0f}")


if __name__ == "__main__":
    main()
