"""``KisPollSensor``: polls KIS's REST quotes through one trading session, window by window.

Each window is a :class:`~krxflow.triggers.kis_poll.KisPollTrigger`: it polls asynchronously
(in the triggerer when deferrable, in the task when not) and buffers the answers in a Redis
stream; after it the task drains the stream into ``intraday_quotes``/``order_books`` through the
batched hook, records the window's counters in ``load_stats`` and acknowledges the entries (only
after the commit). The sensor contract (deferral, poke loop, ``timeout``, ``soft_fail``) is
:class:`~krxflow.sensors.kis_window.KisWindowSensor`'s.

The ``plan`` (from :func:`krxflow.kis.session.plan`, usually an XCom of the DAG's first task) gives
tickers, start, end, window length, whether to poll order books, and the buffer's name.
"""

from __future__ import annotations

import datetime as dt

from krxflow.sensors.kis_window import DEFER_SLACK, KisWindowSensor

__all__ = ["DEFER_SLACK", "KisPollSensor"]

_DRAINED = ("entries", "quotes_written", "books_written", "rows_written", "rejected")
_POLLED = ("requests", "successes", "throttles", "retries", "dedupe_hits", "errors")


class KisPollSensor(KisWindowSensor):
    """Poll KIS through one trading session (see module doc).

    :param concurrency: requests in flight per window (all paced by the shared limiter).
    """

    ui_color = "#d7ecf9"
    trigger_name = "KIS polling"

    def __init__(self, *, concurrency: int = 12, **kwargs) -> None:
        super().__init__(**kwargs)
        self.concurrency = concurrency

    def window_trigger(self, now: dt.datetime, window_end: dt.datetime):
        from krxflow.triggers.kis_poll import KisPollTrigger

        return KisPollTrigger(tickers=self.plan["tickers"], stream=self.plan["stream"], window=int(now.timestamp()),
                              window_end=window_end.isoformat(), kis_conn_id=self.kis_conn_id,
                              redis_conn_id=self.redis_conn_id, order_books=bool(self.plan.get("order_books", True)),
                              concurrency=self.concurrency)

    def window_seconds(self) -> int:
        return max(1, int(self.plan["window_seconds"]))

    def add_drained(self, totals: dict, result, *, windows: int) -> dict:
        out = dict(totals)
        drained = result.as_dict()
        for name in _DRAINED:
            out[name] = out.get(name, 0) + int(drained.get(name, 0))
        out["windows"] = out.get("windows", 0) + windows
        return out

    def count_window(self, totals: dict, event: dict, written: int, hook) -> dict:
        from krxflow.intraday import drain

        if not event.get("summary_buffered"):
            summary = {k: v for k, v in event.items() if k not in ("unsent", "spill_files", "status", "message")}
            drain.record_window(hook, self.plan["stream"], summary, {"rows_written": written})
        if event.get("status") == "warning":
            self.log.warning("window %s had trouble: %s", event.get("window"),
                             {k: event.get(k) for k in ("errors", "throttles", "redis_errors", "redis_restarts",
                                                        "spilled", "dropped_entries")})
        out = dict(totals)
        for name in _POLLED:
            out[name] = out.get(name, 0) + int(event.get(name, 0))
        self.log.info("window %s: %d requests, %d rows written, %d dedupe hits, sweep %.1fs",
                      event.get("window"), event.get("requests", 0), written,
                      event.get("dedupe_hits", 0), float(event.get("sweep_seconds", 0)))
        return out
