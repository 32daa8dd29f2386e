"""krx_export (issue 31): a full export of the sample market, one new session, and a DuckDB query on the files.

1. A throwaway database; the sample market (``--tickers``, ``--years``) loaded through the cold
   start's functions (prices, master, factors, adjusted series: ``krxflow.krx.cold_start.run``),
   every report of every session but the last through ``load_report``. Not timed.
2. ``full_s``: the first export of everything to a fresh folder (statistics settled first).
3. ``day_s``: the last session loaded (prices and every report), then the incremental export.
4. ``parquet_mb`` (the files) against ``pg_mb``: the exported tables' size in PostgreSQL, indexes included.
5. ``duckdb_q_ms``: the pivot of docs/export.md (a year of adjusted closes for the whole market),
   best of 3, from the files.

    python bench/export.py [--tickers 2700] [--years 5] [--keep]

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
TOKEN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
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


def pivot_query() -> str:
    text = (ROOT / "docs" / "export.md").read_text()
    return re.search(r"<!-- query: pivot-year -->\s*```sql\n(.*?)```", text, re.S).group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=2700)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database and the files")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(MARKET_DB)))
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

        source = SampleSource(args.tickers)
        first, last = history_window(args.years)
        days = trading_days(first, last)
        with connection() as conn:
            migrations.migrate(conn)
            started = time.perf_counter()
            cold_start.run(source, cold_start.plan_window(first, days[-2]))
            for day in days[:-1]:
                load_session(source, day)
            settle(conn)
            print(f"loaded {len(days) - 1} sessions in {time.perf_counter() - started:.0f}s", flush=True)
            target = destination.local(out)
            full = exporter.export(conn, target)
            print(full.summary(), flush=True)
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
            shape = db.execute(query).fetchall()
            timings.append((time.perf_counter() - t) * 1000)
        print(f"pivot: {len(shape)} sessions × {len(shape[0]) - 1 if shape else 0} tickers", flush=True)
    finally:
        if not args.keep:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(MARKET_DB)))
            shutil.rmtree(out, ignore_errors=True)
    print(f"export: years={args.years} tickers={args.tickers} rows={rows} parquet_mb={parquet_bytes / 1e6:.1f} "
          f"pg_mb={float(pg_bytes) / 1e6:.1f} full_s={full.seconds:.1f} day_s={day.seconds:.2f} "
          f"duckdb_q_ms={min(timings):.0f}")


if __name__ == "__main__":
    main()
