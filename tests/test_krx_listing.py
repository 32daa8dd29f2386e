"""The ticker master load: renames and market moves kept, delistings marked, reruns and older days harmless."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from krxflow.sources.base import DAILY_COLUMNS, DELISTED_COLUMNS, KRX_ADJUSTED_COLUMNS, LISTING_COLUMNS, KrxSource

DAY1, DAY2, DAY3 = dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6)


class ScriptedSource(KrxSource):
    """A source whose listings are written out per day by the test."""

    name = "scripted"

    def __init__(self, listings: dict[dt.date, list[tuple]], delisted: list[tuple] | None = None):
        self.listings = listings
        self._delisted = delisted or []

    def listing(self, day):
        return pd.DataFrame(self.listings[day], columns=LISTING_COLUMNS)

    def delisted(self):
        return pd.DataFrame(self._delisted, columns=DELISTED_COLUMNS)

    def daily_prices(self, day):
        return pd.DataFrame(columns=DAILY_COLUMNS)

    def history(self, ticker, first, last, *, adjusted=True, isin=None):
        return pd.DataFrame(columns=DAILY_COLUMNS)

    def krx_adjusted(self, ticker, first, last, *, isin=None):
        return pd.DataFrame(columns=KRX_ADJUSTED_COLUMNS)


def _row(ticker, name, market, shares=1_000_000, cap=5_000_000_000):
    from krxflow.sources.sample import isin_of

    return (ticker, name, market, isin_of(ticker), None, shares, cap)


@pytest.fixture
def db(clean_db):
    clean_db.execute("TRUNCATE stock_changes")
    return clean_db


def _stocks(pg):
    return pg.execute("SELECT ticker, name, market, first_seen, last_seen, delisted, delisted_on FROM stocks "
                      "ORDER BY ticker").fetchall()


def test_renames_moves_and_delistings(db):
    from krxflow.sources.loading import load_listing

    source = ScriptedSource({
        DAY1: [_row("111110", "알파", "KOSDAQ"), _row("222220", "베타", "KOSDAQ"), _row("333330", "감마", "KOSPI")],
        DAY2: [_row("111110", "뉴알파", "KOSDAQ"), _row("222220", "베타", "KOSPI"), _row("444440", "델타", "KOSPI")],
    }, delisted=[("999990", "오메가", "KOSDAQ", "KR7999990004")])
    first = load_listing(source, DAY1)
    assert first.new == 3 and first.known_delisted_added == 1
    second = load_listing(source, DAY2)
    assert (second.renamed, second.moved, second.delisted, second.new) == (1, 1, 1, 1)
    assert _stocks(db) == [
        ("111110", "뉴알파", "KOSDAQ", DAY1, DAY2, False, None),
        ("222220", "베타", "KOSPI", DAY1, DAY2, False, None),
        ("333330", "감마", "KOSPI", DAY1, DAY1, True, DAY2),
        ("444440", "델타", "KOSPI", DAY2, DAY2, False, None),
        ("999990", "오메가", "KOSDAQ", None, None, True, None),
    ]
    changes = db.execute("SELECT ticker, changed_on, field, old_value, new_value FROM stock_changes ORDER BY 1, 3"
                         ).fetchall()
    assert changes == [("111110", DAY2, "name", "알파", "뉴알파"), ("222220", DAY2, "market", "KOSDAQ", "KOSPI"),
                       ("333330", DAY2, "delisted", "false", "true")]


def test_a_rerun_changes_nothing_and_an_older_day_undoes_nothing(db):
    from krxflow.sources.loading import load_listing

    source = ScriptedSource({
        DAY1: [_row("111110", "알파", "KOSDAQ"), _row("333330", "감마", "KOSPI")],
        DAY2: [_row("111110", "뉴알파", "KOSDAQ")],
        DAY3: [_row("111110", "뉴알파", "KOSDAQ")],
    })
    load_listing(source, DAY2)
    load_listing(source, DAY3)
    snapshot = db.execute("SELECT * FROM stocks ORDER BY ticker").fetchall()
    load_listing(source, DAY3)  # same rows in: same table out (updated_at included)
    assert db.execute("SELECT * FROM stocks ORDER BY ticker").fetchall() == snapshot
    load_listing(source, DAY1)  # an older listing only widens first_seen
    rows = _stocks(db)
    assert rows[0] == ("111110", "뉴알파", "KOSDAQ", DAY1, DAY3, False, None)
    assert rows[1] == ("333330", "감마", "KOSPI", DAY1, DAY1, False, None)
    assert db.execute("SELECT count(*) FROM stock_changes").fetchone()[0] == 0


def test_an_empty_listing_never_delists_the_market(db):
    from krxflow.sources.loading import load_listing

    source = ScriptedSource({DAY1: [_row("111110", "알파", "KOSDAQ")], DAY2: []})
    load_listing(source, DAY1)
    result = load_listing(source, DAY2)
    assert result.delisted == 0
    assert _stocks(db)[0][5] is False


def test_a_run_without_logical_date_loads_today_in_kst():
    import pendulum

    from krxflow.sources.loading import session_of

    assert session_of(pendulum.datetime(2024, 2, 7, 16, 0, tz="UTC")) == pendulum.date(2024, 2, 8)
    assert session_of(None) == pendulum.now("Asia/Seoul").date()
