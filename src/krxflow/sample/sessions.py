"""The sample market's sessions: the XKRX calendar from the sample market's first day.

Shared by the sample market (:mod:`krxflow.sample.market`), its other reports
(:mod:`krxflow.sample.market_reports`) and the fake KIS server, which all index a day by its
position here.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

#: The first session of the sample market.
UNIVERSE_START = dt.date(2016, 1, 4)


@lru_cache(maxsize=1)
def sessions() -> np.ndarray:
    """Every XKRX session of the sample market as ``datetime64[D]``."""
    from krxflow import calendar

    days = calendar.sessions().days
    return days[days >= np.datetime64(UNIVERSE_START, "D")]


def session_index(day: dt.date) -> int:
    """Index of session ``day`` in :func:`sessions` (-1 when ``day`` is not a session in range)."""
    from krxflow.calendar import position

    return position(sessions(), day)
