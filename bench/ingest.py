"""Write speed of BatchedPostgresHook against the provider's insert_rows and a raw COPY.

One run, one synthetic data set (N daily rows over ~72 monthly partitions of ``daily_prices``),
four ways of writing it, each into the same table in a throwaway database:

  (a) hook_fresh   — BatchedPostgresHook.upsert into empty partitions (its straight-COPY fast path)
  (b) hook_upsert  — BatchedPostgresHook.upsert of the same rows again (staged upsert, nothing changes)
  (c) insert_rows  — the provider's PostgresHook.insert_rows(replace=True) of the same rows again
  (d) raw_copy     — psycopg 3 ``COPY … FROM STDIN`` with write_row into the empty table

Figures are ratios within this run, so a noisy machine moves them less than absolute rows/s.

    python bench/ingest.py [--rows 1000000] [--skip-insert-rows]

Last line (the form progress is measured by):
    ingest: rows=N hook_fresh_vs_copy=X.XX hook_upsert_vs_copy=X.XX hook_upsert_vs_insert_rows=X.XX peak_rss_mb=N
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_DB = f"krxflow_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{BENCH_DB}"
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow-home"))
os.environ.setdefault("KRXFLOW_SQL_DIR", str(ROOT / "include" / "sql"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

COLUMNS = ["ticker", "trade_date", "open", "high", "low", "close", "volume", "trading_value", "change_rate",
           "market_cap", "listed_shares"]


def synthetic_daily_rows(rows: int, seed: int = 7) -> pd.DataFrame:
    """``rows`` realistic daily rows: weekdays of 2019–2024 (72 months) × as many tickers as needed."""
    days = pd.bdate_range("2019-01-01", "2024-12-31")
    tickers = -(-rows // len(days))
    rng = np.random.default_rng(seed)
    ticker_codes = np.array([f"{100000 + i * 7:06d}" for i in range(tickers)])
    frame = pd.DataFrame({
        "ticker": np.repeat(ticker_codes, len(days))[:rows],
        "trade_date": np.tile(days.values, tickers)[:rows],
    })
    close = rng.integers(1_000, 500_000, rows)
    spread = (close * rng.uniform(0.0, 0.05, rows)).astype(np.int64)
    frame["open"] = close - spread // 2
    frame["high"] = close + spread
    frame["low"] = close - spread
    frame["close"] = close
    frame["volume"] = rng.integers(0, 50_000_000, rows)
    frame["trading_value"] = frame["volume"] * close
    frame["change_rate"] = np.round(rng.normal(0, 2.5, rows), 2)
    frame["listed_shares"] = rng.integers(1_000_000, 6_000_000_000, rows)
    frame["market_cap"] = frame["listed_shares"] * close
    return frame


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def truncate(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE daily_prices")
    conn.execute("VACUUM ANALYZE daily_prices")


def timed(label: str, rows: int, action) -> float:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"{label:12} {rows:>9} rows in {seconds:7.2f}s = {rows / seconds:>10,.0f} rows/s "
          f"(peak rss so far {peak_rss_mb()} MB)", flush=True)
    return rows / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=None, help="hook batch size (default: the hook's)")
    args = parser.parse_args()

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    try:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from krxflow.db import migrations, partitions
        from krxflow.db.connection import connection
        from krxflow.hooks import BatchedPostgresHook

        print(f"baseline: peak rss {peak_rss_mb()} MB after imports", flush=True)
        frame = synthetic_daily_rows(args.rows)
        n = len(frame)
        print(f"data: {n} rows, {frame['ticker'].nunique()} tickers, "
              f"{frame['trade_date'].min():%Y-%m-%d} .. {frame['trade_date'].max():%Y-%m-%d}", flush=True)
        with connection() as conn:
            migrations.migrate(conn)
            created = partitions.ensure_partitions(conn, "daily_prices", frame["trade_date"].min().date(),
                                                   frame["trade_date"].max().date())
            print(f"partitions: {len(created)} monthly partitions of daily_prices", flush=True)

            def raw_copy():
                with conn.cursor() as cur, conn.transaction():
                    with cur.copy(sql.SQL("COPY daily_prices ({}) FROM STDIN").format(
                            sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))) as copy:
                        for row in frame.itertuples(index=False, name=None):
                            copy.write_row(row)

            copy_rps = timed("raw_copy", n, raw_copy)
            truncate(conn)

            hook = BatchedPostgresHook(**({"batch_size": args.batch_size} if args.batch_size else {}))
            results = {}
            fresh_rps = timed("hook_fresh", n, lambda: results.setdefault("fresh", hook.upsert("daily_prices", frame)))
            upsert_rps = timed("hook_upsert", n, lambda: results.setdefault("upsert", hook.upsert("daily_prices", frame)))
            for name, result in results.items():
                print(f"  {name}: {result.summary()}", flush=True)
            assert results["fresh"].fast_path and results["fresh"].inserted == n, "fresh load did not take the fast path"
            assert results["upsert"].unchanged == n, "re-upsert of identical rows changed something"

            provider = PostgresHook()
            insert_rows_rps = timed("insert_rows", n, lambda: provider.insert_rows(
                "public.daily_prices", frame.itertuples(index=False, name=None), target_fields=COLUMNS,
                commit_every=5_000, replace=True, replace_index=["ticker", "trade_date"]))
            count = conn.execute("SELECT count(*) FROM daily_prices").fetchone()[0]
            assert count == n, f"expected {n} rows after all methods, found {count}"

        print(f"ingest: rows={n} hook_fresh_vs_copy={fresh_rps / copy_rps:.2f} "
              f"hook_upsert_vs_copy={upsert_rps / copy_rps:.2f} "
              f"hook_upsert_vs_insert_rows={upsert_rps / insert_rows_rps:.2f} peak_rss_mb={peak_rss_mb()}")
        return 0
    finally:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


if __name__ == "__main__":
    sys.exit(main())
