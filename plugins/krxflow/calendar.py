"""The XKRX (KOSPI/KOSDAQ) trading calendar, from ``exchange_calendars``.

No hand-written holiday list: ``exchange_calendars`` keeps KRX's holidays, late opens (the first
session of the year and the CSAT day open at 10:00) and early closes. Everything here speaks KST
dates and tz-aware KST datetimes.

Loading the calendar takes ~2 s, so it happens on first use (never at DAG-parse time) and once
per process.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from krxflow.settings import MARKET_TZ

KST = ZoneInfo(MARKET_TZ)


@lru_cache(maxsize=1)
def xkrx():
    """The ``exchange_calendars`` XKRX calendar (cached per process)."""
    import exchange_calendars

    return exchange_calendars.get_calendar("XKRX")


def _as_date(day) -> dt.date:
    if isinstance(day, dt.datetime):
        return (day.astimezone(KST) if day.tzinfo else day).date()
    if isinstance(day, dt.date):
        return day
    text = str(day).strip().replace("/", "-")
    return dt.datetime.strptime(text, "%Y%m%d").date() if text.isdigit() else dt.date.fromisoformat(text[:10])


def _in_bounds(day: dt.date) -> bool:
    cal = xkrx()
    return cal.first_session.date() <= day <= cal.last_session.date()


def is_trading_day(day) -> bool:
    """True when ``day`` (a KST date, datetime or 'YYYY-MM-DD'/'YYYYMMDD') is an XKRX session."""
    day = _as_date(day)
    if not _in_bounds(day):
        raise ValueError(f"{day} is outside the XKRX calendar's range "
                         f"({xkrx().first_session.date()} .. {xkrx().last_session.date()})")
    return bool(xkrx().is_session(day.isoformat()))


def trading_days(first, last) -> list[dt.date]:
    """Every XKRX session from ``first`` to ``last`` inclusive, in order."""
    first, last = _as_date(first), _as_date(last)
    if last < first:
        return []
    cal = xkrx()
    first = max(first, cal.first_session.date())
    last = min(last, cal.last_session.date())
    return [ts.date() for ts in cal.sessions_in_range(first.isoformat(), last.isoformat())]


def previous_trading_day(day) -> dt.date:
    """The last session strictly before ``day``."""
    before = _as_date(day) - dt.timedelta(days=1)
    return _as_date(xkrx().date_to_session(before.isoformat(), direction="previous"))


def next_trading_day(day) -> dt.date:
    """The first session strictly after ``day``."""
    after = _as_date(day) + dt.timedelta(days=1)
    return _as_date(xkrx().date_to_session(after.isoformat(), direction="next"))


def session_hours(day) -> tuple[dt.datetime, dt.datetime]:
    """Open and close of the session on ``day`` as tz-aware KST datetimes (ValueError on a holiday)."""
    day = _as_date(day)
    if not is_trading_day(day):
        raise ValueError(f"{day} is not an XKRX trading day")
    opens, closes = xkrx().session_open_close(day.isoformat())
    return opens.to_pydatetime().astimezone(KST), closes.to_pydatetime().astimezone(KST)
