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
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
from airflow_bench import (PeakRss, airflow_stack, configure, krx_requests, run_state, setup, teardown,  # noqa: E402
                           wait_for_run)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--tickers", type=int, default=2_700, help="size of the sample market")
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor parallelism (and pool slots)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway databases")
    args = parser.parse_args()

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
