"""The market's clock: KST, and the one way to turn any moment into a KST trading date.

KRX trades in Korea Standard Time; a session, a partition bound, a week or a month is a KST
calendar date. Airflow hands out aware UTC datetimes (``logical_date``), pandas and psycopg
return aware or naive timestamps, users type '2024-03-04' or '20240304': :func:`kst_date` takes
all of them, so no module keeps a private "KST date of x" of its own.

Light on purpose (standard library only): DAG files and timetables import it at parse time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from krxflow.settings import MARKET_TZ

#: The market's time zone as a tzinfo (``MARKET_TZ`` is its name, for pendulum and SQL).
KST = ZoneInfo(MARKET_TZ)


def kst_date(value) -> dt.date:
    """The KST calendar date of ``value``.

    * a ``datetime`` (also pendulum's and pandas' ``Timestamp``): converted to KST when aware; a
      naive one is taken as KST already;
    * a ``date``: itself;
    * anything else by its text (a ``numpy.datetime64``, a string): ``YYYY-MM-DD`` (anything after
      the 10th character is ignored), ``YYYY/MM/DD`` or ``YYYYMMDD``.

    Raises ``ValueError`` when the text is no date.
    """
    if isinstance(value, dt.datetime):
        return (value.astimezone(KST) if value.tzinfo is not None else value).date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip().replace("/", "-")
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date() if text.isdigit() else dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"cannot read a KST date from {value!r}") from None


def kst_now() -> dt.datetime:
    """Now, in KST (aware)."""
    return dt.datetime.now(KST)


def kst_today() -> dt.date:
    """Today's date in Korea (a day ahead of UTC from 00:00 to 09:00 KST)."""
    return kst_now().date()
