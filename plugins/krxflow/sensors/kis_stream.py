"""``KisStreamSensor``: KIS's realtime push through one session, never holding a worker slot.

The WebSocket counterpart of :class:`~krxflow.sensors.kis_session.KisSessionSensor`:

1. ``execute`` — drains whatever an earlier, killed attempt left in the run's Redis buffer
   (taking over entries a dead drain held), then defers: to a ``DateTimeTrigger`` before the
   open, else to :class:`~krxflow.triggers.kis_ws.KisStreamTrigger` until the window's end.
2. ``execute_complete`` — the window's event arrives: the task drains the stream into ``trades``,
   ``order_books`` and ``market_data`` through the batched hook (acknowledging after the commit),
   writes entries the event carried because Redis was down, and defers again for the next window
   until the session's end. An ``error`` event (bad credentials, unsupported venue) fails the task.

During the session the ``drain_live`` task of the DAG (:func:`krxflow.kis.drain.follow`) keeps the
lag low; this task's drains pick up what it has not (and everything if it died).

The plan (from :func:`krxflow.kis.session.plan`): ``stream``, ``start``, ``end``, ``ws_trades``,
``ws_books``, ``ws_cap``, ``ws_window_seconds`` (0: one window for the whole session).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import BaseSensorOperator

from krxflow.settings import KIS_CONN_ID, POSTGRES_CONN_ID, REDIS_CONN_ID

DEFER_SLACK = dt.timedelta(minutes=10)
#: A drain that held entries this long without acknowledging them is presumed dead.
ABANDONED_MS = 60_000


class KisStreamSensor(BaseSensorOperator):
    """Stream trades and books from KIS through one trading session (see module doc)."""

    template_fields = ("plan",)
    ui_color = "#d9f2e6"

    def __init__(self, *, plan: Any, kis_conn_id: str = KIS_CONN_ID, redis_conn_id: str = REDIS_CONN_ID,
                 postgres_conn_id: str = POSTGRES_CONN_ID, **kwargs) -> None:
        kwargs.setdefault("timeout", dt.timedelta(hours=16))
        kwargs.setdefault("poke_interval", 60)
        super().__init__(**kwargs)
        self.plan = plan
        self.kis_conn_id = kis_conn_id
        self.redis_conn_id = redis_conn_id
        self.postgres_conn_id = postgres_conn_id

    def poke(self, context) -> bool:
        self._drain()
        return _now() >= dt.datetime.fromisoformat(self.plan["end"])

    def execute(self, context) -> dict:
        leftover = self._drain()
        if leftover.entries:
            self.log.warning("drained %d entries an earlier attempt had left in the buffer", leftover.entries)
        start = dt.datetime.fromisoformat(self.plan["start"])
        if _now() < start:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(trigger=DateTimeTrigger(moment=start), method_name="start_streaming",
                       timeout=start - _now() + DEFER_SLACK)
        return self._next_window({"windows": 0, "rows_written": leftover.rows_written})

    def start_streaming(self, context, event=None) -> dict:
        return self._next_window({"windows": 0, "rows_written": 0})

    def execute_complete(self, context, event: dict | None = None, totals: dict | None = None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from krxflow.kis import drain

        if not event:
            raise AirflowFailException("the KIS realtime trigger fired without a payload")
        if event.get("status") == "error":
            raise AirflowFailException(f"KIS realtime stopped: {event.get('message')}")
        totals = dict(totals or {})
        hook = self._hook()
        if event.get("unsent"):
            self.log.warning("window %s: %d entries came in the event (Redis was unavailable)",
                             event.get("window"), len(event["unsent"]))
            written = drain.write_entries(self.plan["stream"], event["unsent"], hook=hook)
            totals["rows_written"] = totals.get("rows_written", 0) + written.rows_written
        result = self._drain(hook)
        totals["rows_written"] = totals.get("rows_written", 0) + result.rows_written
        totals["windows"] = totals.get("windows", 0) + 1
        for name in ("messages", "trades", "books", "unparsed", "reconnects"):
            totals[name] = totals.get(name, 0) + int(event.get(name, 0))
        if event.get("status") == "warning":
            self.log.warning("window %s had trouble: %s", event.get("window"),
                             {k: event.get(k) for k in ("unparsed", "refused", "redis_errors", "redis_restarts")})
        self.log.info("window %s: %d messages (%d trades, %d books), %d unparsed, %d reconnects",
                      event.get("window"), event.get("messages", 0), event.get("trades", 0), event.get("books", 0),
                      event.get("unparsed", 0), event.get("reconnects", 0))
        return self._next_window(totals)

    def _next_window(self, totals: dict) -> dict:
        from krxflow.triggers.kis_ws import KisStreamTrigger

        end = dt.datetime.fromisoformat(self.plan["end"])
        now = _now()
        if now >= end:
            self.log.info("session over at %s: %s", end, totals)
            return totals
        seconds = int(self.plan.get("ws_window_seconds") or 0)
        window_end = end if seconds <= 0 else min(end, now + dt.timedelta(seconds=seconds))
        trigger = KisStreamTrigger(trade_tickers=self.plan["ws_trades"], book_tickers=self.plan["ws_books"],
                                   stream=self.plan["stream"], window=int(now.timestamp()),
                                   window_end=window_end.isoformat(), kis_conn_id=self.kis_conn_id,
                                   redis_conn_id=self.redis_conn_id, cap=int(self.plan.get("ws_cap", 40)),
                                   market=self.plan.get("market"))
        self.defer(trigger=trigger, method_name="execute_complete", kwargs={"totals": totals},
                   timeout=(window_end - now) + DEFER_SLACK)
        return totals  # not reached: defer raises

    def _hook(self):
        from krxflow.hooks import BatchedPostgresHook

        return BatchedPostgresHook(postgres_conn_id=self.postgres_conn_id)

    def _drain(self, hook=None):
        from krxflow import cache
        from krxflow.kis import drain

        return drain.drain(self.plan["stream"], hook=hook or self._hook(), client=cache.client(self.redis_conn_id),
                           claim_idle_ms=ABANDONED_MS)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
