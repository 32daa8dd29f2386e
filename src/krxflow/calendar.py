"""The XKRX (KOSPI/KOSDAQ) trading calendar, from ``exchange_calendars``.

No hand-written holiday list: ``exchange_calendars`` keeps KRX's holidays, late opens (the first
session of the year opens at 10:00; CSAT days shift by an hour, though ``exchange_calendars``
4.13 lists them only up to 2020) and early closes. Everything here speaks KST
dates and tz-aware KST datetimes.

Building the XKRX calendar costs ~2 s of CPU (``exchange_calendars`` converts some 500 lunar
dates one by one). Every Airflow task runs in a fresh process, so paying it per task would
dominate a 2,800-task backfill. What krxflow needs of the calendar is small — the sessions and
their open/close times — so that table is built from ``exchange_calendars`` once a day per
machine and kept as a ``.npz`` file (no pickle: nothing executable is read back) in
``$KRXFLOW_CACHE_DIR`` (default ``~/.cache/krxflow``); loading it takes about a millisecond. The
file's name carries the ``exchange_calendars`` version and the day it was built, so an upgrade
or a new day (the calendar's window moves with today) builds a fresh one. An unreadable or
unwritable cache is never an error: the table is then built in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from krxflow.market_time import KST, kst_date, kst_today

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def xkrx():
    """The ``exchange_calendars`` XKRX calendar (cached per process; ~2 s to build)."""
    import exchange_calendars

    return exchange_calendars.get_calendar("XKRX")


def position(days: np.ndarray, day: dt.date) -> int:
    """Position of ``day`` in the ascending ``datetime64[D]`` array ``days`` (-1 when absent)."""
    wanted = np.datetime64(day, "D")
    i = int(np.searchsorted(days, wanted))
    return i if i < len(days) and days[i] == wanted else -1


@dataclass(frozen=True)
class SessionTable:
    """Every XKRX session in the calendar's window, with its open and close (UTC epoch nanoseconds)."""

    days: np.ndarray  # datetime64[D], ascending
    opens: np.ndarray  # int64 ns since the epoch, UTC
    closes: np.ndarray  # int64 ns since the epoch, UTC

    @property
    def first(self) -> dt.date:
        return self.days[0].astype(dt.date)

    @property
    def last(self) -> dt.date:
        return self.days[-1].astype(dt.date)

    def index(self, day: dt.date) -> int:
        """Position of ``day`` in :attr:`days` (-1 when it is not a session)."""
        return position(self.days, day)

    @classmethod
    def from_exchange_calendars(cls) -> "SessionTable":
        cal = xkrx()
        return cls(days=cal.sessions.values.astype("datetime64[D]"),
                   opens=cal.opens.values.astype("datetime64[ns]").astype(np.int64),
                   closes=cal.closes.values.astype("datetime64[ns]").astype(np.int64))


def _cache_file(today: dt.date) -> Path:
    from importlib.metadata import version

    from krxflow.settings import cache_dir

    return cache_dir() / f"xkrx-sessions-ec{version('exchange_calendars')}-{today.isoformat()}.npz"


@lru_cache(maxsize=1)
def sessions() -> SessionTable:
    """The session table: from today's cache file, else built from ``exchange_calendars`` (and cached)."""
    path = _cache_file(kst_today())
    try:
        with np.load(path, allow_pickle=False) as data:
            return SessionTable(days=data["days"], opens=data["opens"], closes=data["closes"])
    except (OSError, KeyError, ValueError):
        pass
    table = SessionTable.from_exchange_calendars()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz.tmp", delete=False) as tmp:
            np.savez(tmp, days=table.days, opens=table.opens, closes=table.closes)
        os.replace(tmp.name, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError as exc:
        log.debug("could not cache the XKRX sessions in %s: %s", path.parent, exc)
    return table


def first_session() -> dt.date:
    """The first session the calendar knows (about 20 years back)."""
    return sessions().first


def last_session() -> dt.date:
    """The last session the calendar knows (about a year ahead)."""
    return sessions().last


def _check_bounds(day: dt.date) -> None:
    table = sessions()
    if not table.first <= day <= table.last:
        raise ValueError(f"{day} is outside the XKRX calendar's range ({table.first} .. {table.last})")


def is_trading_day(day) -> bool:
    """True when ``day`` (a KST date, datetime or 'YYYY-MM-DD'/'YYYYMMDD') is an XKRX session."""
    day = kst_date(day)
    _check_bounds(day)
    return sessions().index(day) >= 0


def session_of(logical_date) -> dt.date:
    """The KST date of a run's ``logical_date`` (``ds`` is UTC and wrong for a KST market).

    Airflow 3 allows runs without a logical date (triggered from the UI or API with none): those
    load the KST date of the run's ``run_after``, i.e. when it was asked for.
    """
    if logical_date is None:
        try:
            from airflow.sdk import get_current_context

            logical_date = get_current_context()["dag_run"].run_after
        except Exception:  # outside a task: today in KST
            return kst_today()
    return kst_date(logical_date)


def session_of_run(logical_date, *, closed_ok: bool = False) -> dt.date:
    """The KST session of a run (:func:`session_of`); the task is skipped when that day is no XKRX session.

    ``closed_ok``: return the day anyway (a manual run that names its own dates or a demo window).
    """
    day = session_of(logical_date)
    if not closed_ok and not is_trading_day(day):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{day} (KST) is not an XKRX session: nothing to do")
    return day


def trading_days(first, last) -> list[dt.date]:
    """Every XKRX session from ``first`` to ``last`` inclusive, in order."""
    first, last = kst_date(first), kst_date(last)
    days = sessions().days
    lo = np.searchsorted(days, np.datetime64(first, "D"), side="left")
    hi = np.searchsorted(days, np.datetime64(last, "D"), side="right")
    return days[lo:hi].astype(dt.date).tolist()


def previous_trading_day(day) -> dt.date:
    """The last session strictly before ``day``."""
    day = kst_date(day)
    _check_bounds(day - dt.timedelta(days=1))  # so the first session lies on or before day - 1
    days = sessions().days
    return days[int(np.searchsorted(days, np.datetime64(day, "D"), side="left")) - 1].astype(dt.date)


def next_trading_day(day) -> dt.date:
    """The first session strictly after ``day``."""
    day = kst_date(day)
    _check_bounds(day + dt.timedelta(days=1))  # so the last session lies on or after day + 1
    days = sessions().days
    return days[int(np.searchsorted(days, np.datetime64(day, "D"), side="right"))].astype(dt.date)


def session_hours(day) -> tuple[dt.datetime, dt.datetime]:
    """Open and close of the session on ``day`` as tz-aware KST datetimes (ValueError on a holiday)."""
    day = kst_date(day)
    _check_bounds(day)
    table = sessions()
    i = table.index(day)
    if i < 0:
        raise ValueError(f"{day} is not an XKRX trading day")

    def kst(ns) -> dt.datetime:
        return (_EPOCH + dt.timedelta(microseconds=int(ns) // 1000)).astimezone(KST)

    return kst(table.opens[i]), kst(table.closes[i])
