"""``KisWindowSensor``: the contract both KIS session sensors share, layered hook → trigger → sensor.

A session is a chain of windows. Each window is one trigger (:class:`~krxflow.triggers.kis_poll.KisPollTrigger`
or :class:`~krxflow.triggers.kis_ws.KisStreamTrigger`) that buffers KIS answers in the run's Redis
stream; after each window the task drains the stream into PostgreSQL through the batched hook.
The sensor's condition is "the planned session is over and its buffer is drained".

Like the HTTP provider's ``HttpSensor``, the sensor honours :class:`BaseSensorOperator`'s contract:

* ``deferrable=True`` (default): ``execute`` drains what an earlier attempt left, then defers —
  to a ``DateTimeTrigger`` before the open, else to the window's trigger — and
  ``execute_complete`` drains each window and defers again until the end. No worker slot is held.
  Every deferral's timeout is bounded by what is left of ``timeout``: past it the sensor raises
  :class:`AirflowSensorTimeout` (a skip with ``soft_fail``), as ``resume_execution`` does for a
  deferral that timed out.
* ``deferrable=False``: ``super().execute(context)`` and its poke loop. Each ``poke`` runs one
  window's trigger in the task itself and drains it; ``timeout``, ``soft_fail`` and
  ``poke_interval`` mean what they mean for every sensor.

``mode="reschedule"`` is refused when the sensor is built: the poke loop adds each window to totals
kept on the operator instance, and a rescheduled poke runs on a new instance in a new process, so
the totals it returns would count only the last window (and every poke would first drain
"leftovers" it cannot tell from its own). ``deferrable=True`` is what frees the worker slot between
windows; the deferrable path carries its totals in the deferral's kwargs.

Subclasses say which trigger a window is (:meth:`window_trigger`), how long a window lasts
(:meth:`window_seconds`), how drained rows add to the totals (:meth:`add_drained`) and what a
window's event adds (:meth:`count_window`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from krxflow.settings import KIS_CONN_ID, POSTGRES_CONN_ID, REDIS_CONN_ID
from krxflow.triggers.running import first_event

#: Slack on top of a window's length before the deferral times out (the triggerer may be busy).
DEFER_SLACK = dt.timedelta(minutes=10)


class KisWindowSensor(BaseSensorOperator):
    """Drain one trading session of KIS data, window by window (see module doc).

    :param plan: the run's plan (dict or XComArg; see :func:`krxflow.kis.session.plan`).
    :param kis_conn_id: KIS Connection (read through :class:`~krxflow.hooks.kis.KisHook`).
    :param redis_conn_id: Redis Connection (token, limiter, dedupe keys, buffer).
    :param postgres_conn_id: the market database for the batched hook.
    :param deferrable: wait in the triggerer (True) or poke in the worker (False).
    """

    template_fields = ("plan",)
    #: ``drain``'s ``claim_idle_ms``: take over entries a dead drain held this long (None: never).
    claim_idle_ms: int | None = None
    #: What the trigger is, for the messages.
    trigger_name = "KIS"

    def __init__(self, *, plan: Any, kis_conn_id: str = KIS_CONN_ID, redis_conn_id: str = REDIS_CONN_ID,
                 postgres_conn_id: str = POSTGRES_CONN_ID, deferrable: bool = True, **kwargs) -> None:
        kwargs.setdefault("timeout", dt.timedelta(hours=16))
        kwargs.setdefault("poke_interval", 60)
        super().__init__(**kwargs)
        if self.mode == "reschedule":
            raise ValueError(
                f"{type(self).__name__} {self.task_id!r}: mode='reschedule' is not supported: the session's totals "
                "are kept on the operator from one poke to the next, and a rescheduled poke runs on a new one. "
                "To free the worker slot between windows use deferrable=True (the default); with "
                "deferrable=False use mode='poke'.")
        self.plan = plan
        self.kis_conn_id = kis_conn_id
        self.redis_conn_id = redis_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.deferrable = deferrable
        self._poke_totals: dict | None = None

    # ---------------------------------------------------------------- subclass API
    def window_trigger(self, now: dt.datetime, window_end: dt.datetime):
        """The trigger that buffers KIS data from ``now`` until ``window_end``."""
        raise NotImplementedError

    def window_seconds(self) -> int:
        """A window's length in seconds (0: the rest of the session)."""
        raise NotImplementedError

    def add_drained(self, totals: dict, result, *, windows: int) -> dict:
        """``totals`` plus one drain's :class:`~krxflow.intraday.drain.DrainResult` (and ``windows`` windows)."""
        raise NotImplementedError

    def count_window(self, totals: dict, event: dict, written: int, hook) -> dict:
        """``totals`` plus what one window's event reports; ``written`` rows went to PostgreSQL for it."""
        raise NotImplementedError

    # ---------------------------------------------------------------- sensor contract
    def execute(self, context) -> Any:
        if not self.deferrable:
            self._poke_totals = None
            return super().execute(context)
        totals = self._drain_leftovers()
        started = _now()
        start = self._start()
        if started < start:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("waiting for the session to start at %s (deferred, no worker slot held)", start)
            self.defer(trigger=DateTimeTrigger(moment=start), method_name="start_session",
                       kwargs={"totals": totals, "started": started.isoformat()},
                       timeout=self._bounded(start - started + DEFER_SLACK, started))
        return self._defer_next_window(totals, started)

    def start_session(self, context, event=None, totals: dict | None = None, started: str | None = None) -> dict:
        """The open has come (deferrable path): the first window."""
        return self._defer_next_window(totals or {}, _started(started))

    def execute_complete(self, context, event: dict | None = None, totals: dict | None = None,
                         started: str | None = None) -> dict:
        """A window's trigger fired (deferrable path): drain, record, then the next window."""
        totals = self._finish_window(event, totals or {})
        return self._defer_next_window(totals, _started(started))

    def poke(self, context) -> PokeReturnValue:
        """One window in the task itself (non-deferrable path); done once the session is over."""
        if self._poke_totals is None:
            self._poke_totals = self._drain_leftovers()
        now, end = _now(), self._end()
        if now < self._start():
            return PokeReturnValue(is_done=False)
        if now < end:
            trigger = self.window_trigger(now, self._window_end(now, end))
            self._poke_totals = self._finish_window(asyncio.run(first_event(trigger)), self._poke_totals)
        else:
            self._poke_totals = self.add_drained(self._poke_totals, self._drain(), windows=0)
        done = _now() >= end
        if done:
            self.log.info("session over at %s: %s", end, self._poke_totals)
        return PokeReturnValue(is_done=done, xcom_value=self._poke_totals if done else None)

    # ---------------------------------------------------------------- internals
    def _defer_next_window(self, totals: dict, started: dt.datetime) -> dict:
        end, now = self._end(), _now()
        if now >= end:
            self.log.info("session over at %s: %s", end, totals)
            return totals
        if (now - started).total_seconds() > self.timeout:
            self._time_out(now - started)
        window_end = self._window_end(now, end)
        self.defer(trigger=self.window_trigger(now, window_end), method_name="execute_complete",
                   kwargs={"totals": totals, "started": started.isoformat()},
                   timeout=self._bounded(window_end - now + DEFER_SLACK, started))
        return totals  # not reached: defer raises

    def _bounded(self, wait: dt.timedelta, started: dt.datetime) -> dt.timedelta:
        """``wait``, but no longer than what is left of the sensor's ``timeout``."""
        left = dt.timedelta(seconds=self.timeout) - (_now() - started)
        if left <= dt.timedelta(0):
            self._time_out(_now() - started)
        return min(wait, left)

    def _time_out(self, ran: dt.timedelta) -> None:
        from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

        message = (f"Sensor has timed out; run duration of {ran.total_seconds():.0f} seconds exceeds "
                   f"the specified timeout of {self.timeout}.")
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowSensorTimeout(message)

    def _finish_window(self, event: dict | None, totals: dict) -> dict:
        """Write what the event carried, drain the stream, add the window to ``totals``."""
        from airflow.sdk.exceptions import AirflowFailException

        from krxflow.intraday import drain

        if not event:
            raise AirflowFailException(f"the {self.trigger_name} trigger fired without a payload")
        if event.get("status") == "error":
            raise AirflowFailException(f"{self.trigger_name} stopped: {event.get('message')}")
        hook = self._hook()
        carried = 0
        if isinstance(event.get("unsent"), list) and event["unsent"]:  # an event of an earlier krxflow
            self.log.warning("window %s: %d entries came in the event (Redis was unavailable)",
                             event.get("window"), len(event["unsent"]))
            written = drain.write_entries(self.plan["stream"], event["unsent"], hook=hook)
            totals = self.add_drained(totals, written, windows=0)
            carried = written.rows_written
        for path in event.get("spill_files") or ():
            written = self._write_spilled(path, event, hook)
            totals = self.add_drained(totals, written, windows=0)
            carried += written.rows_written
        result = self._drain(hook)
        totals = self.count_window(self.add_drained(totals, result, windows=1), event, carried + result.rows_written,
                                   hook)
        return totals

    def _write_spilled(self, path: str, event: dict, hook):
        """Write a spill file the window's trigger left (Redis was down until its end) to PostgreSQL."""
        from pathlib import Path

        from krxflow.intraday import drain

        if not Path(path).exists():
            self.log.warning("window %s: spill file %s (on host %s) is not on this host; the next window's trigger "
                             "there writes it to Redis", event.get("window"), path, event.get("spill_host"))
        written = drain.write_spilled(self.plan["stream"], path, hook=hook)
        if written.entries:
            self.log.warning("window %s: %d entries Redis never took written from the spill file %s (%d rows new)",
                             event.get("window"), written.entries, path, written.rows_written)
        return written

    def _drain_leftovers(self) -> dict:
        leftover = self._drain()
        if leftover.entries:
            self.log.warning("drained %d entries an earlier attempt had left in the buffer (%d rows new)",
                             leftover.entries, leftover.rows_written)
        return self.add_drained({}, leftover, windows=0)

    def _window_end(self, now: dt.datetime, end: dt.datetime) -> dt.datetime:
        seconds = self.window_seconds()
        return end if seconds <= 0 else min(end, now + dt.timedelta(seconds=seconds))

    def _start(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.plan["start"])

    def _end(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.plan["end"])

    def _hook(self):
        from krxflow.hooks import BatchedPostgresHook

        return BatchedPostgresHook(postgres_conn_id=self.postgres_conn_id)

    def _drain(self, hook=None):
        from krxflow import redis_client
        from krxflow.intraday import drain

        return drain.drain(self.plan["stream"], hook=hook or self._hook(), client=redis_client.client(self.redis_conn_id),
                           claim_idle_ms=self.claim_idle_ms)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _started(value: str | None) -> dt.datetime:
    return dt.datetime.fromisoformat(value) if value else _now()
