"""ETFs and ETNs (issue 27, point 4): every product's daily prices, NAV/IV and index, and their master.

Through pykrx's real requests and the offline KRX replay (requests counted at its wire, logins
included) into the real Postgres through the batched hook: two requests a session (plus the base
info once per new code), the rows equal to the sample market's, reruns that change nothing, a
backfill in any order that gives the same master, and bad input (an empty answer, KRX's rows of
"-" for a day it has not published, a changed answer, a failure mid-way) that writes nothing.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from krxflow.krx import errors
from krxflow.sample import market_etps
from krxflow.sample.market import SampleMarket, SampleSource
from tests.fakes.krx_replay import KrxReplay

TICKERS = 40
DAY = dt.date(2024, 1, 3)
NEXT = dt.date(2024, 1, 4)
ETP_TABLES = ["krx_etps", "krx_etp_prices", "load_stats"]


@pytest.fixture
def market():
    return SampleMarket(TICKERS)


@pytest.fixture
def etp_db(clean_db):
    from psycopg import sql

    clean_db.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, ETP_TABLES))))
    return clean_db


@pytest.fixture
def krx(monkeypatch, redis_client):
    """A pykrx source logged in through the krx_default Connection (the shared login), no pacing delay."""
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.krx.source import PykrxSource

    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    reset_pykrx_state()
    yield PykrxSource(min_interval=0)
    reset_pykrx_state()


@pytest.fixture
def replay(market):
    with KrxReplay(market, require_login=True) as fake:
        yield fake


def _counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("krx_etps", "krx_etp_prices")}


def _trading(market, kind: str, day: dt.date) -> pd.DataFrame:
    return market_etps.day_frame(market, kind, day)


# ---------------------------------------------------------------------------- requests at the wire
def test_a_session_is_two_requests_and_new_codes_ask_the_base_info_once(krx, replay, etp_db, market):
    from krxflow.krx.etps import load_etps

    first = load_etps(krx, DAY, info=True)
    assert dict(replay.received) == {"login_page": 1, "login_jsp": 1, "login": 1, "MDCSTAT04301": 1,
                                     "MDCSTAT06401": 1, "MDCSTAT04601": 1, "MDCSTAT06701": 1}
    assert first["requests"] == replay.total == 7  # the shared login is counted with the load's requests
    assert (first["day_requests"], first["info_requests"]) == (5, 2)
    etfs, etns = _trading(market, "ETF", DAY), _trading(market, "ETN", DAY)
    assert first["rows"] == {"ETF": len(etfs), "ETN": len(etns)} and len(etfs) > 5 and len(etns) >= 1
    assert first["new_products"] == len(etfs) + len(etns)
    # the next session: the login is shared, every code is described — two requests, nothing else
    before = replay.total
    second = load_etps(krx, NEXT, info=True)
    assert replay.total - before == 2 == second["requests"]
    assert [e["kind"] for e in replay.wire()[before:]] == ["MDCSTAT04301", "MDCSTAT06401"]
    assert [e["params"]["trdDd"] for e in replay.wire()[before:]] == ["20240104", "20240104"]
    # an old session (a backfill) never asks the base info, even for a code it has not described
    etp_db.execute("UPDATE krx_etps SET info_checked_on = NULL")
    before = replay.total
    load_etps(krx, dt.date(2023, 12, 28))
    assert replay.total - before == 2


def test_a_holiday_sends_nothing_and_writes_nothing(krx, replay, etp_db):
    from krxflow.krx.etps import load_etps

    result = load_etps(krx, dt.date(2024, 2, 9))  # Seollal
    assert result["skipped"] and replay.total == 0
    assert _counts(etp_db) == {"krx_etps": 0, "krx_etp_prices": 0}


# ---------------------------------------------------------------------------- the rows
def test_the_rows_are_the_sample_markets_and_track_its_indices(krx, replay, etp_db, market):
    from krxflow.krx.etps import load_etps
    from krxflow.sample.market_reports import index_prices

    load_etps(krx, DAY, info=True)
    stored = pd.DataFrame(etp_db.execute(
        "SELECT p.code, e.kind, e.name, e.issuer, e.multiplier::float8, e.underlying_index, e.isin, p.open, p.high, "
        "p.low, p.close, p.nav::float8, p.volume, p.listed_units, p.net_assets, p.index_close::float8 "
        "FROM krx_etp_prices p JOIN krx_etps e USING (code) WHERE p.trade_date = %s ORDER BY p.code", (DAY,)
    ).fetchall(), columns=["code", "kind", "name", "issuer", "multiplier", "index", "isin", "open", "high", "low",
                           "close", "nav", "volume", "units", "net_assets", "index_close"]).set_index("code")
    expected = pd.concat([_trading(market, k, DAY) for k in ("ETF", "ETN")]).set_index("code").sort_index()
    assert list(stored.index) == list(expected.index)
    for col in ("open", "high", "low", "close", "volume"):
        assert stored[col].tolist() == expected[col].tolist(), col
    assert stored["nav"].tolist() == pytest.approx(expected["nav"].tolist(), abs=0.005)
    assert stored["units"].tolist() == expected["listed_units"].tolist()
    products = {p.code: p for k in ("ETF", "ETN") for p in market_etps.products(market, k)}
    assert stored["issuer"].tolist() == [products[c].issuer for c in stored.index]
    assert stored["multiplier"].tolist() == [products[c].multiplier for c in stored.index]
    assert stored["isin"].str.match(r"^KR[7G]").all() and stored["name"].notna().all()
    # the index close is the sample index's of the day, and the price stays close to the NAV
    closes = index_prices(market, DAY).set_index("name")["close"]
    assert stored["index_close"].tolist() == pytest.approx([closes[i] for i in stored["index"]])
    assert ((stored["close"] - stored["nav"]).abs() / stored["nav"] < 0.01).all()
    # a 1x product's NAV follows its index: tracking differences of a few hundredths of a point at most
    load_etps(krx, NEXT)
    tracking = pd.DataFrame(etp_db.execute(
        "SELECT t.code, e.multiplier::float8, t.tracking_difference::float8, t.deviation_rate::float8 "
        "FROM krx_etp_tracking t JOIN krx_etps e USING (code) WHERE t.trade_date = %s", (NEXT,)).fetchall(),
        columns=["code", "multiplier", "difference", "deviation"])
    ones = tracking[tracking["multiplier"] == 1]
    assert len(ones) and (ones["difference"].abs() <= 0.05).all(), ones
    assert (tracking["deviation"].abs() < 1).all()
    quality = etp_db.execute("SELECT status, details FROM load_stats WHERE operation = 'quality_check'").fetchall()
    assert quality == []  # the check is its own step
    from krxflow.krx.etps import check_etps

    checked = check_etps(NEXT)
    assert checked["status"] == "ok" and checked["rows"] == len(tracking) and checked["far_from_nav"] == 0


def test_a_rerun_changes_nothing(etp_db, market):
    from krxflow.krx.etps import load_etps

    source = SampleSource(TICKERS)
    load_etps(source, DAY, info=True)
    master = etp_db.execute("SELECT * FROM krx_etps ORDER BY code").fetchall()
    again = load_etps(source, DAY, info=True)
    assert (again["inserted"], again["updated"], again["new_products"]) == (0, 0, 0)
    assert again["unchanged"] == sum(again["rows"].values())
    assert etp_db.execute("SELECT * FROM krx_etps ORDER BY code").fetchall() == master


# ---------------------------------------------------------------------------- backfill by date
def _window_with_a_delisting(market) -> tuple[list[dt.date], str]:
    """Sessions around the first delisting of a sample ETF or ETN (the product's last two sessions and
    the two after), and that product's code."""
    from krxflow.sample.sessions import sessions

    every = [p for k in ("ETF", "ETN") for p in market_etps.products(market, k) if p.delisted is not None]
    gone = min(every, key=lambda p: (p.delisted, p.code))
    days = [sessions()[i].astype(dt.date) for i in range(gone.delisted - 2, gone.delisted + 2)]
    return days, gone.code


def test_a_backfill_in_any_order_gives_the_same_master_with_delistings(etp_db):
    from krxflow.krx.etps import load_etps

    market = SampleMarket(300)  # ~90 ETFs and ~42 ETNs: a few are delisted
    source = SampleSource(300)
    days, code = _window_with_a_delisting(market)
    snapshots = []
    for order in (days, [days[2], days[0], days[3], days[1]], list(reversed(days))):
        etp_db.execute("TRUNCATE krx_etps, krx_etp_prices")
        for day in order:
            load_etps(source, day, info=False)
        snapshots.append(etp_db.execute(
            "SELECT code, kind, name, first_seen, last_seen, delisted, delisted_on FROM krx_etps ORDER BY code"
        ).fetchall())
    assert snapshots[0] == snapshots[1] == snapshots[2]
    gone = {r[0]: r for r in snapshots[0]}[code]
    assert gone[4] == days[1] and gone[5] is True and gone[6] == days[2]  # last seen, then KRX's first day without
    rows = dict(etp_db.execute("SELECT trade_date, count(*) FROM krx_etp_prices GROUP BY 1").fetchall())
    expected = {d: sum(len(_trading(market, k, d)) for k in ("ETF", "ETN")) for d in days}
    assert rows == expected
    listed = {r[0] for r in etp_db.execute("SELECT code FROM etps_on(%s)", (days[1],))}
    assert code in listed and code not in {r[0] for r in etp_db.execute("SELECT code FROM etps_on(%s)", (days[2],))}


# ---------------------------------------------------------------------------- bad input and faults
def test_an_empty_answer_writes_nothing(krx, replay, etp_db):
    from krxflow.krx.etps import load_etps

    replay.fail("MDCSTAT06401", "empty")
    with pytest.raises(errors.KrxEmptyAnswerError, match="no ETN prices"):
        load_etps(krx, DAY)
    assert replay.received["MDCSTAT04301"] == 1  # the ETF answer came, and was not written alone
    assert _counts(etp_db) == {"krx_etps": 0, "krx_etp_prices": 0}


def test_a_day_krx_has_not_published_is_not_loaded(krx, market, etp_db, redis_client):
    """KRX answers a session it has not published yet with every product's values as "-"."""
    from krxflow.krx.etps import load_etps

    with KrxReplay(market, require_login=True, today=DAY) as early:
        rows = early._etfs({"trdDd": NEXT.strftime("%Y%m%d")})
        assert rows and all(r["TDD_CLSPRC"] == "-" and r["NAV"] == "-" for r in rows)
        with pytest.raises(errors.KrxEmptyAnswerError, match="not published"):
            load_etps(krx, NEXT)
        assert early.received["MDCSTAT04301"] == 1 and early.received["MDCSTAT06401"] == 0
    assert _counts(etp_db) == {"krx_etps": 0, "krx_etp_prices": 0}


def test_a_failure_mid_way_and_a_changed_answer_write_nothing(krx, replay, etp_db, monkeypatch):
    from krxflow.krx.etps import load_etps

    replay.fail("MDCSTAT06401", "500")
    with pytest.raises(errors.KrxHttpError):
        load_etps(krx, DAY)
    assert _counts(etp_db) == {"krx_etps": 0, "krx_etp_prices": 0}

    real = market_etps.etp_answer

    def without_nav(market, kind, day, **kwargs):
        return [{k: v for k, v in row.items() if k != "NAV"} for row in real(market, kind, day, **kwargs)]

    monkeypatch.setattr(market_etps, "etp_answer", without_nav)
    with pytest.raises(errors.KrxBadAnswerError, match="lacks .*NAV"):
        load_etps(krx, DAY)
    assert _counts(etp_db) == {"krx_etps": 0, "krx_etp_prices": 0}


def test_half_the_products_gone_at_once_is_a_changed_answer(etp_db, monkeypatch):
    from krxflow.krx.etps import load_etps

    source = SampleSource(300)
    load_etps(source, DAY, info=False)
    before = _counts(etp_db)
    real = market_etps.etp_answer
    monkeypatch.setattr(market_etps, "etp_answer", lambda market, kind, day, **kw: real(market, kind, day, **kw)[::2])
    with pytest.raises(errors.KrxBadAnswerError, match="changed answer"):
        load_etps(source, NEXT, info=False)
    assert _counts(etp_db) == before


def test_multipliers_are_read_from_krxs_words():
    from krxflow.krx.etp_parsing import multiplier_of

    assert [multiplier_of(t) for t in ("일반 (1)", "2X 레버리지 (2)", "2X 인버스 (-2)", "일반", "-1X 인버스", "인버스",
                                       "2X 레버리지", "실물", None)] == [1, 2, -2, 1, -1, -1, 2, None, None]
