"""``KisSessionSensor``: waits for the KRX open and polls KIS until the close, never holding a slot.

A deferrable sensor. The work of a whole session is a chain of deferrals:

1. ``execute`` — first drains whatever an earlier, killed attempt of this task left in the run's
   Redis buffer (so a rerun writes every buffered quote exactly once). Before the open it defers
   to a ``DateTimeTrigger`` (no worker slot while waiting).
2. Each polling window defers to :class:`~krxflow.triggers.kis_poll.KisPollTrigger`, which polls
   asynchronously in the triggerer and buffers the answers in a Redis stream.
3. ``execute_complete`` — the window's event arrives: the task drains the stream into
   ``intraday_quotes``/``order_books`` through the batched hook, records the window's counters in
   ``load_stats`` and acknowledges the entries (only after the commit), then defers again for the
   next window — until the session's end.

The ``plan`` (from :func:`krxflow.kis.session.plan`, usually an XCom of the DAG's first task) gives
tickers, start, end, window length, whether to poll order books, and the buffer's name.

The sensor's condition (``poke``) is "the planned session is over and its buffer is drained".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import BaseSensorOperator

from krxflow.settings import KIS_CONN_ID, POSTGRES_CONN_ID, REDIS_CONN_ID

#: Slack on top of a window's length before the deferral times out (the triggerer may be busy).
DEFER_SLACK = dt.timedelta(minutes=10)


class KisSessionSensor(BaseSensorOperator):
    """Poll KIS through one trading session (see module doc).

    :param plan: the run's plan (dict or XComArg): tickers, start, end, window_seconds,
        order_books, stream.
    :param kis_conn_id: KIS Connection (base URL, appkey/appsecret, extras env/rate).
    :param redis_conn_id: Redis Connection (token, limiter, dedupe keys, buffer).
    :param postgres_conn_id: the market database for the batched hook.
    :param concurrency: requests in flight per window (all paced by the shared limiter).
    """

    template_fields = ("plan",)
    ui_color = "#d7ecf9"

    def __init__(self, *, plan: Any, kis_conn_id: str = KIS_CONN_ID, redis_conn_id: str = REDIS_CONN_ID,
                 postgres_conn_id: str = POSTGRES_CONN_ID, concurrency: int = 12, **kwargs) -> None:
        kwargs.setdefault("timeout", dt.timedelta(hours=16))
        kwargs.setdefault("poke_interval", 60)
        super().__init__(**kwargs)
        self.plan = plan
        self.kis_conn_id = kis_conn_id
        self.redis_conn_id = redis_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.concurrency = concurrency

    # ---------------------------------------------------------------- sensor API
    def poke(self, context) -> bool:
        """Drain the buffer; True once the planned session is over (nothing left to poll)."""
        self._drain()
        return _now() >= dt.datetime.fromisoformat(self.plan["end"])

    def execute(self, context) -> dict:
        leftover = self._drain()
        if leftover.entries:
            self.log.warning("drained %d entries an earlier attempt had left in the buffer (%d rows new)",
                             leftover.entries, leftover.rows_written)
        totals = _add({}, leftover.as_dict(), windows=0)
        start = dt.datetime.fromisoformat(self.plan["start"])
        if _now() < start:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("waiting for the session to start at %s (deferred, no worker slot held)", start)
            self.defer(trigger=DateTimeTrigger(moment=start), method_name="start_polling",
                       kwargs={"totals": totals}, timeout=start - _now() + DEFER_SLACK)
        return self._next_window(totals)

    def start_polling(self, context, event=None, totals: dict | None = None) -> dict:
        return self._next_window(totals or {})

    def execute_complete(self, context, event: dict | None = None, totals: dict | None = None) -> dict:
        """A window's trigger fired: drain, record, acknowledge; then the next window."""
        from airflow.sdk.exceptions import AirflowFailException

        from krxflow.kis import drain

        if not event:
            raise AirflowFailException("the KIS polling trigger fired without a payload")
        if event.get("status") == "error":
            raise AirflowFailException(f"KIS polling stopped: {event.get('message')}")
        hook = self._hook()
        event_rows = 0
        if event.get("unsent"):
            self.log.warning("window %s: %d entries came in the event (Redis was unavailable)",
                             event.get("window"), len(event["unsent"]))
            written = drain.write_entries(self.plan["stream"], event["unsent"], hook=hook)
            totals = _add(totals or {}, written.as_dict(), windows=0)
            event_rows = written.rows_written
        result = self._drain(hook)
        if not event.get("summary_buffered"):
            summary = {k: v for k, v in event.items() if k not in ("unsent", "status", "message")}
            drain.record_window(hook, self.plan["stream"], summary,
                                {"rows_written": result.rows_written + event_rows})
        if event.get("status") == "warning":
            self.log.warning("window %s had trouble: %s", event.get("window"),
                             {k: event.get(k) for k in ("errors", "throttles", "redis_errors", "redis_restarts")})
        totals = _add(totals or {}, result.as_dict(), windows=1)
        for name in ("requests", "successes", "throttles", "retries", "dedupe_hits", "errors"):
            totals[name] = totals.get(name, 0) + int(event.get(name, 0))
        self.log.info("window %s: %d requests, %d rows written, %d dedupe hits, sweep %.1fs",
                      event.get("window"), event.get("requests", 0), result.rows_written,
                      event.get("dedupe_hits", 0), float(event.get("sweep_seconds", 0)))
        return self._next_window(totals)

    # ---------------------------------------------------------------- internals
    def _next_window(self, totals: dict) -> dict:
        from krxflow.triggers.kis_poll import KisPollTrigger

        end = dt.datetime.fromisoformat(self.plan["end"])
        now = _now()
        if now >= end:
            self.log.info("session over at %s: %s", end, totals)
            return totals
        window_end = min(end, now + dt.timedelta(seconds=int(self.plan["window_seconds"])))
        trigger = KisPollTrigger(tickers=self.plan["tickers"], stream=self.plan["stream"],
                                 window=int(now.timestamp()), window_end=window_end.isoformat(),
                                 kis_conn_id=self.kis_conn_id, redis_conn_id=self.redis_conn_id,
                                 order_books=bool(self.plan.get("order_books", True)),
                                 concurrency=self.concurrency)
        self.defer(trigger=trigger, method_name="execute_complete", kwargs={"totals": totals},
                   timeout=(window_end - now) + DEFER_SLACK)
        return totals  # not reached: defer raises

    def _hook(self):
        from krxflow.hooks import BatchedPostgresHook

        return BatchedPostgresHook(postgres_conn_id=self.postgres_conn_id)

    def _drain(self, hook=None):
        from krxflow import cache
        from krxflow.kis import drain

        return drain.drain(self.plan["stream"], hook=hook or self._hook(), client=cache.client(self.redis_conn_id))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _add(totals: dict, result: dict, *, windows: int) -> dict:
    out = dict(totals)
    for name in ("entries", "quotes_written", "books_written", "rows_written", "rejected"):
        out[name] = out.get(name, 0) + int(result.get(name, 0))
    out["windows"] = out.get("windows", 0) + windows
    return out
