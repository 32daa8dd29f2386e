"""One KST: every "KST date of x" goes through krxflow.market_time, the zone is spelled once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pendulum
import pytest

from krxflow.market_time import KST, kst_date, kst_today

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value, expected", [
    (dt.date(2024, 3, 4), dt.date(2024, 3, 4)),
    # 15:30 UTC on the 3rd is 00:30 KST on the 4th: the session is the KST date
    (dt.datetime(2024, 3, 3, 15, 30, tzinfo=dt.timezone.utc), dt.date(2024, 3, 4)),
    (pendulum.datetime(2024, 3, 3, 15, 30, tz="UTC"), dt.date(2024, 3, 4)),
    (pd.Timestamp("2024-03-03 15:30", tz="UTC"), dt.date(2024, 3, 4)),
    (dt.datetime(2024, 3, 4, 23, 59), dt.date(2024, 3, 4)),  # naive: already KST
    ("2024-03-04", dt.date(2024, 3, 4)),
    ("20240304", dt.date(2024, 3, 4)),
    ("2024/03/04", dt.date(2024, 3, 4)),
    ("2024-03-04T10:00:00+09:00", dt.date(2024, 3, 4)),
    (np.datetime64("2024-03-04"), dt.date(2024, 3, 4)),
])
def test_kst_date_reads_every_form_a_day_arrives_in(value, expected):
    assert kst_date(value) == expected


def test_kst_date_says_what_it_could_not_read():
    with pytest.raises(ValueError, match="cannot read a KST date from 'next tuesday'"):
        kst_date("next tuesday")


def test_today_is_the_korean_date():
    assert kst_today() == dt.datetime.now(dt.timezone.utc).astimezone(KST).date()


def test_the_market_zone_is_spelled_once():
    """Product code names the zone through ``krxflow.settings.MARKET_TZ`` only."""
    spelled = [str(p.relative_to(ROOT)) for folder in ("src", "dags", "grafana", "scripts", "bench")
               for p in (ROOT / folder).rglob("*.py") if "Asia/Seoul" in p.read_text()]
    assert spelled == ["src/krxflow/settings.py"]
