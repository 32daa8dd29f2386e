"""What the market was on a date (issue 27): the index families krxflow follows and when they change.

Light (no pandas, no pykrx): the DAG, the loader, the sample market and the bench read it.

* :data:`CORE_INDICES` — KOSPI 200, KOSDAQ 150 and KRX 300, whose constituents KRX changes on
  known dates (:func:`rebalance_dates`); the KOSPI/KOSDAQ **sector indices** are every index of
  the KOSPI/KOSDAQ group whose name is an industry of KRX's industry report (KRX names its
  sector indices after the industries: 전기전자, 화학, …), found in ``krx_indices``.
* :data:`REQUESTS` — what each part of a session's load costs at KRX.
"""

from __future__ import annotations

import datetime as dt

#: Index code (finder_equidx full_code + short_code, as pykrx) → (name, market of its members or None for both).
CORE_INDICES = {"1028": ("코스피 200", "KOSPI"), "2203": ("코스닥 150", "KOSDAQ"), "5300": ("KRX 300", None)}
#: The index group (``krx_indices.index_group``) of each market's sector indices.
SECTOR_GROUPS = {"KOSPI": "KOSPI", "KOSDAQ": "KOSDAQ"}
#: KRX's ``mktId`` of each market in the industry report (MDCSTAT03901).
INDUSTRY_MARKETS = {"KOSPI": "STK", "KOSDAQ": "KSQ"}
#: Months of the regular constituent changes (정기변경) of the core indices.
REBALANCE_MONTHS = (6, 12)
#: Index requests a session makes at least: when fewer indices can have changed, the stalest others
#: fill up to this many (a rotation), so every followed index is asked about again within about
#: (number of indices / this) sessions, and a session that asks anyway adds nothing for the rotation.
ROTATION_PER_SESSION = 1
#: Days after which the delisted-issues report is asked again even if nothing was seen delisted.
DELISTINGS_EVERY_DAYS = 7
#: The window a session's delisted-issues request covers (days back from the session).
DELISTINGS_WINDOW_DAYS = 31
#: KRX requests of each part (the delisted report: one per 730 days of window, pykrx's split).
REQUESTS = {"industries": len(INDUSTRY_MARKETS), "index_members": 1, "index_master": 1, "delistings": 1}
#: Security groups (SECUGRP_NM) of the delisted-issues report that are shares krxflow keeps;
#: the report also lists rights certificates (신주인수권증서), beneficiary certificates, ....
SHARE_GROUPS = ("주권", "외국주권", "부동산투자회사", "투자회사", "사회간접자본투융자회사", "주식예탁증권")


def rebalance_date(year: int, month: int) -> dt.date:
    """The session after the second Thursday (the derivatives' expiry) of ``month``: the regular change."""
    from krxflow.calendar import next_trading_day

    return next_trading_day(_second_thursday(year, month))


def _second_thursday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(3 - first.weekday()) % 7 + 7)


def rebalance_dates(first: dt.date, last: dt.date) -> list[dt.date]:
    """Regular constituent changes of the core indices from ``first`` to ``last`` inclusive."""
    days = [rebalance_date(year, month) for year in range(first.year, last.year + 1) for month in REBALANCE_MONTHS
            if first <= _second_thursday(year, month) + dt.timedelta(days=7) and _second_thursday(year, month) < last]
    return [d for d in days if first <= d <= last]


def is_rebalance_day(day: dt.date) -> bool:
    return day.month in REBALANCE_MONTHS and rebalance_date(day.year, day.month) == day
