"""Bench: intraday KIS polling against the fake KIS server at 18 req/s, 200 tickers.

Starts the fake server as a process (``python -m krxflow.sample.kis_server --rate 18``) and polls it
the way ``kis_intraday``'s sensor does (:func:`tests.fakes.kis_session.run_session`): one
production polling trigger (:class:`krxflow.triggers.kis_poll.KisPollTrigger`, rebuilt from its
serialized form as the triggerer does) per window of ``--window-seconds``, each followed by the
production drain (:func:`krxflow.intraday.drain.drain`) through the batched hook into a throwaway
PostgreSQL database; then it prints the figures. Redis is the local server under a private key
prefix (cleaned up).

``--demo`` polls exactly what ``make run`` starts in sample mode
(:data:`krxflow.kis.session.DEMO_RUN`: 120 s, 20 tickers, 30-s windows) against a fake that quotes
the sample market. ``--stall S`` blocks the event loop for S seconds every 1.7 s, like a busy
triggerer on a loaded machine (what throttled the demo before the limiter gave up late slots).

Final line (exactly)::

    kis_poll: limit=18 achieved_rps=X share=Y throttled=N errors=E dedupe_hit_rate=H rows=R lost=L

``achieved_rps`` = KIS requests answered per second of polling; ``share`` = achieved_rps / limit;
``throttled`` = EGW00201 answers the server sent; ``errors`` = calls that failed for good;
``lost`` = quotes received − rows written − dedupe skips. Goals: share ≥ 0.9, throttled = 0, lost = 0.

Usage: ``.venv/bin/python bench/kis_poll.py [--seconds 60] [--tickers 200] [--rate 18] [--window-seconds 30]
[--stall 0] [--demo]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_DB = f"krxflow_bench_kis_{os.getpid()}_{uuid.uuid4().hex[:6]}"
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{BENCH_DB}"
os.environ.setdefault("AIRFLOW_CONN_REDIS_DEFAULT", "redis://127.0.0.1:6379/0")
os.environ["KRXFLOW_REDIS_PREFIX"] = f"krxflow-bench-{os.getpid()}:"
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow-home"))
os.environ.setdefault("KRXFLOW_SQL_DIR", str(ROOT / "include" / "sql"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from psycopg import sql  # noqa: E402

from bench.harness import admin, drop_redis_namespace, fake_stats, start_fake  # noqa: E402
from krxflow.kis.session import DEMO_RUN  # noqa: E402


def combine(payloads: list[dict]) -> dict:
    """The windows' event payloads added up (sweep_seconds averaged)."""
    total = {k: sum(p[k] for p in payloads) for k in ("requests", "successes", "retries", "errors", "call_errors",
                                                       "quotes_received", "books_received", "dedupe_hits",
                                                       "sweeps", "seconds", "tokens_issued", "late_slots")}
    total["sweep_seconds"] = sum(p["sweep_seconds"] for p in payloads) / len(payloads)
    total["windows"] = len(payloads)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--tickers", type=int, default=200)
    parser.add_argument("--rate", type=int, default=18)
    parser.add_argument("--window-seconds", type=float, default=DEMO_RUN["window_seconds"])
    parser.add_argument("--stall", type=float, default=0.0, help="block the loop this long every 1.7 s")
    parser.add_argument("--demo", action="store_true", help="the sample-mode demo run of `make run`")
    args = parser.parse_args()
    if args.demo:
        args.seconds, args.window_seconds = DEMO_RUN["demo_seconds"], DEMO_RUN["window_seconds"]

    from krxflow.sample.kis_server import connection_json

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    proc = None
    try:
        from krxflow.db import migrations
        from krxflow.db.connection import connection

        with connection() as conn:
            migrations.migrate(conn)
        proc, url = start_fake(args.rate, sample=args.demo)
        os.environ["AIRFLOW_CONN_KIS_DEFAULT"] = connection_json(url, rate=args.rate)
        if args.demo:
            from krxflow.sample.market import SampleMarket

            tickers = SampleMarket().tickers[:DEMO_RUN["watchlist_size"]]
        else:
            tickers = [f"{100000 + 37 * i:06d}" for i in range(args.tickers)]
        stream = f"bench:{uuid.uuid4().hex[:8]}"
        from krxflow.intraday.drain import discard_if_empty
        from tests.fakes.kis_session import run_session

        started = time.perf_counter()
        payload = combine(asyncio.run(run_session(tickers, stream, args.seconds, args.window_seconds,
                                                  stall=args.stall)))
        discard_if_empty(stream)
        server = fake_stats(url)
        with connection() as conn:
            warnings = conn.execute("SELECT count(*) FROM load_stats WHERE operation = 'kis_poll_window' "
                                    "AND status <> 'ok'").fetchone()[0]

        with connection() as conn:
            rows = sum(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                       for t in ("intraday_quotes", "order_books"))
        received = payload["quotes_received"] + payload["books_received"]
        lost = received - rows - payload["dedupe_hits"]
        achieved = payload["successes"] / payload["seconds"] if payload["seconds"] else 0.0
        share = achieved / args.rate
        errors = payload["errors"] + payload["call_errors"]
        hit_rate = payload["dedupe_hits"] / received if received else 0.0
        print(f"polled {len(tickers)} tickers for {payload['seconds']:.1f}s in {payload['windows']} windows of "
              f"{args.window_seconds:g}s (loop stalls {args.stall:g}s): {payload['requests']} requests, "
              f"{payload['successes']} answered, {payload['sweeps']} full sweeps of {payload['sweep_seconds']:.1f}s, "
              f"{payload['retries']} retries, {payload['tokens_issued']} token issued, "
              f"{payload['late_slots']} late limiter slots given up")
        print(f"server: {server.get('served', 0)} served, {server.get('throttled', 0)} EGW00201, busiest 1-s window "
              f"{server.get('max_in_window')} of {server.get('rate')}")
        print(f"received {received} (quotes {payload['quotes_received']}, books {payload['books_received']}), "
              f"dedupe skips {payload['dedupe_hits']}, {rows} rows written, whole run {time.perf_counter() - started:.1f}s, "
              f"load_stats windows with status other than ok: {warnings}")
        print(f"kis_poll: limit={args.rate} achieved_rps={achieved:.2f} share={share:.3f} "
              f"throttled={server.get('throttled', 0)} errors={errors} dedupe_hit_rate={hit_rate:.3f} rows={rows} "
              f"lost={lost}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        drop_redis_namespace()
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


if __name__ == "__main__":
    main()
