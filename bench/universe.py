"""The universe (issue 27): KRX requests for 5 years and per session, seconds per session, point-in-time queries.

Everything through the pykrx source, logged in through the ``krx_default`` Connection, against the
offline KRX replay of the sample market (``--tickers``, default 2,700), into a throwaway database
through ``BatchedPostgresHook``; requests are what the replay received (logins included):

1. ``backfill_universe`` from ``--first`` (default 5 years before ``--last``) up to ``--daily``
   sessions before ``--last`` (default 10): the low-cadence backfill;
2. ``load_universe`` for each of those last sessions, as the daily DAG runs it, each with a fresh
   login (KRX's session lasts an hour: a new day logs in again). ``requests_per_session`` is the
   median of what the replay received per such session, ``seconds_per_session`` their mean wall
   time (the sample market's answers are computed beforehand, so the figure is krxflow's);
3. ``requests_5y`` = 1 + 2 together; ``pit_query_ms`` = the p95 over 100 random sessions of the
   KOSPI 200's members and their industries (``universe_on('1028', d)`` with ``industry_on``).

    python bench/universe.py [--tickers 2700] [--last 2025-12-30] [--years 5] [--daily 10] [--keep]

Goals: requests_per_session ≤ 8 (login included), requests_5y ≤ 2500, seconds_per_session ≤ 5,
pit_query_ms ≤ 50. Last line:
    universe: sessions=S requests_per_session=R requests_5y=Q members_rows=M industries=I etfs=E seconds_per_session=T pit_query_ms=P
``etfs`` = the ETFs/ETNs in ``krx_etps`` after the daily sessions, each of which also loads every
ETF and ETN of the day (``load_etps``: 2 requests, through the same login) as the daily KRX load
does; its requests are in ``requests_per_session`` and printed apart per session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
TOKEN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
MARKET_DB = f"krxflow_bench_{TOKEN}"

os.environ.update({
    "AIRFLOW_HOME": tempfile.mkdtemp(prefix="krxflow-bench-airflow-"),
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "AIRFLOW_CONN_POSTGRES_DEFAULT": f"{SERVER}/{MARKET_DB}",
    "AIRFLOW_CONN_REDIS_DEFAULT": os.environ.get("KRXFLOW_BENCH_REDIS", "redis://127.0.0.1:6379/0"),
    "AIRFLOW_CONN_KRX_DEFAULT": "generic://bench-user:bench-secret@",
    "KRXFLOW_REDIS_PREFIX": f"krxflow-bench-{TOKEN}:",
    "KRXFLOW_SQL_DIR": str(ROOT / "include" / "sql"),
    "MPLCONFIGDIR": tempfile.mkdtemp(prefix="krxflow-bench-mpl-"),
})
for leaked in ("KRX_ID", "KRX_PW"):
    os.environ.pop(leaked, None)

import logging  # noqa: E402

from psycopg import sql  # noqa: E402

from bench.harness import admin, drop_redis_namespace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=2700)
    parser.add_argument("--last", default="2025-12-30")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--daily", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(MARKET_DB)))
    try:
        from krxflow.calendar import trading_days
        from krxflow.db import migrations
        from krxflow.db.connection import connection
        from krxflow.krx.login import session_key
        from krxflow.krx.etps import load_etps
        from krxflow.krx.pykrx_session import reset_pykrx_state
        from krxflow.krx.source import PykrxSource
        from krxflow.krx.universe import backfill_universe, load_universe
        from krxflow.sample.market import SampleMarket
        from krxflow.sample.market_etps import day_frame
        from krxflow.sample.market_universe import index_members, industries
        from tests.fakes.krx_replay import KrxReplay

        with connection() as conn:
            migrations.migrate(conn)
        last = dt.date.fromisoformat(args.last)
        days = trading_days(last.replace(year=last.year - args.years) + dt.timedelta(days=1), last)
        backfilled, daily = days[:-args.daily], days[-args.daily:]
        market = SampleMarket(args.tickers)
        reset_pykrx_state()
        with KrxReplay(market, require_login=True) as replay:
            source = PykrxSource(min_interval=0)
            started = time.perf_counter()
            result = backfill_universe(source, backfilled[0], backfilled[-1])
            print(f"  backfill {backfilled[0]}..{backfilled[-1]}: {result['requests']} requests, "
                  f"{result['checkpoints']} checkpoints, {time.perf_counter() - started:.0f} s (sample answers included)")
            for day in daily:  # the replay's answers of the daily sessions, computed before the clock runs
                industries(market, day)
                for code in ("1028", "2203", "5300"):
                    index_members(market, code, day)
                for kind in ("ETF", "ETN"):
                    day_frame(market, kind, day)
            per_session, seconds = [], []
            for day in daily:
                replay.expire_sessions()
                source.pacers["krx"].redis.delete(session_key())
                before, t = replay.total, time.perf_counter()
                done = load_universe(source, day)
                etps = load_etps(source, day)
                seconds.append(time.perf_counter() - t)
                per_session.append(replay.total - before)
                print(f"  {day}: {per_session[-1]} requests ({etps['requests']} of them ETF/ETN), {seconds[-1]:.2f} s, "
                      f"indices {done['indices_checked']}")
            requests_5y = replay.total
            print(f"  KRX received {dict(replay.received)}")
        with connection() as conn:
            members = conn.execute("SELECT count(*) FROM krx_index_members").fetchone()[0]
            kinds = conn.execute("SELECT count(DISTINCT (market, industry)) FROM krx_industry_history").fetchone()[0]
            etfs = conn.execute("SELECT count(*) FROM krx_etps").fetchone()[0]
            timings = []
            for day in random.Random(27).sample(days, 100):
                t = time.perf_counter()
                rows = conn.execute("SELECT u.ticker, industry_on(u.ticker, %s) FROM universe_on('1028', %s) u",
                                    (day, day)).fetchall()
                timings.append((time.perf_counter() - t) * 1000)
                assert rows, day
            pit = statistics.quantiles(timings, n=20)[-1]
    finally:
        reset_pykrx_state()
        drop_redis_namespace()
        if not args.keep:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(MARKET_DB)))
    print(f"universe: sessions={len(days)} requests_per_session={statistics.median(per_session):.0f} "
          f"requests_5y={requests_5y} members_rows={members} industries={kinds} etfs={etfs} "
          f"seconds_per_session={statistics.mean(seconds):.2f} pit_query_ms={pit:.1f}")


if __name__ == "__main__":
    main()
