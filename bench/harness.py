"""What the benches share: throwaway databases, Redis cleanup, the fake KIS gateway as a process.

Import after the bench has set its environment (``KRXFLOW_REDIS_PREFIX`` …): nothing here reads it
at import time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def admin(statement) -> None:
    """Run ``statement`` (CREATE/DROP DATABASE …) on the bench server's ``postgres`` database."""
    import psycopg

    server = os.environ.get("KRXFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def fake_stats(url: str) -> dict:
    """The fake gateway's counters (``GET /_fake/stats``)."""
    with urllib.request.urlopen(url + "/_fake/stats", timeout=5) as resp:
        return json.loads(resp.read())


def start_fake(rate: int, sample: bool = False) -> tuple[subprocess.Popen, str]:
    """``python -m krxflow.sample.kis_server`` on a free loopback port; returns (process, base URL) once it answers."""
    from krxflow.sample.kis_server import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "krxflow.sample.kis_server", "--host", "127.0.0.1", "--port", str(port),
                             "--rate", str(rate), *(["--sample"] if sample else [])],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # --sample loads the sample market's calendar first
    while True:
        try:
            fake_stats(url)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake KIS server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)


def drop_redis_namespace() -> None:
    """Delete every Redis key under the bench's prefix (reporting, never raising: the result matters more)."""
    try:
        from krxflow import redis_client

        client = redis_client.client()
        for key in client.scan_iter(match=redis_client.prefix() + "*", count=1000):
            client.delete(key)
    except Exception as exc:
        print(f"could not clean Redis keys: {exc}", file=sys.stderr)
