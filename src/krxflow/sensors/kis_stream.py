"""``KisStreamSensor``: KIS's realtime push through one session, window by window.

The WebSocket counterpart of :class:`~krxflow.sensors.kis_poll.KisPollSensor`: each window
is a :class:`~krxflow.triggers.kis_ws.KisStreamTrigger`; after it the task drains the stream into
``trades``, ``order_books`` and ``market_data`` through the batched hook (acknowledging after the
commit, taking over entries a dead drain held) and writes entries the event carried because Redis
was down. An ``error`` event (bad credentials, unsupported venue) fails the task. The sensor
contract is :class:`~krxflow.sensors.kis_window.KisWindowSensor`'s.

During the session the ``drain_live`` task of the DAG (:func:`krxflow.intraday.drain.follow`) keeps the
lag low; this task's drains pick up what it has not (and everything if it died).

The plan (from :func:`krxflow.kis.session.plan`): ``stream``, ``start``, ``end``, ``ws_trades``,
``ws_books``, ``ws_cap``, ``ws_window_seconds`` (0: one window for the whole session).
"""

from __future__ import annotations

import datetime as dt

from krxflow.sensors.kis_window import DEFER_SLACK, KisWindowSensor

__all__ = ["ABANDONED_MS", "DEFER_SLACK", "KisStreamSensor"]

#: A drain that held entries this long without acknowledging them is presumed dead.
ABANDONED_MS = 60_000
_STREAMED = ("messages", "trades", "books", "unparsed", "reconnects")


class KisStreamSensor(KisWindowSensor):
    """Stream trades and books from KIS through one trading session (see module doc)."""

    ui_color = "#d9f2e6"
    trigger_name = "KIS realtime"
    claim_idle_ms = ABANDONED_MS

    def window_trigger(self, now: dt.datetime, window_end: dt.datetime):
        from krxflow.triggers.kis_ws import KisStreamTrigger

        return KisStreamTrigger(trade_tickers=self.plan["ws_trades"], book_tickers=self.plan["ws_books"],
                                stream=self.plan["stream"], window=int(now.timestamp()),
                                window_end=window_end.isoformat(), kis_conn_id=self.kis_conn_id,
                                redis_conn_id=self.redis_conn_id, cap=int(self.plan.get("ws_cap", 40)),
                                market=self.plan.get("market"))

    def window_seconds(self) -> int:
        return int(self.plan.get("ws_window_seconds") or 0)

    def add_drained(self, totals: dict, result, *, windows: int) -> dict:
        return {**totals, "rows_written": totals.get("rows_written", 0) + result.rows_written,
                "windows": totals.get("windows", 0) + windows}

    def count_window(self, totals: dict, event: dict, written: int, hook) -> dict:
        out = dict(totals)
        for name in _STREAMED:
            out[name] = out.get(name, 0) + int(event.get(name, 0))
        if event.get("status") == "warning":
            self.log.warning("window %s had trouble: %s", event.get("window"),
                             {k: event.get(k) for k in ("unparsed", "refused", "redis_errors", "redis_restarts",
                                                        "spilled", "dropped_records")})
        self.log.info("window %s: %d messages (%d trades, %d books), %d unparsed, %d reconnects",
                      event.get("window"), event.get("messages", 0), event.get("trades", 0), event.get("books", 0),
                      event.get("unparsed", 0), event.get("reconnects", 0))
        return out
