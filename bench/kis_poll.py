"""Bench: intraday KIS polling against the fake KIS server at 18 req/s, 200 tickers.

Starts the fake server as a process (``python -m tests.fakes.kis_server --rate 18``), runs the
production polling trigger (:class:`krxflow.triggers.kis_poll.KisPollTrigger`, rebuilt from its
serialized form as the triggerer does) for ``--seconds``, then the production drain
(:func:`krxflow.kis.drain.drain`) through the batched hook into a throwaway PostgreSQL database,
and prints the figures. Redis is the local server under a private key prefix (cleaned up).

Final line (exactly)::

    kis_poll: limit=18 achieved_rps=X share=Y throttled=N errors=E dedupe_hit_rate=H rows=R lost=L

``achieved_rps`` = KIS requests answered per second of polling; ``share`` = achieved_rps / limit;
``throttled`` = EGW00201 answers the server sent; ``errors`` = calls that failed for good;
``lost`` = quotes received − rows written − dedupe skips. Goals: share ≥ 0.9, throttled = 0, lost = 0.

Usage: ``.venv/bin/python bench/kis_poll.py [--seconds 60] [--tickers 200] [--rate 18]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_DB = f"krxflow_bench_kis_{os.getpid()}_{uuid.uuid4().hex[:6]}"
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{BENCH_DB}"
os.environ.setdefault("AIRFLOW_CONN_REDIS_DEFAULT", "redis://127.0.0.1:6379/0")
os.environ["KRXFLOW_REDIS_PREFIX"] = f"krxflow-bench-{os.getpid()}:"
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow-home"))
os.environ.setdefault("KRXFLOW_SQL_DIR", str(ROOT / "include" / "sql"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def start_fake(rate: int) -> tuple[subprocess.Popen, str]:
    from tests.fakes.kis_server import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.kis_server", "--host", "127.0.0.1", "--port", str(port),
                             "--rate", str(rate)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/_fake/stats", timeout=1) as resp:
                resp.read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake KIS server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)


def fake_stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/_fake/stats", timeout=5) as resp:
        return json.loads(resp.read())


async def poll(tickers: list[str], seconds: float, stream: str) -> dict:
    from krxflow.triggers.kis_poll import KisPollTrigger

    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    classpath, kwargs = KisPollTrigger(tickers=tickers, stream=stream, window=1, window_end=end.isoformat()).serialize()
    trigger = KisPollTrigger(**kwargs)
    async for event in trigger.run():
        return event.payload
    raise RuntimeError("the trigger fired no event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--tickers", type=int, default=200)
    parser.add_argument("--rate", type=int, default=18)
    args = parser.parse_args()

    from tests.fakes.kis_server import connection_json

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    proc = None
    try:
        from krxflow.db import migrations
        from krxflow.db.connection import connection

        with connection() as conn:
            migrations.migrate(conn)
        proc, url = start_fake(args.rate)
        os.environ["AIRFLOW_CONN_KIS_DEFAULT"] = connection_json(url, rate=args.rate)
        tickers = [f"{100000 + 37 * i:06d}" for i in range(args.tickers)]
        stream = f"bench:{uuid.uuid4().hex[:8]}"

        payload = asyncio.run(poll(tickers, args.seconds, stream))
        started = time.perf_counter()
        from krxflow.kis.drain import discard_if_empty, drain

        result = drain(stream)
        drain_seconds = time.perf_counter() - started
        discard_if_empty(stream)
        server = fake_stats(url)

        with connection() as conn:
            rows = sum(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                       for t in ("intraday_quotes", "order_books"))
        received = payload["quotes_received"] + payload["books_received"]
        lost = received - rows - payload["dedupe_hits"]
        achieved = payload["successes"] / payload["seconds"] if payload["seconds"] else 0.0
        share = achieved / args.rate
        errors = payload["errors"] + payload["call_errors"]
        hit_rate = payload["dedupe_hits"] / received if received else 0.0
        print(f"polled {len(tickers)} tickers for {payload['seconds']:.1f}s: {payload['requests']} requests, "
              f"{payload['successes']} answered, {payload['sweeps']} full sweeps of {payload['sweep_seconds']:.1f}s, "
              f"{payload['retries']} retries, {payload['tokens_issued']} token issued")
        print(f"server: {server.get('served', 0)} served, {server.get('throttled', 0)} EGW00201, busiest 1-s window "
              f"{server.get('max_in_window')} of {server.get('rate')}")
        print(f"received {received} (quotes {payload['quotes_received']}, books {payload['books_received']}), "
              f"dedupe skips {payload['dedupe_hits']}, drained {result.entries} entries → {result.rows_written} rows "
              f"in {drain_seconds:.2f}s, rejected {result.rejected}")
        print(f"kis_poll: limit={args.rate} achieved_rps={achieved:.2f} share={share:.3f} "
              f"throttled={server.get('throttled', 0)} errors={errors} dedupe_hit_rate={hit_rate:.3f} rows={rows} "
              f"lost={lost}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        try:
            from krxflow import cache

            client = cache.client()
            for key in client.scan_iter(match=cache.prefix() + "*", count=1000):
                client.delete(key)
        except Exception as exc:  # never hide the result behind cleanup
            print(f"could not clean Redis keys: {exc}", file=sys.stderr)
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


if __name__ == "__main__":
    main()
