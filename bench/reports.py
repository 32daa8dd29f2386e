"""The other daily KRX reports (issue 17): KRX requests, rows and krxflow's own seconds per session.

1. ``requests_per_session``: the pykrx source, logged in through the ``krx_default`` Connection,
   loads every report of ``--wire-sessions`` sessions (default 3) through the offline KRX replay;
   the figure is what the replay really received (the login included) divided by the sessions —
   not a computation from the catalog.
2. ``rows_per_session`` and ``seconds_per_session``: the sample source (``--tickers``, default
   2,700, no added latency) loads every report of ``--sessions`` consecutive sessions (default 5)
   into a throwaway database through ``BatchedPostgresHook`` and runs each report's quality check,
   as the DAG's tasks do; the seconds are the wall time of those loads and checks (the sample
   market's price blocks are computed beforehand, while daily_prices is loaded for the checks).
   Per report, the seconds and rows are printed too.

    python bench/reports.py [--tickers 2700] [--sessions 5] [--wire-sessions 3] [--first 2024-03-04] [--keep]

Goals: requests_per_session ≤ 25 (all reports together), seconds_per_session ≤ 10.
Last line (the form progress is measured by):
    reports: sessions=N requests_per_session=R rows_per_session=W seconds_per_session=S
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
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
    "KRXFLOW_REDIS_PREFIX": f"krxflow-bench-{TOKEN}:",
    "KRXFLOW_SQL_DIR": str(ROOT / "include" / "sql"),
    "MPLCONFIGDIR": tempfile.mkdtemp(prefix="krxflow-bench-mpl-"),
})
for leaked in ("KRX_ID", "KRX_PW"):
    os.environ.pop(leaked, None)

import logging  # noqa: E402

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def sessions_from(first: dt.date, count: int) -> list[dt.date]:
    from krxflow.calendar import is_trading_day, next_trading_day

    day = first if is_trading_day(first) else next_trading_day(first)
    days = [day]
    while len(days) < count:
        days.append(next_trading_day(days[-1]))
    return days


def wire(days: list[dt.date]) -> float:
    """KRX requests per session (login included) that the replay received for every report."""
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.krx.source import PykrxSource
    from krxflow.krx.report_catalog import REPORTS
    from krxflow.sample.market import SampleMarket
    from tests.fakes.krx_replay import KrxReplay

    os.environ["AIRFLOW_CONN_KRX_DEFAULT"] = "generic://bench-user:bench-secret@"
    reset_pykrx_state()
    try:
        with KrxReplay(SampleMarket(60), require_login=True) as replay:
            source = PykrxSource(min_interval=0)
            for day in days:
                for report in REPORTS.values():
                    getattr(source, report.method)(report.day_for(day))
        print(f"  KRX received {dict(replay.received)} for {len(days)} sessions")
        return replay.total / len(days)
    finally:
        os.environ.pop("AIRFLOW_CONN_KRX_DEFAULT", None)
        reset_pykrx_state()


def load(days: list[dt.date], tickers: int) -> tuple[float, float]:
    """Rows and seconds per session of loading and checking every report from the sample source."""
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.master import load_listing
    from krxflow.krx.report_catalog import REPORTS
    from krxflow.krx.report_loading import check_report_quality, load_report
    from krxflow.sample.market import SampleSource

    source = SampleSource(tickers)
    needed = sorted({r.day_for(d) for d in days for r in REPORTS.values()} | set(days))
    load_listing(source, needed[-1], include_delisted=False)
    for day in needed:  # the checks compare with daily_prices; this also computes the sample's price blocks
        load_daily_prices(source, day)
    per_report: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    rows = 0
    warnings = []
    started = time.perf_counter()
    for day in days:
        for name in REPORTS:
            t = time.perf_counter()
            result = load_report(source, name, day)
            check = check_report_quality(name, day)
            per_report[name][0] += time.perf_counter() - t
            per_report[name][1] += result["rows_in"]
            rows += result["rows_in"]
            if check["status"] != "ok":
                warnings.append((name, day.isoformat(), check["problems"]))
    seconds = time.perf_counter() - started
    for name, (secs, count) in per_report.items():
        print(f"  {name:<18} {secs / len(days):6.3f} s/session {count / len(days):9.0f} rows/session")
    if warnings:
        print(f"  quality warnings: {warnings[:5]}")
    return rows / len(days), seconds / len(days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=2700)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--wire-sessions", type=int, default=3)
    parser.add_argument("--first", default="2024-03-04")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(MARKET_DB)))
    try:
        from krxflow.db import migrations
        from krxflow.db.connection import connection

        with connection() as conn:
            migrations.migrate(conn)
        first = dt.date.fromisoformat(args.first)
        requests = wire(sessions_from(first, args.wire_sessions))
        rows, seconds = load(sessions_from(first, args.sessions), args.tickers)
    finally:
        if not args.keep:
            admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(MARKET_DB)))
    print(f"reports: sessions={args.sessions} requests_per_session={requests:.1f} rows_per_session={rows:.0f} "
          f"seconds_per_session={seconds:.2f}")


if __name__ == "__main__":
    main()
