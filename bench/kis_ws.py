"""Bench: KIS realtime push end to end — fake WebSocket → trigger → Redis stream → drain → PostgreSQL.

Starts the fake KIS realtime server as a process (``python -m krxflow.sample.kis_ws_server``) pushing
``--rate`` records per second (up to ``--records-per-frame`` per frame, as KIS batches under load)
for 40 registrations (20 tickers' trades + 20 tickers' books, the default cap), runs the
production trigger (:class:`krxflow.triggers.kis_ws.KisStreamTrigger`, rebuilt from its serialized
form as the triggerer does) in this process for ``--seconds``, and the production live drain
(:func:`krxflow.intraday.drain.follow`) in a second process, as a task would, into a throwaway
PostgreSQL database. Halfway through, the fake closes the connection once (close frame 1001;
the trigger must reconnect and register everything again). The push pauses one second before
the window's end so that every record sent can be accounted for.

Final line (exactly)::

    kis_ws: registrations=40 messages=N msgs_per_s=X lost=0 duplicates=0 lag_p99_s=L reconnects=R peak_rss_mb=M

``messages`` = records the fake pushed; ``msgs_per_s`` = messages / seconds of pushing;
``lost`` = messages − distinct rows in ``trades`` + ``order_books``; ``duplicates`` = rows beyond
one per pushed record (trades by (ticker, cum_volume), books by (ticker, ts)); ``lag_p99_s`` =
99th percentile of (commit time − exchange time in the message) over every committed record, the
exchange time having KIS's one-second resolution; ``reconnects`` = reconnects of the trigger;
``peak_rss_mb`` = the largest peak RSS of the bench's processes (trigger, drain, fake server).
Goals: msgs_per_s ≥ 5000, lost = 0, duplicates = 0, lag_p99_s ≤ 2, reconnects ≥ 1, peak_rss_mb ≤ 500.

Usage: ``.venv/bin/python bench/kis_ws.py [--seconds 60] [--rate 6000] [--records-per-frame 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
SERVER = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_DB = f"krxflow_bench_ws_{os.getpid()}_{uuid.uuid4().hex[:6]}"
os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"] = f"{SERVER}/{BENCH_DB}"
os.environ.setdefault("AIRFLOW_CONN_REDIS_DEFAULT", "redis://127.0.0.1:6379/0")
os.environ["KRXFLOW_REDIS_PREFIX"] = f"krxflow-bench-ws-{os.getpid()}:"
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow-home"))
os.environ.setdefault("KRXFLOW_SQL_DIR", str(ROOT / "include" / "sql"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from psycopg import sql  # noqa: E402

from bench.harness import admin, drop_redis_namespace  # noqa: E402

DRAIN = """
    import json, resource, sys
    from krxflow import redis_client
    from krxflow.intraday.drain import follow

    from krxflow.hooks import BatchedPostgresHook

    stream, done_key, ready_key = sys.argv[1], sys.argv[2], sys.argv[3]
    client = redis_client.client()
    hook = BatchedPostgresHook(record_stats=False)
    hook.get_conn().close()  # resolve the Connection, as a running task already has
    client.set(ready_key, "1", ex=3600)
    result = follow(stream, hook=hook, until=lambda: bool(client.exists(done_key)), block_ms=100)
    print(json.dumps({"lag_p99": result.lag_percentile(0.99), "lag_p50": result.lag_percentile(0.5),
                      "records": len(result.lags), "trades": result.trades_written, "books": result.books_written,
                      "unparsed": result.unparsed, "rejected": result.rejected, "entries": result.entries,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def control(url: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def start_fake(rate: float, per_frame: int) -> tuple[subprocess.Popen, str, str]:
    from krxflow.sample.kis_server import free_port

    rest_port, ws_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "krxflow.sample.kis_ws_server", "--rest-port", str(rest_port),
                             "--ws-port", str(ws_port), "--records-rate", str(rate), "--records-per-frame", str(per_frame)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{rest_port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            control(url, "/_fake_ws/stats")
            return proc, url, f"ws://127.0.0.1:{ws_port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake KIS realtime server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)


async def stream(trades: list[str], books: list[str], seconds: float, name: str, url: str) -> dict:
    from krxflow.triggers.kis_ws import KisStreamTrigger

    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    _, kwargs = KisStreamTrigger(trade_tickers=trades, book_tickers=books, stream=name, window=1,
                                 window_end=end.isoformat(), stats_seconds=10.0).serialize()
    trigger = KisStreamTrigger(**kwargs)
    loop = asyncio.get_running_loop()
    # halfway: the server closes the connection once; a second before the end: the push pauses
    loop.call_later(seconds / 2, lambda: loop.run_in_executor(None, control, url, "/_fake_ws/drop", {"abrupt": False}))
    loop.call_later(seconds - 1.0, lambda: loop.run_in_executor(None, control, url, "/_fake_ws/config", {"rate": 0}))
    async for event in trigger.run():
        return event.payload
    raise RuntimeError("the trigger fired no event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=6000, help="records pushed per second")
    parser.add_argument("--records-per-frame", type=int, default=5)
    parser.add_argument("--registrations", type=int, default=40)
    args = parser.parse_args()

    from krxflow.sample.kis_server import connection_json

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    fake = drainer = None
    try:
        from krxflow import redis_client
        from krxflow.db import migrations
        from krxflow.db.connection import connection

        with connection() as conn:
            migrations.migrate(conn)
        fake, url, ws_url = start_fake(args.rate, args.records_per_frame)
        os.environ["AIRFLOW_CONN_KIS_DEFAULT"] = connection_json(url, ws_url=ws_url)
        half = args.registrations // 2
        tickers = [f"{100000 + 37 * i:06d}" for i in range(args.registrations - half)]
        name = f"bench-ws:{uuid.uuid4().hex[:8]}"
        done_key = redis_client.key("bench", "done", name)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        ready_key = redis_client.key("bench", "ready", name)
        drainer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRAIN), name, done_key, ready_key],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = redis_client.client()
        deadline = time.monotonic() + 120
        while not client.exists(ready_key):  # the drain task is up before the session opens, as in a DAG run
            if drainer.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the drain did not start: {drainer.stderr.read()[-3000:]}")
            time.sleep(0.1)

        payload = asyncio.run(stream(tickers, tickers[:half], args.seconds, name, url))
        client.set(done_key, "1", ex=3600)
        out, err = drainer.communicate(timeout=600)
        if drainer.returncode != 0:
            raise RuntimeError(f"drain failed: {err[-3000:]}")
        drained = json.loads(out.strip().splitlines()[-1])
        server = control(url, "/_fake_ws/stats")
        fake.terminate()
        fake.wait(10)

        with connection() as conn:
            trades, distinct_trades = conn.execute(
                "SELECT count(*), count(DISTINCT (ticker, cum_volume)) FROM trades").fetchone()
            books, distinct_books = conn.execute(
                "SELECT count(*), count(DISTINCT (ticker, ts)) FROM order_books").fetchone()
            raw = conn.execute("SELECT count(*) FROM market_data WHERE source = 'kis_ws'").fetchone()[0]
        messages = int(server.get("records_sent", 0))
        lost = messages - distinct_trades - distinct_books - raw
        duplicates = (trades - distinct_trades) + (books - distinct_books)
        push_seconds = args.seconds - 1.0
        rate = messages / push_seconds
        rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        print(f"fake: {messages} records in {server.get('frames_sent', 0)} frames ({server.get('trades_sent', 0)} "
              f"trades, {server.get('books_sent', 0)} books), {server.get('connections', 0)} connections, "
              f"{server.get('subscribed', 0)} registrations accepted, {server.get('pongs_received', 0)} pongs")
        print(f"trigger: {payload['messages']} records received in {payload['frames']} frames, "
              f"{payload['entries']} stream entries, {payload['reconnects']} reconnects, "
              f"{payload['registered']}/{payload['registrations']} registered, unparsed {payload['unparsed']}, "
              f"redis errors {payload['redis_errors']}, status {payload['status']}")
        print(f"drain: {drained['trades']} trades + {drained['books']} books written from {drained['entries']} "
              f"entries, rejected {drained['rejected']}, lag p50 {drained['lag_p50']:.3f}s p99 "
              f"{drained['lag_p99']:.3f}s, drain peak RSS {drained['rss_mb']:.0f} MB")
        print(f"kis_ws: registrations={payload['registrations']} messages={messages} msgs_per_s={rate:.0f} "
              f"lost={lost} duplicates={duplicates} lag_p99_s={drained['lag_p99']:.2f} "
              f"reconnects={payload['reconnects']} peak_rss_mb={rss:.0f}")
    finally:
        for proc in (fake, drainer):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        drop_redis_namespace()
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


if __name__ == "__main__":
    main()
