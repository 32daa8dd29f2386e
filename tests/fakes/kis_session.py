"""A ``kis_intraday`` polling session without Airflow: the windows the sensor chains, for the bench and tests.

:class:`~krxflow.sensors.kis_poll.KisPollSensor` defers to one
:class:`~krxflow.triggers.kis_poll.KisPollTrigger` per window (rebuilt from its serialized form in
the triggerer) and drains the run's Redis stream into PostgreSQL after each one. :func:`run_session`
does exactly that in one event loop, so ``bench/kis_poll.py --demo`` and the tests measure the path
``make run``'s demo takes (:data:`krxflow.kis.session.DEMO_RUN`).

``stall`` makes the loop behave like a busy triggerer on a loaded machine: every ``stall_every``
seconds something blocks it for ``stall`` seconds (other triggers, a starved CPU).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time


async def _busy_neighbour(stall: float, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        time.sleep(stall)  # blocks the loop on purpose, like a CPU-bound neighbour


async def run_session(tickers: list[str], stream: str, seconds: float, window_seconds: float, *,
                      order_books: bool = True, stall: float = 0.0, stall_every: float = 1.7,
                      drain: bool = True) -> list[dict]:
    """Poll ``tickers`` for ``seconds`` in windows of ``window_seconds``; returns each window's event payload.

    After each window the stream is drained through the batched hook (``load_stats`` gets the
    window's row), as the sensor's ``execute_complete`` does.
    """
    from krxflow.intraday import drain as kis_drain
    from krxflow.triggers.kis_poll import KisPollTrigger
    from krxflow.triggers.running import first_event

    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    neighbour = asyncio.ensure_future(_busy_neighbour(stall, stall_every)) if stall > 0 else None
    payloads = []
    try:
        while (now := dt.datetime.now(dt.timezone.utc)) < end:
            window_end = min(end, now + dt.timedelta(seconds=window_seconds))
            payload = await first_event(KisPollTrigger(tickers=tickers, stream=stream, window=int(now.timestamp()),
                                                        window_end=window_end.isoformat(), order_books=order_books))
            payloads.append(payload)
            if drain:
                await asyncio.to_thread(kis_drain.drain, stream)
    finally:
        if neighbour is not None:
            neighbour.cancel()
    return payloads
