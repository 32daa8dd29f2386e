"""The sample source: a deterministic offline market with the real market's quirks and row shapes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from krxflow.sources import get_source
from krxflow.krx.interface import ADJUSTED_COLUMNS, DAILY_COLUMNS, LISTING_COLUMNS
from krxflow.sample.market import SampleMarket, SampleSource, isin_of, profile, tick_size, to_tick


@pytest.fixture(scope="module")
def big():
    return SampleSource(2_700)


def test_selected_by_configuration(monkeypatch):
    monkeypatch.setenv("KRXFLOW_SOURCE", "sample")
    assert get_source().name == "sample"
    monkeypatch.setenv("KRXFLOW_SOURCE", "nope")
    with pytest.raises(ValueError, match="KRXFLOW_SOURCE"):
        get_source()
    monkeypatch.delenv("KRXFLOW_SOURCE")
    from krxflow.sources import source_name

    assert source_name() == "pykrx"


def test_same_inputs_same_rows():
    one = SampleSource(50).daily_prices("2023-06-01")
    two = SampleMarket(50).day(dt.date(2023, 6, 1))[DAILY_COLUMNS]
    pd.testing.assert_frame_equal(one, two)
    assert SampleSource(50).history("005930", "2020-01-01", "2020-12-31").equals(
        SampleSource(50).history("005930", "2020-01-01", "2020-12-31"))


def test_the_whole_market_is_about_2700_tickers_over_both_markets(big):
    day = big.daily_prices("2024-01-03")
    listing = big.listing("2024-01-03")
    assert 2_400 < len(day) <= 2_700 and list(day.columns) == DAILY_COLUMNS
    assert list(listing.columns) == LISTING_COLUMNS and len(listing) == len(day)
    shares = listing["market"].value_counts(normalize=True)
    assert 0.3 < shares["KOSPI"] < 0.4 and 0.6 < shares["KOSDAQ"] < 0.7
    assert listing["isin"].map(lambda i: isin_of(i[3:9]) == i).all()
    assert isin_of("005930") == "KR7005930003"  # Samsung Electronics' real ISIN


def test_holidays_have_no_rows_and_sessions_follow_xkrx(big):
    assert big.daily_prices("2024-02-09").empty  # Seollal
    assert big.daily_prices("2024-01-06").empty  # Saturday
    history = big.history("005930", "2024-01-01", "2024-12-31")
    from krxflow.calendar import trading_days

    assert history["trade_date"].tolist() == trading_days("2024-01-01", "2024-12-31")


def test_prices_are_on_krx_ticks_and_within_the_daily_limit(big):
    day = big.daily_prices("2024-01-03").dropna(subset=["open"])
    for col in ("open", "high", "low", "close"):
        values = day[col].astype("int64").to_numpy()
        assert (values % tick_size(values.astype(float)) == 0).all(), col
    assert (day["low"] <= day[["open", "close"]].min(axis=1)).all()
    assert (day["high"] >= day[["open", "close"]].max(axis=1)).all()
    assert day["change_rate"].abs().max() <= 30.0
    assert list(to_tick(np.array([1_234.4, 4_998.0, 52_340.0, 612_345.0]))) == [1_234, 5_000, 52_300, 612_000]


def test_halts_splits_listings_and_delistings_exist(big):
    market = big.market
    profiles = [profile(t, i) for i, t in enumerate(market.tickers)]
    assert sum(p.halt is not None for p in profiles) > 50
    assert sum(any(e.kind == "split" for e in p.events) for p in profiles) > 30
    assert sum(p.listed > 0 for p in profiles) > 150
    assert sum(p.delisted is not None for p in profiles) > 60
    assert sum(p.renamed_at is not None for p in profiles) > 10
    new = next(p for p in profiles if p.listed > 300 and p.delisted is None)
    first_day = big.history(new.ticker, "2016-01-01", "2027-12-31", adjusted=False)["trade_date"].iloc[0]
    from krxflow.sample.market import sessions

    assert first_day == sessions()[new.listed].astype(dt.date)


def test_samsung_2018_split_and_halt():
    src = SampleSource(10)
    raw = src.history("005930", "2018-04-26", "2018-05-08", adjusted=False).set_index("trade_date")
    halted = raw.loc[[dt.date(2018, 4, 30), dt.date(2018, 5, 2), dt.date(2018, 5, 3)]]
    assert halted["open"].isna().all() and (halted["volume"] == 0).all()
    assert (halted["close"] == raw.loc[dt.date(2018, 4, 27), "close"]).all()
    assert raw.loc[dt.date(2018, 5, 4), "listed_shares"] == 50 * raw.loc[dt.date(2018, 4, 27), "listed_shares"]
    adjusted = src.history("005930", "2018-04-26", "2018-05-08")
    assert list(adjusted.columns) == ADJUSTED_COLUMNS
    assert abs(adjusted["close"].astype(float).pct_change().dropna()).max() < 0.3


def test_a_delisted_ticker_has_no_adjusted_series_and_is_listed_as_delisted():
    src = SampleSource(400)
    gone = src.delisted()
    assert len(gone) > 0 and set(gone.columns) == {"ticker", "name", "market", "isin"}
    ticker = gone["ticker"].iloc[0]
    assert src.history(ticker, "2016-01-01", "2027-12-31").empty
    assert not src.history(ticker, "2016-01-01", "2027-12-31", adjusted=False).empty
