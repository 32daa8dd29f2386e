"""Bench: one day's 1-minute bars of the whole sample market (2,700 tickers) at the appkey's rate.

Starts the fake KIS gateway as a process (``python -m krxflow.sample.kis_server --rate 18``) and runs
the production fetch (:func:`krxflow.intraday.minute_bars.load_day`: ``KisClient`` with the shared
token and the Redis rate limiter, pagination, ``BatchedPostgresHook.upsert`` into ``minute_bars``)
for the sample market's tickers and one past session (``FHKST03010230``, 120 bars a call; or
``--today``: ``FHKST03010200``, 30 a call) into a throwaway PostgreSQL database.

Final line (exactly)::

    minute_bars: tickers=T requests=Q seconds=S share=X throttled=0

``requests`` = chart calls the fake answered; ``seconds`` = the fetch's wall time (first call →
last row committed); ``share`` = requests / seconds / rate; ``throttled`` = EGW00201 answers the
fake sent. Goals: share ≥ 0.9, throttled = 0, every bar of every ticker in ``minute_bars``.

Usage: ``.venv/bin/python bench/minute_bars.py [--tickers 2700] [--rate 18] [--today]``
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_DB = f"krxflow_bench_bars_{os.getpid()}_{uuid.uuid4().hex[:6]}"
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{BENCH_DB}"
os.environ.setdefault("AIRFLOW_CONN_REDIS_DEFAULT", "redis://127.0.0.1:6379/0")
os.environ["KRXFLOW_REDIS_PREFIX"] = f"krxflow-bench-bars-{os.getpid()}:"
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow-home"))
os.environ.setdefault("KRXFLOW_SQL_DIR", str(ROOT / "include" / "sql"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from psycopg import sql  # noqa: E402

from bench.harness import admin, drop_redis_namespace, fake_stats, start_fake  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=2700)
    parser.add_argument("--rate", type=int, default=18)
    parser.add_argument("--today", action="store_true", help="today's TR (30 bars a call) instead of a past day")
    args = parser.parse_args()

    from krxflow.calendar import previous_trading_day
    from krxflow.market_time import kst_today
    from krxflow.sample.market import SampleMarket
    from krxflow.sample.kis_server import connection_json

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    fake = None
    try:
        from krxflow.db import migrations
        from krxflow.db.connection import connection
        from krxflow.intraday import minute_bars

        with connection() as conn:
            migrations.migrate(conn)
        fake, url = start_fake(args.rate)
        os.environ["AIRFLOW_CONN_KIS_DEFAULT"] = connection_json(url, rate=args.rate)
        tickers = SampleMarket(args.tickers).tickers
        day = kst_today() if args.today else previous_trading_day(kst_today())
        result = minute_bars.load_day(tickers, day, today=args.today)
        server = fake_stats(url)
        with connection() as conn:
            rows, distinct = conn.execute("SELECT count(*), count(DISTINCT (ticker, minute)) FROM minute_bars").fetchone()
        requests = int(server.get("served", 0))
        share = requests / result.seconds / args.rate
        print(f"fetch: {result.as_dict()}")
        print(f"database: {rows} rows ({distinct} distinct), fake max in one window {server.get('max_in_window')}, "
              f"load {os.getloadavg()[0]:.1f}")
        print(f"minute_bars: tickers={len(tickers)} requests={requests} seconds={result.seconds:.1f} share={share:.3f} "
              f"throttled={int(server.get('throttled', 0))}")
    finally:
        if fake is not None and fake.poll() is None:
            fake.terminate()
            fake.wait(10)
        drop_redis_namespace()
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


if __name__ == "__main__":
    main()
