"""krx_export (issue 31): a full export of the sample market, one new session, and a DuckDB query on the files.

1. A throwaway database; the sample market (``--tickers``, ``--years``) loaded, every session but
   the last, by the product's own loaders, one calendar month per task on ``--workers`` processes
   (as ``krx_cold_start`` maps its periods): the cold start's by-date load
   (``cold_start.load_period``: prices, the ticker master on change points, the journal), then
   every report of the month's sessions as one ``BatchedPostgresHook.upsert`` per table (the
   frames ``load_report`` writes a day at a time, a month at once: the fast path into empty
   partitions). Then the factors and adjusted series (``cold_start.derive_adjusted``), the last
   listing with the delisted tickers, and the index master through ``load_report`` on the first
   and last session. Each process keeps the sample's per-ticker paths (a whole-market block of
   64 sessions otherwise recomputes all 2,700). Not timed in the goals; printed.
2. ``full_s``: the first export of everything to a fresh folder (statistics settled first).
3. ``day_s``: the last session loaded (``cold_start.run`` and every report), then the incremental export.
4. ``parquet_mb`` (the files) against ``pg_mb``: the exported tables' size in PostgreSQL, indexes included.
5. ``duckdb_q_ms``: the pivot of docs/export.md (a year of adjusted closes for the whole market),
   best of 3, from the files into a pandas DataFrame (``duckdb.sql(query).df()``; until 2026-12-07
   ``fetchall()``, whose Python tuples of ``Decimal`` cost ~4× the pivot itself).

    python bench/export.py [--tickers 2700] [--years 5] [--workers 2] [--keep] [--load-only] [--reuse-db NAME]

``--load-only`` stops after step 1 and keeps the loaded database (its name is printed);
``--reuse-db NAME`` then skips step 1: the throwaway database is a copy of NAME (``CREATE DATABASE
… TEMPLATE``), so NAME stays as loaded for the next run. ``--keep`` keeps the throwaway database
and the files.

Goals: full_s ≤ 120, day_s ≤ 10, parquet_mb ≤ 0.25 × pg_mb, duckdb_q_ms ≤ 200. Last line:
    export: years=5 tickers=T rows=R parquet_mb=P pg_mb=G full_s=F day_s=D duckdb_q_ms=Q
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
# the worker processes (spawned: they import this file again) must name the same database
TOKEN = os.environ.setdefault("KRXFLOW_BENCH_EXPORT_TOKEN", f"{os.getpid()}_{uuid.uuid4().hex[:6]}")
MARKET_DB = f"krxflow_bench_export_{TOKEN}"
os.environ.update({
    "AIRFLOW_HOME": tempfile.mkdtemp(prefix="krxflow-bench-airflow-"),
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "AIRFLOW_CONN_POSTGRES_DEFAULT": f"{SERVER}/{MARKET_DB}",
    "KRXFLOW_SQL_DIR": str(ROOT / "include" / "sql"),
    "MPLCONFIGDIR": tempfile.mkdtemp(prefix="krxflow-bench-mpl-"),
})

import logging  # noqa: E402

from psycopg import sql  # noqa: E402

from harness import admin  # noqa: E402


def settle(conn) -> None:
    """Writer sessions closed and gone: their activity statistics (the fingerprints) are reported."""
    from krxflow.krx.tables import shared_hook

    shared_hook().close()
    while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()").fetchone()[0]:
        time.sleep(0.1)


def load_session(source, day) -> None:
    from krxflow.krx.report_catalog import REPORTS
    from krxflow.krx.report_loading import load_report

    for name in REPORTS:
        load_report(source, name, day)


def keep_sample_paths() -> None:
    """Keep every ticker's sample path in this process (~0.3 MB a ticker): the sample market computes
    a whole-market block of 64 sessions from each ticker's path and caches only 16 paths."""
    import functools

    from krxflow.sample import market

    if not hasattr(market.series, "cache_parameters") or market.series.cache_parameters()["maxsize"] is not None:
        market.series = functools.lru_cache(maxsize=None)(market.series.__wrapped__)


def load_month(tickers: int, days: list, window: dict) -> dict:
    """One calendar month of the sample market, in a worker process: the cold start's by-date load
    (prices, master, journal), then each report's rows of the month in one upsert per table."""
    import pandas as pd

    from krxflow.krx import cold_start
    from krxflow.krx.report_catalog import REPORTS
    from krxflow.krx.tables import for_hook, shared_hook
    from krxflow.sample.market import SampleSource

    logging.getLogger().setLevel(logging.WARNING)
    keep_sample_paths()
    source = SampleSource(tickers)
    started = time.perf_counter()
    cold_start.load_period(source, days, window=window, started=pd.Timestamp.now(tz="UTC").to_pydatetime())
    rows = 0
    for report in REPORTS.values():
        frames = [getattr(source, report.method)(report.day_for(day)) for day in days]
        frame = pd.concat([f for f in frames if not f.empty], ignore_index=True)
        if report.name == "indices":  # the index master: load_report on the window's first and last session
            frame = frame.drop(columns=["name", "index_group"])
        rows += shared_hook().upsert(report.table, for_hook(frame)).rows_in
    shared_hook().close()
    return {"month": f"{days[0]:%Y-%m}", "report_rows": rows, "seconds": time.perf_counter() - started}


def load_market(source, tickers: int, days: list, workers: int) -> None:
    """Every session of ``days`` into the bench database (see the module doc, step 1)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from krxflow.krx import cold_start
    from krxflow.krx.master import load_listing
    from krxflow.krx.report_loading import load_report

    window = cold_start.plan_window(days[0], days[-1])
    months: dict[str, list] = {}
    for day in days:
        months.setdefault(f"{day:%Y-%m}", []).append(day)
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(load_month, tickers, month, window) for month in months.values()]
        for done, future in enumerate(futures, 1):
            result = future.result()
            if done % 6 == 0 or done == len(futures):
                print(f"  {done}/{len(futures)} months loaded ({result['month']}: {result['report_rows']} report rows "
                      f"in {result['seconds']:.0f}s), {time.perf_counter() - started:.0f}s", flush=True)
    adjusted = cold_start.derive_adjusted()
    print(f"  adjusted: {adjusted}, {time.perf_counter() - started:.0f}s", flush=True)
    load_listing(source, days[-1])
    for day in (days[0], days[-1]):
        load_report(source, "indices", day)


def pivot_query() -> str:
    text = (ROOT / "docs" / "export.md").read_text()
    return re.search(r"<!-- query: pivot-year -->\s*```sql\n(.*?)```", text, re.S).group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=2700)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="processes loading the sample market")
    parser.add_argument("--keep", action="store_true", help="keep the database and the files")
    parser.add_argument("--load-only", action="store_true", help="load the market, keep the database, stop")
    parser.add_argument("--reuse-db", help="a copy of this database (from --load-only) instead of loading one")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    database = MARKET_DB
    if args.reuse_db:
        started = time.perf_counter()
        admin(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database), sql.Identifier(args.reuse_db)))
        print(f"{database}: a copy of {args.reuse_db} in {time.perf_counter() - started:.0f}s", flush=True)
    else:
        admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    out = Path(tempfile.mkdtemp(prefix="krxflow-bench-export-"))
    try:
        import duckdb

        from krxflow.calendar import trading_days
        from krxflow.db import migrations
        from krxflow.db.connection import connection
        from krxflow.export import destination, exporter
        from krxflow.export.datasets import DATASETS
        from krxflow.krx import cold_start
        from krxflow.krx.loading import history_window
        from krxflow.sample.market import SampleSource

        keep_sample_paths()
        source = SampleSource(args.tickers)
        first, last = history_window(args.years)
        days = trading_days(first, last)
        with connection() as conn:
            migrations.migrate(conn)
            if not args.reuse_db:
                started = time.perf_counter()
                load_market(source, args.tickers, days[:-1], args.workers)
                print(f"loaded {len(days) - 1} sessions into {database} in {time.perf_counter() - started:.0f}s",
                      flush=True)
                if args.load_only:
                    return
            settle(conn)
            target = destination.local(out)
            cpu = time.process_time()
            full = exporter.export(conn, target)
            print(full.summary(), flush=True)
            print(f"full: {full.rows_read / full.seconds:,.0f} rows/s, {time.process_time() - cpu:.0f}s CPU in this "
                  f"process; load average {os.getloadavg()[0]:.1f}", flush=True)
            cold_start.run(source, cold_start.plan_window(days[-1], days[-1]))
            load_session(source, days[-1])
            settle(conn)
            day = exporter.export(conn, target)
            print(day.summary(), flush=True)
            rows = sum(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(d.table))).fetchone()[0]
                       for d in DATASETS)
            pg_bytes = sum(conn.execute("SELECT pg_total_relation_size(c.oid) + coalesce((SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i WHERE i.inhparent = c.oid), 0) FROM pg_class c WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace", (d.table,)).fetchone()[0]
                           for d in DATASETS)
        parquet_bytes = sum(p.stat().st_size for p in out.rglob("*.parquet"))
        year = max(int(p.name.split("=")[1]) for p in (out / "daily_prices_adjusted").glob("year=*")
                   if any(p.rglob("*.parquet")))
        query = pivot_query().replace("year=2023", f"year={year - 1 if year - 1 >= first.year else year}")
        db = duckdb.connect()
        db.execute(f"SET file_search_path = '{out}'")
        timings = []
        for _ in range(3):
            t = time.perf_counter()
            wide = db.sql(query).df()  # as a researcher takes it: a DataFrame, not tuples of Decimals
            timings.append((time.perf_counter() - t) * 1000)
        print(f"pivot: {len(wide)} sessions × {len(wide.columns) - 1} tickers", flush=True)
    finally:
        if not args.keep and not args.load_only:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    print(f"export: years={args.years} tickers={args.tickers} rows={rows} parquet_mb={parquet_bytes / 1e6:.1f} "
          f"pg_mb={float(pg_bytes) / 1e6:.1f} full_s={full.seconds:.1f} day_s={day.seconds:.2f} "
          f"duckdb_q_ms={min(timings):.0f}")


if __name__ == "__main__":
    main()
