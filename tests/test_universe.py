"""The universe (issue 27): industries, index constituents and delistings, point in time.

Through pykrx's real requests and the offline KRX replay (requests counted at its wire, logins
included) into the real Postgres through the batched hook: a session's few requests, the history
matching the sample market on every date, an industry change kept like a rename, KRX's delisting
dates and reasons on ``stocks``, and faults (an empty or changed answer, a failure mid-way) that
leave nothing of the session written.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from krxflow.krx import errors
from krxflow.sample.market import SampleMarket, SampleSource
from krxflow.sample import market_universe as sample_universe
from tests.fakes.krx_replay import KrxReplay

TICKERS = 300
#: A regular change of the core indices (the session after 2023-06-08, the second Thursday).
REBALANCE = dt.date(2023, 6, 9)
BEFORE = dt.date(2023, 6, 7)
UNIVERSE_TABLES = ["krx_industry_history", "krx_index_members", "krx_delistings", "krx_universe_checks",
                   "krx_indices", "stock_changes", "stocks"]


@pytest.fixture
def market():
    return SampleMarket(TICKERS)


@pytest.fixture
def universe_db(clean_db):
    from psycopg import sql

    clean_db.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, UNIVERSE_TABLES))))
    return clean_db


@pytest.fixture
def krx(logged_in_krx):
    """conftest's pykrx source, logged in through the krx_default Connection, no pacing delay."""
    return logged_in_krx


@pytest.fixture
def replay(market):
    with KrxReplay(market, require_login=True) as fake:
        yield fake


def _sectors_of(market, day: dt.date) -> list[str]:
    """The sample's sector indices with members on ``day`` (an industry without tickers has no index to ask)."""
    industries = set(zip(*[sample_universe.industries(market, day)[c] for c in ("market", "industry")]))
    return [f"{full}{short}" for group, full, short, name in sample_universe.SECTOR_INDICES if (group, name) in industries]


def _counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in UNIVERSE_TABLES}


def _members(db, code: str, day: dt.date) -> set[str]:
    return {r[0] for r in db.execute("SELECT ticker FROM universe_on(%s, %s)", (code, day))}


# ---------------------------------------------------------------------------- requests
def test_a_first_session_asks_everything_once_then_a_normal_session_few(krx, replay, universe_db, market,
                                                                         redis_client):
    from krxflow.krx.login import session_key
    from krxflow.krx.universe import load_universe

    first = load_universe(krx, dt.date(2024, 1, 3))
    received = dict(replay.received)
    followed = ["1028", "2203", "5300"] + _sectors_of(market, dt.date(2024, 1, 3))
    assert received == {"login_page": 1, "login_jsp": 1, "login": 1, "MDCSTAT03901": 2, "finder_equidx": 1,
                        "MDCSTAT00601": len(followed), "MDCSTAT23801": 1}
    assert first["requests"] == replay.total  # the shared login's requests are counted with the load's
    assert sorted(first["indices_checked"]) == sorted(followed)
    replay.expire_sessions()  # overnight KRX ended the session (it lasts an hour) and krxflow's shared copy
    redis_client.delete(session_key())  # expired too: the next session logs in again
    before = replay.total
    second = load_universe(krx, dt.date(2024, 1, 4))
    on_the_wire = replay.total - before
    assert on_the_wire <= 8, replay.wire()[before:]
    assert second["indices_checked"] and len(second["indices_checked"]) <= 2
    assert replay.received["MDCSTAT03901"] == 4 and replay.received["login"] == 2


def test_a_holiday_sends_nothing_and_writes_nothing(krx, replay, universe_db):
    from krxflow.krx.universe import load_universe

    result = load_universe(krx, dt.date(2024, 2, 9))
    assert result["skipped"] and replay.total == 0
    assert _counts(universe_db)["krx_industry_history"] == 0


# ---------------------------------------------------------------------------- history, point in time
def test_history_across_a_rebalance_matches_the_sample_market_on_every_day(universe_db, market):
    from krxflow.calendar import trading_days
    from krxflow.krx.universe import load_universe

    source = SampleSource(TICKERS)
    days = trading_days(BEFORE, dt.date(2023, 6, 14))
    for day in days:
        load_universe(source, day)
    assert any(_members(universe_db, "1028", BEFORE) != _members(universe_db, "1028", d) for d in days), \
        "the sample's KOSPI 200 changes on the rebalance date"
    for day in days:
        for code in ("1028", "2203", "5300"):
            assert _members(universe_db, code, day) == set(sample_universe.core_members(market, code, day)), (code, day)
        industries = sample_universe.industries(market, day)
        got = dict(universe_db.execute("SELECT ticker, industry FROM industries_on(%s)", (day,)).fetchall())
        assert got == dict(zip(industries["ticker"], industries["industry"]))
        one = industries.iloc[0]
        assert universe_db.execute("SELECT industry_on(%s, %s)", (one.ticker, day)).fetchone()[0] == one.industry
    # the point-in-time functions by name too, and the members all trade on the day
    assert _members(universe_db, "코스피 200", REBALANCE) == _members(universe_db, "1028", REBALANCE)
    traded = set(market.day(REBALANCE)["ticker"])
    assert _members(universe_db, "5300", REBALANCE) <= traded
    # a sector index holds exactly the tickers of its industry
    kospi_it = universe_db.execute(
        "SELECT count(*) FROM universe_on('1013', %s) u WHERE industry_on(u.ticker, %s) <> '전기전자'",
        (REBALANCE, REBALANCE)).fetchone()[0]
    assert kospi_it == 0


def test_rebalance_entries_and_exits_are_dated_and_reruns_change_nothing(universe_db, market):
    from krxflow.krx.universe import load_universe

    source = SampleSource(TICKERS)
    load_universe(source, BEFORE)
    load_universe(source, REBALANCE)
    before = set(sample_universe.core_members(market, "5300", BEFORE))
    after = set(sample_universe.core_members(market, "5300", REBALANCE))
    assert before != after
    rows = universe_db.execute("SELECT ticker, entered_on, exited_on FROM krx_index_members WHERE index_code = '5300'"
                               ).fetchall()
    assert {t for t, e, x in rows if e == REBALANCE} == after - before
    assert {t for t, e, x in rows if x == REBALANCE} == before - after
    counts = _counts(universe_db)
    again = load_universe(source, REBALANCE)
    assert again["members_entered"] == again["members_exited"] == again["industry_changes"] == 0
    assert {k: v for k, v in _counts(universe_db).items() if k != "krx_universe_checks"} == \
        {k: v for k, v in counts.items() if k != "krx_universe_checks"}


def test_an_older_session_never_rewrites_the_history(universe_db):
    from krxflow.krx.universe import load_universe

    source = SampleSource(TICKERS)
    load_universe(source, REBALANCE)
    history = universe_db.execute("SELECT * FROM krx_index_members ORDER BY 1, 2, 3").fetchall()
    older = load_universe(source, BEFORE, indices=["5300"])
    assert older["conflicts"] > 0
    assert universe_db.execute("SELECT * FROM krx_index_members ORDER BY 1, 2, 3").fetchall() == history


def test_an_industry_change_closes_a_period_and_is_kept_like_a_rename(universe_db, market):
    from krxflow.calendar import previous_trading_day
    from krxflow.krx.universe import load_universe
    from krxflow.sample.sessions import sessions

    changed = next(p for p in (market.profile(t) for t in market.tickers)
                   if sample_universe._reclassified_at(p) is not None
                   and (p.delisted is None or p.delisted > sample_universe._reclassified_at(p)))
    day = sessions()[sample_universe._reclassified_at(changed)].astype(dt.date)
    source = SampleSource(TICKERS)
    load_universe(source, previous_trading_day(day), indices=[])
    result = load_universe(source, day, indices=[])
    assert result["industry_changes"] >= 1
    periods = universe_db.execute("SELECT valid_from, valid_to, industry FROM krx_industry_history "
                                  "WHERE ticker = %s ORDER BY valid_from", (changed.ticker,)).fetchall()
    assert periods[0][1] == day and periods[1][0] == day and periods[1][1] is None
    assert periods[0][2] != periods[1][2] == sample_universe.industry_on(market, changed, sample_universe.session_index(day))
    change = universe_db.execute("SELECT old_value, new_value FROM stock_changes WHERE ticker = %s AND field = 'industry' "
                                 "AND changed_on = %s", (changed.ticker, day)).fetchone()
    assert change == (periods[0][2], periods[1][2])


# ---------------------------------------------------------------------------- delistings
def test_delistings_carry_krx_date_reason_and_successor_into_stocks(krx, replay, universe_db, market):
    from krxflow.krx.tables import shared_hook
    from krxflow.krx.universe import UniverseResult, _write_delistings  # the backfill's first step alone

    frame = krx.delistings(dt.date(2016, 1, 4), dt.date(2025, 12, 30))
    assert replay.received["MDCSTAT23801"] == 5, "ten years: pykrx's 730-day split"
    assert set(frame["market"]) <= {"KOSPI", "KOSDAQ", "KONEX"} and "신주인수권증서" not in set(frame["security_group"])
    hook = shared_hook()
    with hook.thread_connection() as conn, conn.transaction():
        _write_delistings(hook, frame, dt.date(2025, 12, 30), UniverseResult(session="test"))
    from krxflow.sample.sessions import sessions

    checked = 0
    for ticker in market.tickers:  # every delisted sample ticker of the window: KRX's date and a reason
        p = market.profile(ticker)
        if p.delisted is None or sessions()[p.delisted].astype(dt.date) > dt.date(2025, 12, 30):
            continue
        checked += 1
        row = universe_db.execute("SELECT s.delisted, s.delisted_on, d.reason, d.successor_ticker FROM stocks s "
                                  "JOIN krx_delistings d USING (ticker) WHERE s.ticker = %s", (ticker,)).fetchone()
        assert row[0] is True and row[1] == sessions()[p.delisted].astype(dt.date) and row[2], ticker
        if row[2] == sample_universe.MERGER:
            traded = set(market.day(row[1])["ticker"])
            assert row[3] in traded, "the successor trades on the delisting date"
    assert checked >= 5
    konex = universe_db.execute("SELECT ticker, successor_ticker FROM krx_delistings WHERE market = 'KONEX'").fetchall()
    assert konex and all(s in market.tickers for _, s in konex)
    assert not universe_db.execute("SELECT 1 FROM stocks WHERE market = 'KONEX'").fetchall()


def test_a_ticker_leaving_ends_its_periods_on_krx_date(universe_db, market):
    from krxflow.krx.universe import load_universe
    from krxflow.sample.sessions import sessions

    gone = next(p for p in (market.profile(t) for t in market.tickers) if p.delisted is not None and p.delisted > 10)
    day = sessions()[gone.delisted].astype(dt.date)
    last = sessions()[gone.delisted - 3].astype(dt.date)  # checked three sessions before, then on the day
    source = SampleSource(TICKERS)
    load_universe(source, last, indices=[])
    result = load_universe(source, day, indices=[])
    assert result["gone_tickers"] >= 1 and result["delistings"] >= 1
    end = universe_db.execute("SELECT valid_to FROM krx_industry_history WHERE ticker = %s", (gone.ticker,)).fetchone()
    assert end[0] == day
    assert universe_db.execute("SELECT delisted_on FROM stocks WHERE ticker = %s", (gone.ticker,)).fetchone()[0] == day

    # the report explained every delisting it added (tickers krxflow never saw trading included): the
    # next session, with no ticker leaving and less than a week later, does not ask it again
    assert universe_db.execute("SELECT count(*) FROM stocks WHERE delisted AND last_seen IS NULL").fetchone()[0] > 0
    following = sessions()[gone.delisted + 1].astype(dt.date)
    again = load_universe(source, following, indices=[])
    assert again["gone_tickers"] == 0 and again["delistings"] == 0, again
    assert universe_db.execute("SELECT max(checked_on) FROM krx_universe_checks WHERE report = 'delistings'"
                               ).fetchone()[0] == day


# ---------------------------------------------------------------------------- faults
@pytest.mark.parametrize("kind, fault, after", [("MDCSTAT03901", "empty", 0), ("MDCSTAT03901", "empty", 1),
                                                ("MDCSTAT00601", "500", 2), ("MDCSTAT23801", "empty", 0)])
def test_an_empty_or_failed_answer_mid_way_writes_nothing(krx, replay, universe_db, kind, fault, after):
    from krxflow.krx.universe import load_universe

    replay.fail(kind, fault, after=after)
    if kind == "MDCSTAT23801":  # a window without delistings is possible: not an error, still all or nothing
        load_universe(krx, dt.date(2024, 1, 3))
        assert _counts(universe_db)["krx_delistings"] == 0
        return
    with pytest.raises((errors.KrxEmptyAnswerError, errors.KrxHttpError)):
        load_universe(krx, dt.date(2024, 1, 3))
    assert _counts(universe_db) == {t: 0 for t in UNIVERSE_TABLES}


@pytest.mark.parametrize("kinds, sent", [((), {"MDCSTAT03901": 1}),
                                          (("MDCSTAT00601",), {"MDCSTAT03901": 2, "MDCSTAT00601": 1})])
def test_an_unpublished_session_writes_nothing_and_loads_once_published(krx, replay, universe_db, kinds, sent):
    """KRX answers a session it has not published with its rows, every value "-" (here the whole
    session, or only the constituents): a clear error before anything is written, the session not
    checked; once published, the same call loads it."""
    from krxflow.krx.universe import load_universe

    day = dt.date(2024, 1, 3)
    replay.unpublish(day, kinds=kinds)
    with pytest.raises(errors.KrxNotPublishedError, match=f"KRX has not published {day} yet"):
        load_universe(krx, day)
    assert {k: replay.received[k] for k in sent} == sent and not replay.received["MDCSTAT23801"]
    assert _counts(universe_db) == {t: 0 for t in UNIVERSE_TABLES}, "nothing written, the session not checked"
    replay.publish(day)
    before = replay.total
    result = load_universe(krx, day)
    assert result["industries"] > 0 and result["members_entered"] > 0 and result["requests"] == replay.total - before
    assert universe_db.execute("SELECT count(*) FROM krx_universe_checks WHERE checked_on = %s", (day,)).fetchone()[0]


class _ChangedIndustries(SampleSource):
    """KRX's industry answer lost half the market (a changed answer, not delistings)."""

    def industries(self, day):
        frame = super().industries(day)
        return frame.iloc[: len(frame) // 2]


def test_a_changed_answer_is_a_clear_error_and_writes_nothing(universe_db):
    from krxflow.krx.universe import load_universe
    from krxflow.krx.universe_parsing import industries_frame

    load_universe(SampleSource(TICKERS), BEFORE)
    counts = _counts(universe_db)
    with pytest.raises(errors.KrxBadAnswerError, match="changed answer"):
        load_universe(_ChangedIndustries(TICKERS), REBALANCE)
    assert _counts(universe_db) == counts
    with pytest.raises(errors.KrxBadAnswerError, match="IDX_IND_NM"):
        industries_frame(pd.DataFrame({"ISU_SRT_CD": ["005930"], "MKT_TP_NM": ["KOSPI"]}), "KOSPI")
    with pytest.raises(errors.KrxBadAnswerError, match="other markets"):
        industries_frame(pd.DataFrame({"ISU_SRT_CD": ["005930"], "MKT_TP_NM": ["KOSDAQ"], "IDX_IND_NM": ["제조"]}),
                         "KOSPI")


# ---------------------------------------------------------------------------- backfill
def test_a_backfill_asks_at_a_low_cadence_and_agrees_with_the_sample(krx, replay, universe_db, market):
    import random

    from krxflow.calendar import trading_days
    from krxflow.krx.universe import backfill_checkpoints, backfill_universe

    first, last = dt.date(2023, 1, 2), dt.date(2023, 12, 28)
    result = backfill_universe(krx, first, last)
    checkpoints = backfill_checkpoints(first, last)
    assert len(checkpoints) == 12 + 2 + 1  # months, two rebalances (June's is not a month's first), the last day
    quarters = [d for i, d in enumerate(checkpoints) if d.month in (1, 4, 7, 10) and d.month != checkpoints[i - 1].month
                or i == 0]
    assert replay.received["MDCSTAT03901"] == 2 * len(checkpoints)
    assert replay.received["MDCSTAT00601"] == 3 * len(checkpoints) + sum(len(_sectors_of(market, d)) for d in quarters)
    assert replay.received["MDCSTAT23801"] == 1
    assert result["requests"] == replay.total
    for day in random.Random(7).sample(trading_days(first, last), 10):
        if day in checkpoints:  # between checkpoints a change is dated at the next one (a low cadence)
            assert _members(universe_db, "1028", day) == set(sample_universe.core_members(market, "1028", day))
    rebalanced = [d for d in checkpoints if d.month in (6, 12) and d.day > 7]
    for day in rebalanced:
        assert _members(universe_db, "2203", day) == set(sample_universe.core_members(market, "2203", day))
