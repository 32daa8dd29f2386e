"""Deriving the adjusted series from KRX's base prices: the whole market, one day, and what it costs KRX.

1. A throwaway database is migrated and filled with ``--years`` of raw daily prices of the
   ``--tickers`` sample tickers through the writer (the sample market has splits, a reverse split
   relisted at an auction, a bonus and a rights issue, a delisted ticker with a split).
2. ``full_seconds``: :func:`krxflow.krx.adjusting.adjust_market` — every ticker's factors and
   whole adjusted history, from an empty ``adjustment_factors``/``daily_prices_adjusted``.
3. ``day_seconds``: one more session loaded, then :func:`adjust_session` on it (what
   ``krx_daily_prices`` does every evening): new factors, rewritten tickers, the day's rows.
4. ``stored_vs_view``: why the adjusted series is stored, not computed in a view — the read API's
   and Grafana's query (one ticker, one year of adjusted daily prices) against the stored table,
   and the same rows computed on the fly from ``daily_prices`` and ``adjustment_factors``; the
   figure is the view's median time over the table's.
5. ``krx_requests_5y``: a complete raw + adjusted 5-year market by date through pykrx and the
   offline KRX replay (with the login): one all-market request per session, plus the cross-check
   of every ex-date against KRX's own adjusted prices (one request per ex-date) — what the
   replay received, logins included. The adjusted series itself costs no request.

    python bench/adjust.py [--tickers 2700] [--years 5] [--keep]

Last line (the form progress is measured by):
    adjust: rows=N tickers=T factors=F full_seconds=S day_seconds=D krx_requests_5y=Q
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
TOKEN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
BENCH_DB = f"krxflow_bench_adjust_{TOKEN}"
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{BENCH_DB}"
os.environ.setdefault("AIRFLOW_CONN_REDIS_DEFAULT", "redis://127.0.0.1:6379/0")
os.environ["KRXFLOW_REDIS_PREFIX"] = f"krxflow-bench-{TOKEN}:"
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow-home"))
os.environ.setdefault("KRXFLOW_SQL_DIR", str(ROOT / "include" / "sql"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
for leaked in ("KRX_ID", "KRX_PW"):
    os.environ.pop(leaked, None)

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def load_raw(tickers: int, first: dt.date, last: dt.date) -> int:
    from grafana import sample_data
    from krxflow.db import migrations
    from krxflow.db.connection import connection
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.sample.market import SampleSource

    with connection() as conn:
        migrations.migrate(conn)
    hook = BatchedPostgresHook(record_stats=False)
    report = sample_data.load_market(hook, SampleSource(tickers), first, last, adjust=False)
    return report.daily_rows


# One ticker-year of adjusted closes computed on the fly (what a view would do), for the comparison only.
_ON_THE_FLY = sql.SQL("""
SELECT p.trade_date, p.close * coalesce(
           (SELECT exp(sum(ln(f.base_price::numeric / f.previous_close)))
            FROM adjustment_factors f WHERE f.ticker = p.ticker AND f.ex_date > p.trade_date), 1) AS close
FROM daily_prices p
WHERE p.ticker = %(ticker)s AND p.trade_date BETWEEN %(first)s AND %(last)s
ORDER BY p.trade_date""")
_STORED = sql.SQL("""
SELECT trade_date, close FROM daily_prices_adjusted
WHERE ticker = %(ticker)s AND trade_date BETWEEN %(first)s AND %(last)s
ORDER BY trade_date""")


def stored_vs_view(last: dt.date, repeat: int = 200) -> tuple[float, float]:
    """Median seconds of a ticker-year read: the stored table, and computed on the fly."""
    import random
    import statistics

    from krxflow.db.connection import connection

    with connection() as conn:
        tickers = [r[0] for r in conn.execute("SELECT DISTINCT ticker FROM adjustment_factors")] or \
            [r[0] for r in conn.execute("SELECT ticker FROM stocks LIMIT 50")]
        rng = random.Random(1)
        timings = {"stored": [], "view": []}
        for _ in range(repeat):
            params = {"ticker": rng.choice(tickers), "first": last - dt.timedelta(days=365), "last": last}
            for name, statement in (("stored", _STORED), ("view", _ON_THE_FLY)):
                started = time.perf_counter()
                conn.execute(statement, params).fetchall()
                timings[name].append(time.perf_counter() - started)
    return statistics.median(timings["stored"]), statistics.median(timings["view"])


def count_krx_requests(tickers: int, first: dt.date, last: dt.date) -> dict:
    """By date through pykrx and the replay, then one KRX-adjusted request per ex-date (the cross-check)."""
    from airflow_bench import krx_requests
    from krxflow.calendar import trading_days
    from krxflow.db.connection import connection

    with connection() as conn:
        ex_dates = conn.execute("SELECT ticker, ex_date FROM adjustment_factors WHERE ex_date BETWEEN %s AND %s",
                                (first, last)).fetchall()
    return krx_requests(tickers, trading_days(first, last), ex_dates=ex_dates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=2_700)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()

    from krxflow.calendar import previous_trading_day, trading_days
    from krxflow.db.connection import connection
    from krxflow.krx.adjusting import adjust_market, adjust_session
    from krxflow.krx.loading import history_window, load_daily_prices
    from krxflow.sample.market import SampleSource

    first, last = history_window(args.years)
    day = last
    last = previous_trading_day(day)  # the incremental day comes after the loaded history
    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    try:
        print(f"database {BENCH_DB}: {args.tickers} tickers, {first} .. {last}", flush=True)
        started = time.perf_counter()
        rows = load_raw(args.tickers, first, last)
        print(f"  raw rows loaded: {rows} in {time.perf_counter() - started:.1f}s", flush=True)

        full = adjust_market()
        print(f"  adjust_market: {full.tickers} tickers, {full.rows} rows, {full.factors_found} factors, "
              f"{full.rows_written} adjusted rows written in {full.seconds:.1f}s", flush=True)
        rerun = adjust_market()
        print(f"  rerun: {rerun.rows_written} rows and {rerun.factors_written} factors written "
              f"in {rerun.seconds:.1f}s (idempotent)", flush=True)

        load_daily_prices(SampleSource(args.tickers), day)
        incremental = adjust_session(day)
        print(f"  adjust_session({day}): {incremental.tickers} tickers, {incremental.factors_found} factors, "
              f"{len(incremental.rewritten)} rewritten, {incremental.rows_written} rows in "
              f"{incremental.seconds:.2f}s", flush=True)
        with connection() as conn:
            factors = conn.execute("SELECT count(*) FROM adjustment_factors").fetchone()[0]
        stored, view = stored_vs_view(last)
        print(f"  one ticker-year of adjusted prices, median of 200: stored {stored * 1000:.2f} ms, computed on "
              f"the fly {view * 1000:.2f} ms (stored_vs_view={view / stored:.1f}x)", flush=True)
        wire = count_krx_requests(args.tickers, first, last)
        print(f"  by date through the replay: {len(trading_days(first, last))} sessions + {wire['ex_dates']} "
              f"cross-checks = {wire['requests']} requests {wire['by_kind']} in {wire['seconds']:.1f}s", flush=True)
    finally:
        if not args.keep:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
    print(f"adjust: rows={full.rows} tickers={full.tickers} factors={factors} full_seconds={full.seconds:.1f} "
          f"day_seconds={incremental.seconds:.2f} krx_requests_5y={wire['requests']}")


if __name__ == "__main__":
    main()
