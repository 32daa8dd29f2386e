"""How fast the Grafana panels answer on a full market: every panel's SQL, expanded as Grafana does.

1. A throwaway database is migrated and filled through the normal load path: the offline
   ``sample`` KRX source (``--tickers`` ≈ 2,800, five years of sessions) -> BatchedPostgresHook
   (ticker master, raw and adjusted daily prices); the upkeep module refreshes the materialized
   views and computes daily_indicators; one KIS-like session of ticks and order books, of pushed
   trades and minute bars (with the collector's figures), and a month of load_stats history
   (polling windows, task writes, quality checks, backups) are added.
2. Every panel of every dashboard in grafana/dashboards runs as ``krxflow_readonly`` (the role the
   Grafana datasource uses), for every combination of the dashboard's switches ($interval,
   $adjusted, ...), over the dashboard's default time range and a five-year zoom-out, with a
   different ticker each repetition; each run is timed end to end (plan + execute + fetch).
   The cases are the same on every run of the bench: the tickers come from a seeded generator and
   only from those whose history covers the whole time range (a ticker listed after the range
   starts answers a shorter, cheaper query). A panel that fails, or answers no rows, is named in
   the report (``untimed`` counts the failures) instead of stopping the bench.

    python bench/grafana_queries.py [--tickers 2800] [--years 5] [--repeat 12] [--keep]
    python bench/grafana_queries.py --database krxflow_bench_grafana_...   # time again, no reload

Last line (the form progress is measured by):
    grafana_queries: panels=N p95_ms=X max_ms=Y empty=E untimed=U
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
    trades, bars = sample_data.load_realtime(hook, conn, intraday, last)  # the push panels' tables
    at = step(f"pushed trades ({trades.rows_written:,}), minute bars ({bars.rows_written:,}) and the collector's "
              f"figures for the same tickers", at)
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
    return loaded(conn)


def loaded(conn) -> dict:
    """What the cases are drawn from, read from a filled database: its days, listed tickers, the
    tickers with intraday data on the last day, and each ticker's first and last day."""
    first, last = conn.execute("SELECT min(trade_date), max(trade_date) FROM daily_prices").fetchone()
    listed = [r[0] for r in conn.execute("SELECT ticker FROM stocks WHERE NOT delisted ORDER BY ticker")]
    intraday = [r[0] for r in conn.execute(
        "SELECT DISTINCT ticker FROM intraday_quotes WHERE ts >= %s ORDER BY ticker", (last,))]
    spans = {ticker: (low, high) for ticker, low, high in conn.execute(
        "SELECT ticker, min(trade_date), max(trade_date) FROM daily_prices GROUP BY ticker")}
    return {"first": first, "last": last, "listed": listed, "intraday": intraday, "spans": spans}


def covering(data: dict, time_range) -> list[str]:
    """The listed tickers whose daily history covers ``time_range`` (as far as the data reaches), sorted."""
    start = max(time_range.start.astimezone(KST).date(), data["first"])
    end = min(time_range.end.astimezone(KST).date(), data["last"])
    return [t for t in data["listed"] if t in data["spans"] and data["spans"][t][0] <= start
            and data["spans"][t][1] >= end]


class _Pools(dict):
    """time range -> the tickers that cover it (computed once per range)."""

    def __init__(self, data: dict):
        super().__init__()
        self.data = data

    def __missing__(self, time_range):
        pool = self[time_range] = covering(self.data, time_range) or self.data["listed"]
        return pool


def cases(data: dict, repeat: int, seed: int = 6):
    """(panel query, time range, variable values, multi names) for every run."""
    rng = random.Random(seed)
    now = dt.datetime.now(KST)
    five_years = panel_sql.kst_range(str(data["first"]), str(data["last"]))
    pools = _Pools(data)
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
                pool = data["intraday"] if dashboard["uid"] == "krxflow-intraday" else pools[time_range]
                values = {"ticker": rng.choice(pool), "market": ["KOSPI", "KOSDAQ"], "day": str(data["last"]), **combo}
                yield q, time_range, values, multi


def run(conn, repeat: int, data: dict) -> tuple[dict[str, list[float]], dict[str, int], dict[str, str]]:
    """Time every case: (milliseconds per panel, runs per panel that answered no rows, the error of
    each panel that failed). A failing run is not timed; an empty one is (and counted)."""
    timings: dict[str, list[float]] = {}
    empty: dict[str, int] = {}
    failed: dict[str, str] = {}
    runs = 0
    conn.execute("SET ROLE krxflow_readonly")
    for q, time_range, values, multi in cases(data, repeat):
        name = f"{q.name} {q.title}"
        statement = panel_sql.expand(q.raw_sql, time_range, values, multi=multi,
                                     interval=panel_sql.auto_interval(time_range))
        runs += 1
        started = time.perf_counter()
        try:
            rows = conn.execute(statement).fetchall()
        except psycopg.Error as exc:
            failed.setdefault(name, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if not rows:
            empty[name] = empty.get(name, 0) + 1
        timings.setdefault(name, []).append(elapsed)
    conn.execute("RESET ROLE")
    print(f"  {runs} panel runs, {sum(empty.values())} answered no rows, {len(failed)} panels failed", flush=True)
    return timings, empty, failed


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
            timings, empty, failed = run(conn, args.repeat, data)
    finally:
        if not (args.keep or args.database):
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))

    print(f"{'panel':60s} {'runs':>5s} {'p50_ms':>8s} {'p95_ms':>8s} {'max_ms':>8s}")
    for name, values in timings.items():
        print(f"{name[:60]:60s} {len(values):5d} {statistics.median(values):8.1f} {p95(values):8.1f} {max(values):8.1f}")
    for name, count in sorted(empty.items()):
        print(f"answered no rows: {name} ({count} of {len(timings[name])} runs)")
    for name, error in sorted(failed.items()):
        print(f"not timed (failed): {name}: {error}")
    everything = [v for values in timings.values() for v in values]
    print(f"grafana_queries: panels={len(timings)} p95_ms={p95(everything):.1f} max_ms={max(everything):.1f} "
          f"empty={sum(empty.values())} untimed={len(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
