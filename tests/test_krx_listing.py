"""The ticker master load: renames and market moves kept, delistings marked, reruns and older days harmless."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from krxflow.krx.interface import (DAILY_COLUMNS, DELISTED_COLUMNS, DELISTING_COLUMNS, ETP_DAY_COLUMNS,
                                   ETP_INFO_COLUMNS, FOREIGN_OWNERSHIP_COLUMNS, FUNDAMENTAL_COLUMNS, INDEX_COLUMNS,
                                   INDEX_MEMBER_COLUMNS, INDEX_PRICE_COLUMNS, INDUSTRY_COLUMNS, INVESTOR_COLUMNS,
                                   KRX_ADJUSTED_COLUMNS, LISTING_COLUMNS, SHORT_BALANCE_COLUMNS, SHORT_SELLING_COLUMNS,
                                   KrxSource)

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

    # The scripted market publishes listings only: every report of a day is empty.
    def index_prices(self, day):
        return pd.DataFrame(columns=INDEX_PRICE_COLUMNS + ["name", "index_group"])

    def investor_trading(self, day):
        return pd.DataFrame(columns=INVESTOR_COLUMNS)

    def fundamentals(self, day):
        return pd.DataFrame(columns=FUNDAMENTAL_COLUMNS)

    def short_selling(self, day):
        return pd.DataFrame(columns=SHORT_SELLING_COLUMNS)

    def short_balance(self, day):
        return pd.DataFrame(columns=SHORT_BALANCE_COLUMNS)

    def foreign_ownership(self, day):
        return pd.DataFrame(columns=FOREIGN_OWNERSHIP_COLUMNS)

    # ... and no universe: no industries, indices, delisting reports or ETFs/ETNs.
    def industries(self, day):
        return pd.DataFrame(columns=INDUSTRY_COLUMNS)

    def index_members(self, index_code, day):
        return pd.DataFrame(columns=INDEX_MEMBER_COLUMNS)

    def index_master(self):
        return pd.DataFrame(columns=INDEX_COLUMNS)

    def delistings(self, first, last):
        return pd.DataFrame(columns=DELISTING_COLUMNS)

    def etp_day(self, kind, day):
        return pd.DataFrame(columns=ETP_DAY_COLUMNS)

    def etp_info(self, kind):
        return pd.DataFrame(columns=ETP_INFO_COLUMNS)


def _row(ticker, name, market, shares=1_000_000, cap=5_000_000_000):
    from krxflow.sample.market import isin_of

    return (ticker, name, market, isin_of(ticker), None, shares, cap)


@pytest.fixture
def db(clean_db):
    clean_db.execute("TRUNCATE stock_changes")
    return clean_db


def _stocks(pg):
    return pg.execute("SELECT ticker, name, market, first_seen, last_seen, delisted, delisted_on FROM stocks "
                      "ORDER BY ticker").fetchall()


def test_renames_moves_and_delistings(db):
    from krxflow.krx.master import load_listing

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
    from krxflow.krx.master import load_listing

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
    from krxflow.krx.master import load_listing

    source = ScriptedSource({DAY1: [_row("111110", "알파", "KOSDAQ")], DAY2: []})
    load_listing(source, DAY1)
    result = load_listing(source, DAY2)
    assert result.delisted == 0
    assert _stocks(db)[0][5] is False


def test_a_run_without_logical_date_loads_today_in_kst():
    import pendulum

    from krxflow.calendar import session_of

    assert session_of(pendulum.datetime(2024, 2, 7, 16, 0, tz="UTC")) == pendulum.date(2024, 2, 8)
    assert session_of(None) == pendulum.now("Asia/Seoul").date()


# ---------------------------------------------------------------------------- dates from the daily loads
def _sample_events():
    """One sample ticker per kind of event, with the index of the session it happens on."""
    from krxflow.sample.market import SampleMarket

    market = SampleMarket(400)
    found = {}
    for ticker in market.tickers:
        p = market.profile(ticker)
        for kind, at in (("listed", p.listed or None), ("delisted", p.delisted), ("renamed", p.renamed_at),
                         ("moved", p.moved_at)):
            if at is not None and 5 <= at and kind not in found and p.halt is None:
                found[kind] = (ticker, at)
    assert set(found) == {"listed", "delisted", "renamed", "moved"}
    return found


@pytest.mark.parametrize("order", ["in order", "shuffled"])
def test_daily_loads_place_master_dates_on_the_true_sessions(db, order):
    """A by-date backfill (the daily all-market loads, in order or not) gives each ticker the session
    it was listed, delisted, renamed or moved on; a later krx_tickers run does not move them."""
    import random

    from krxflow.hooks import BatchedPostgresHook
    from krxflow.krx.loading import check_daily_quality, load_daily_prices
    from krxflow.krx.master import load_listing
    from krxflow.sample.market import SampleSource, sessions

    source, hook = SampleSource(tickers=400), BatchedPostgresHook()
    days = [d.astype(dt.date) for d in sessions()]
    for kind, (ticker, at) in _sample_events().items():
        db.execute("TRUNCATE stocks, stock_changes, daily_prices")
        window = days[at - 3:at + 3]
        loads = list(window)
        if order == "shuffled":
            random.Random(at).shuffle(loads)
        for day in loads:
            load_daily_prices(source, day, hook=hook)
        first_seen, last_seen, delisted, delisted_on, name, market = db.execute(
            "SELECT first_seen, last_seen, delisted, delisted_on, name, market FROM stocks WHERE ticker = %s",
            (ticker,)).fetchone()
        true = days[at]
        profile = source.market.profile(ticker)
        if kind == "listed":
            assert first_seen == true and not delisted
        elif kind == "delisted":
            assert (delisted, delisted_on, last_seen, first_seen) == (True, true, days[at - 1], window[0])
        else:
            field, value = ("name", profile.new_name) if kind == "renamed" else ("market", "KOSPI")
            assert (name if kind == "renamed" else market) == value
            changes = db.execute("SELECT changed_on FROM stock_changes WHERE ticker = %s AND field = %s",
                                 (ticker, field)).fetchall()
            if order == "in order":  # a shuffled load records it on the first later session it saw
                assert changes == [(true,)], kind
            else:
                assert len(changes) == 1 and true <= changes[0][0] <= window[-1]
        if order == "in order":
            checks = [check_daily_quality(day, hook=hook) for day in window]
            assert [c["problems"] for c in checks] == [[]] * len(window), kind
        # krx_tickers running later (its listing of a later session) leaves the dates where they are
        load_listing(source, window[-1] + dt.timedelta(days=30), hook=hook, include_delisted=False)
        after = db.execute("SELECT first_seen, delisted_on FROM stocks WHERE ticker = %s", (ticker,)).fetchone()
        assert after == (first_seen, delisted_on), kind


def test_an_earlier_absence_moves_delisted_on_back_and_a_later_return_relists(db):
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.krx.master import update_master

    hook = BatchedPostgresHook()
    listing = lambda *tickers: pd.DataFrame([_row(t, f"이름{t}", "KOSPI") for t in tickers],  # noqa: E731
                                            columns=LISTING_COLUMNS)
    day = [dt.date(2024, 3, d) for d in (4, 5, 6, 7, 8)]  # five sessions
    update_master(listing("111110", "222220"), day[0], hook=hook)
    update_master(listing("222220"), day[3], hook=hook)  # 111110 absent: delisted on day 3 for now
    assert _stocks(db)[0][5:] == (True, day[3])
    update_master(listing("222220"), day[2], hook=hook)  # absent already on day 2
    update_master(listing("111110", "222220"), day[1], hook=hook)  # but there on day 1: an older session
    assert _stocks(db)[0][3:] == (day[0], day[1], True, day[2])
    update_master(listing("111110", "222220"), day[4], hook=hook)  # back on day 4: relisted
    assert _stocks(db)[0][3:] == (day[0], day[4], False, None)


def test_the_master_diff_is_pure_rules_without_a_database():
    """``diff_master``: the master as a frame in, rows and changes out; ``gone_on`` the one lookup."""
    from krxflow.krx.master import STOCK_COLUMNS, diff_master

    now = pd.Timestamp("2024-03-06 09:00", tz="UTC")
    existing = pd.DataFrame([
        {"ticker": "000010", "name": "Old Name", "market": "KOSPI", "isin": "KR7000010000", "sector": None,
         "listed_shares": 1, "market_cap": 1, "first_seen": DAY1, "last_seen": DAY2, "delisted": False,
         "delisted_on": None, "updated_at": now},
        {"ticker": "000020", "name": "Gone", "market": "KOSDAQ", "isin": "KR7000020000", "sector": None,
         "listed_shares": 1, "market_cap": 1, "first_seen": DAY1, "last_seen": DAY1, "delisted": False,
         "delisted_on": None, "updated_at": now},
        {"ticker": "000040", "name": "Also gone", "market": "KOSPI", "isin": "KR7000040000", "sector": None,
         "listed_shares": 1, "market_cap": 1, "first_seen": DAY1, "last_seen": DAY1, "delisted": False,
         "delisted_on": None, "updated_at": now},
    ], columns=STOCK_COLUMNS).set_index("ticker").to_dict("index")
    listing = pd.DataFrame([_row("000010", "New Name", "KOSPI"), _row("000030", "Brand New", "KOSDAQ")],
                           columns=LISTING_COLUMNS)
    asked = []

    def gone_on(last_seen, absent_on):
        asked.append((last_seen, absent_on))
        return DAY2

    diff = diff_master(existing, listing, DAY3, known_delisted=None, gone_on=gone_on, now=now)
    assert (diff.result.new, diff.result.renamed, diff.result.delisted) == (1, 1, 2)  # two delisted in one session
    assert asked == [(DAY1, DAY3), (DAY1, DAY3)]
    assert ("000010", DAY3, "name", "Old Name", "New Name") in diff.changes
    assert ("000020", DAY2, "delisted", "false", "true") in diff.changes
    assert ("000040", DAY2, "delisted", "false", "true") in diff.changes
    by_ticker = {row["ticker"]: row for row in diff.rows}
    assert by_ticker["000030"]["first_seen"] == DAY3 and by_ticker["000020"]["delisted_on"] == DAY2
