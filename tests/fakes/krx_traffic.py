"""KRX traffic from several worker processes against one offline KRX, for tests and the bench.

Airflow runs each task in its own process; what KRX sees is the sum of them. Each worker here is
a separate Python process that joins the parent's :class:`~tests.fakes.krx_replay.KrxReplay`
through its ``wire_id`` (the replay's state is in Redis), builds its own
:class:`~krxflow.krx.source.PykrxSource` and runs its jobs one after another, as a
worker runs task after task. A job is a list:

* ``["day", "2024-01-03"]`` — the all-market prices of one session (``daily_prices``);
* ``["history", "005930", "2019-01-02", "2024-01-03"]`` — a ticker's raw KRX history (pykrx
  splits ranges over 730 days into several requests, with its own one-second sleep);
* ``["adjusted", "005930", "2019-01-02", "2024-01-03"]`` — the adjusted series from Naver.

A worker prints one JSON line: each job's outcome, ``"ok <rows>"`` or the error's class name.
Jobs that fail do not stop the worker (the next task still runs), so what is sent *after* a
failure is on the wire too.

    python -m tests.fakes.krx_traffic --wire-id ID --tickers 40 [--require-login] --jobs '[[...], ...]'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_workers(replay, jobs_per_worker: list[list[list]], *, env: dict[str, str] | None = None,
                timeout: float = 600) -> list[list[str]]:
    """Run one process per job list against ``replay``, all at once; their outcomes, in order."""
    base = {**os.environ, **(env or {})}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.fakes.krx_traffic", "--wire-id", replay.wire_id,
               "--tickers", str(len(replay.market.tickers)), "--today", replay.today.isoformat()]
    if replay.require_login:
        command.append("--require-login")
    workers = [subprocess.Popen([*command, "--jobs", json.dumps(jobs)], cwd=ROOT, env=base, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for jobs in jobs_per_worker]
    outcomes = []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        if worker.returncode != 0:
            raise RuntimeError(f"KRX traffic worker failed ({worker.returncode}): {err[-3000:]}")
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    return outcomes


def _run(source, job: list) -> str:
    kind, *args = job
    if kind == "day":
        frame = source.daily_prices(args[0])
    elif kind == "history":
        frame = source.history(args[0], args[1], args[2], adjusted=False)
    elif kind == "adjusted":
        frame = source.history(args[0], args[1], args[2], adjusted=True)
    else:
        raise ValueError(f"unknown job {job!r}")
    return f"ok {len(frame)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wire-id", required=True)
    parser.add_argument("--tickers", type=int, default=40)
    parser.add_argument("--today", required=True)
    parser.add_argument("--require-login", action="store_true")
    parser.add_argument("--jobs", required=True, help="a JSON list of jobs")
    args = parser.parse_args()

    import datetime as dt

    from krxflow.krx.source import PykrxSource
    from krxflow.sample.market import SampleMarket
    from tests.fakes.krx_replay import KrxReplay

    outcomes = []
    with KrxReplay(SampleMarket(args.tickers), require_login=args.require_login, wire_id=args.wire_id,
                   today=dt.date.fromisoformat(args.today)):
        source = PykrxSource()
        for job in json.loads(args.jobs):
            try:
                outcomes.append(_run(source, job))
            except Exception as exc:  # a task's failure; the worker goes on with its next task
                outcomes.append(type(exc).__name__)
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main()
