"""How fast the Grafana panels answer on a full market: every panel's SQL, expanded as Grafana does.

1. A throwaway database is migrated and filled through the normal load path: the offline
   ``sample`` KRX source (``--tickers`` ≈ 2,800, five years of sessions) -> BatchedPostgresHook
   (ticker master, raw and adjusted daily prices); the upkeep module refreshes the materialized
   views and computes daily_indicators; one KIS-like session of ticks and order books and a month
   of load_stats history (polling windows, task writes, quality checks, backups) are added.
2. Every panel of every dashboard in grafana/dashboards runs as ``krxflow_readonly`` (the role the
   Grafana datasource uses), for every combination of the dashboard's switches ($interval,
   $adjusted, ...), over the dashboard's default time range and a five-year zoom-out, with a
   different ticker each repetition; each run is timed end to end (plan + execute + fetch).

    python bench/grafana_queries.py [--tickers 2800] [--years 5] [--repeat 12] [--keep]
    python bench/grafana_queries.py --database krxflow_bench_grafana_...   # time again, no reload

Last line (the form progress is measured by):
    grafana_queries: panels=N p95_ms=X max_ms=Y
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_DB = f"krxflow_bench_grafana_{os.getpid()}_{uuid.uuid4().hex[:6]}"
for _i, _arg in enumerate(sys.argv):  # --database must be known before anything reads the Connection
    if _arg == "--database" and _i + 1 < len(sys.argv):
        BENCH_DB = sys.argv[_i + 1]
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{BENCH_DB}"
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow-home"))
os.environ.setdefault("KRXFLOW_SQL_DIR", str(ROOT / "include" / "sql"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from grafana import panel_sql  # noqa: E402

KST = dt.timezone(dt.timedelta(hours=9))


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def step(label: str, started: float) -> float:
    now = time.perf_counter()
    print(f"  {label}: {now - started:.1f}s", flush=True)
    return now


def load(conn, tickers: int, years: int) -> dict:
    from grafana import sample_data
    from krxflow.calendar import previous_trading_day
    from krxflow.db import migrations
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.sample.market import SampleSource

    started = time.perf_counter()
    migrations.migrate(conn)
    today = dt.datetime.now(KST).date()
    last = previous_trading_day(today)
    first = last.replace(year=last.year - years)
    hook = BatchedPostgresHook(stats_context={"dag_id": "krx_history", "run_id": "bench", "task_id": "load"})

    def progress(done, total, report):
        if done == total or done % 1000 < 250:
            print(f"    histories of {done}/{total} tickers fetched", flush=True)

    report = sample_data.load_market(hook, SampleSource(tickers=tickers), first, last, progress=progress)
    at = step(f"loaded {report.tickers} tickers, {report.daily_rows:,} daily + {report.adjusted_rows:,} adjusted "
              f"rows {first}..{last} through BatchedPostgresHook", started)
    for line in sample_data.refresh_read_models(conn, hook):
        print(f"    {line}")
    at = step("refreshed views and indicators (krxflow.upkeep)", at)
    listed = [r[0] for r in conn.execute("SELECT ticker FROM stocks WHERE NOT delisted ORDER BY ticker")]
    intraday = listed[:: max(1, len(listed) // 50)][:50]
    quotes, books = sample_data.load_intraday(hook, intraday, last, every_seconds=10)
    at = step(f"one session of ticks ({quotes.rows_written:,}) and order books ({books.rows_written:,}) "
              f"for {len(intraday)} tickers", at)
    from krxflow.calendar import trading_days
    from krxflow.krx import loading

    for day in trading_days(last - dt.timedelta(days=10), last):  # the krx_daily_prices DAG's quality check
        loading.check_daily_quality(day, hook=hook)
    recent = trading_days(last - dt.timedelta(days=14), last)  # the krx_market_reports DAG's reports
    written = sample_data.load_reports(hook, SampleSource(tickers=tickers), recent)
    at = step(f"the other KRX reports of {len(recent)} sessions ({sum(written.values()):,} rows)", at)
    universe = sample_data.load_universe(hook, SampleSource(tickers=tickers), [recent[0], last])  # the $day panels
    at = step(f"the universe of 2 sessions ({sum(u['members_entered'] for u in universe):,} memberships)", at)
    stats = sample_data.load_pipeline_history(hook, conn, dt.datetime.now(KST))
    step(f"load_stats history ({stats:,} rows)", at)
    conn.execute("ANALYZE")
    return {"first": first, "last": last, "listed": listed, "intraday": intraday}


def loaded(conn) -> dict:
    """What ``load`` returns, read back from a database it filled earlier."""
    first, last = conn.execute("SELECT min(trade_date), max(trade_date) FROM daily_prices").fetchone()
    listed = [r[0] for r in conn.execute("SELECT ticker FROM stocks WHERE NOT delisted ORDER BY ticker")]
    intraday = [r[0] for r in conn.execute(
        "SELECT DISTINCT ticker FROM intraday_quotes WHERE ts >= %s ORDER BY ticker", (last,))]
    return {"first": first, "last": last, "listed": listed, "intraday": intraday}


def cases(data: dict, repeat: int, seed: int = 6):
    """(panel query, time range, variable values, multi names) for every run."""
    rng = random.Random(seed)
    now = dt.datetime.now(KST)
    five_years = panel_sql.kst_range(str(data["first"]), str(data["last"]))
    for dashboard in panel_sql.load_dashboards().values():
        variables = panel_sql.variables(dashboard)
        multi = {n for n, v in variables.items() if v.multi}
        if dashboard["uid"] == "krxflow-intraday":
            ranges = [panel_sql.kst_range(str(data["last"]), str(data["last"]))]
        elif dashboard["uid"] == "krxflow-pipeline":
            ranges = [panel_sql.TimeRange(now - dt.timedelta(days=7), now),
                      panel_sql.TimeRange(now - dt.timedelta(days=30), now)]
        else:
            default_days = 365 if dashboard["uid"] == "krxflow-stock" else 182
            ranges = [panel_sql.kst_range(str(data["last"] - dt.timedelta(days=default_days)), str(data["last"])),
                      five_years]
        for q in panel_sql.panel_queries(dashboard):
            switches = {n: v.options for n, v in variables.items()
                        if v.type == "custom" and not v.multi and f"${n}" in q.raw_sql}
            combos = [dict(zip(switches, c)) for c in itertools.product(*switches.values())] or [{}]
            for time_range, combo, _ in itertools.product(ranges, combos, range(repeat)):
                pool = data["intraday"] if dashboard["uid"] == "krxflow-intraday" else data["listed"]
                values = {"ticker": rng.choice(pool), "market": ["KOSPI", "KOSDAQ"], "day": str(data["last"]), **combo}
                yield q, time_range, values, multi


def run(conn, repeat: int, data: dict) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    empty = runs = 0
    conn.execute("SET ROLE krxflow_readonly")
    for q, time_range, values, multi in cases(data, repeat):
        statement = panel_sql.expand(q.raw_sql, time_range, values, multi=multi,
                                     interval=panel_sql.auto_interval(time_range))
        started = time.perf_counter()
        rows = conn.execute(statement).fetchall()
        elapsed = (time.perf_counter() - started) * 1000
        runs += 1
        empty += not rows  # a ticker listed after the range starts, say: legitimate, but should be rare
        timings.setdefault(f"{q.name} {q.title}", []).append(elapsed)
    conn.execute("RESET ROLE")
    print(f"  {runs} panel runs, {empty} returned no rows", flush=True)
    if empty > runs * 0.05:
        raise AssertionError(f"{empty} of {runs} panel runs returned no rows: the sample data does not cover the panels")
    return timings


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=2800)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=12, help="runs per panel, switch combination and range")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--database", help="time the panels on a database kept by --keep (no load)")
    args = parser.parse_args()

    if not args.database:
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    try:
        from krxflow.db.connection import connection

        with connection() as conn:
            print(f"bench database {BENCH_DB}", flush=True)
            data = loaded(conn) if args.database else load(conn, args.tickers, args.years)
            run(conn, 1, data)  # warm the cache once, as a dashboard in use is
            timings = run(conn, args.repeat, data)
    finally:
        if not (args.keep or args.database):
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))

    print(f"{'panel':60s} {'runs':>5s} {'p50_ms':>8s} {'p95_ms':>8s} {'max_ms':>8s}")
    for name, values in timings.items():
        print(f"{name[:60]:60s} {len(values):5d} {statistics.median(values):8.1f} {p95(values):8.1f} {max(values):8.1f}")
    everything = [v for values in timings.values() for v in values]
    print(f"grafana_queries: panels={len(timings)} p95_ms={p95(everything):.1f} max_ms={max(everything):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
