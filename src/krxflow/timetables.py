"""``KRXSessionTimetable``: one DAG run per XKRX trading session, none on holidays or weekends.

A cron schedule such as ``0 18 * * 1-5`` would create runs on KRX holidays (Seollal, Chuseok,
election days...) that either fail or load nothing while looking green. This timetable asks
:mod:`krxflow.calendar` (``exchange_calendars``' XKRX) instead:

* each run belongs to one session ``D`` and starts at ``at`` KST on ``D`` (``"18:00"`` after the
  close for daily prices; the intraday DAG uses ``"08:30"``);
* the run's data interval is ``[D 00:00 KST, D at KST]``, so
  ``logical_date.in_timezone(MARKET_TZ).date()`` **is** the session date (``ds`` is the UTC
  date and is wrong here for early ``at`` times);
* ``airflow backfill create --from-date X --to-date Y`` creates one run per session whose KST
  date lies in ``[X, Y]`` read as KST dates — a range with holidays gets runs only for sessions;
* manual runs get the interval ``[run day 00:00 KST, trigger time]``; the DAG's tasks decide what
  a manual run on a holiday means (krxflow's tasks skip it).

The calendar is loaded on first use (~2 s), never at import or DAG-parse time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, Timetable

from krxflow.market_time import kst_date
from krxflow.settings import MARKET_TZ


def _parse_at(at: str) -> dt.time:
    try:
        hours, minutes = (int(part) for part in at.strip().split(":"))
        return dt.time(hours, minutes)
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"KRXSessionTimetable(at=...) wants 'HH:MM' in KST, got {at!r}") from exc


class KRXSessionTimetable(Timetable):
    """One run per XKRX session at ``at`` (``"HH:MM"``, KST) on the session day."""

    periodic = True
    can_be_scheduled = True
    run_ordering = ("logical_date", "data_interval_end")

    def __init__(self, at: str = "18:00") -> None:
        self.at = at
        self._at = _parse_at(at)
        self.description = f"XKRX trading sessions at {at} KST"

    # ---------------------------------------------------------------- serialization
    def serialize(self) -> dict[str, Any]:
        return {"at": self.at}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> "KRXSessionTimetable":
        return cls(at=data.get("at", "18:00"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KRXSessionTimetable) and other.at == self.at

    def __hash__(self) -> int:
        return hash(("KRXSessionTimetable", self.at))

    @property
    def summary(self) -> str:
        return f"XKRX sessions @ {self.at} KST"

    def validate(self) -> None:
        _parse_at(self.at)

    # ---------------------------------------------------------------- helpers
    def _interval(self, session: dt.date) -> DataInterval:
        import pendulum

        start = pendulum.datetime(session.year, session.month, session.day, tz=MARKET_TZ)
        end = start.add(hours=self._at.hour, minutes=self._at.minute)
        return DataInterval(start=start.in_timezone("UTC"), end=end.in_timezone("UTC"))

    def _first_session_on_or_after(self, day: dt.date) -> dt.date | None:
        from krxflow import calendar

        if day > calendar.last_session():
            return None
        day = max(day, calendar.first_session())
        return day if calendar.is_trading_day(day) else calendar.next_trading_day(day)

    def _latest_started_session(self, now) -> dt.date | None:
        """The last session whose run time ``at`` has already passed at ``now``."""
        from krxflow import calendar

        today = kst_date(now)
        candidate = today if calendar.is_trading_day(today) else calendar.previous_trading_day(today)
        if self._interval(candidate).end > now:
            candidate = calendar.previous_trading_day(candidate)
        return candidate

    # ---------------------------------------------------------------- Timetable API
    def infer_manual_data_interval(self, *, run_after) -> DataInterval:
        import pendulum

        run_after = pendulum.instance(run_after)
        day = kst_date(run_after)
        start = pendulum.datetime(day.year, day.month, day.day, tz=MARKET_TZ).in_timezone("UTC")
        return DataInterval(start=start, end=max(run_after, start))

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction) -> DagRunInfo | None:
        import pendulum

        if last_automated_data_interval is not None:
            after = kst_date(last_automated_data_interval.start) + dt.timedelta(days=1)
        elif restriction.earliest is not None:
            after = kst_date(restriction.earliest)
        else:
            return None  # no start_date: nothing to schedule
        if not restriction.catchup:
            latest_started = self._latest_started_session(pendulum.now("UTC"))
            if latest_started is not None:
                after = max(after, latest_started)
            if restriction.earliest is not None:
                after = max(after, kst_date(restriction.earliest))
        session = self._first_session_on_or_after(after)
        if session is None:
            return None
        if restriction.latest is not None and session > kst_date(restriction.latest):
            return None
        interval = self._interval(session)
        return DagRunInfo.interval(start=interval.start, end=interval.end)
