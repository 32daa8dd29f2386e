"""db_matviews: daily_market_summary and weekly/monthly candles on a small known market (issue 5).

The data set (tests/fakes/upkeep_market.py) has a holiday, a 1:5 split and a halted day; expected
values are computed here independently with pandas from the same rows, plus hand-checked figures.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from tests.fakes import upkeep_market as market

pytestmark = pytest.mark.filterwarnings("ignore")


def _reset_indicators(pg):
    pg.execute("TRUNCATE daily_indicators")


@pytest.fixture
def candle_db(clean_db):
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import matviews

    _reset_indicators(clean_db)
    raw, adjusted = market.candle_market()
    market.write(BatchedPostgresHook(), market.STOCKS, raw, adjusted)
    matviews.refresh_all(clean_db)
    return clean_db, raw, adjusted


def _rows(pg, query: str) -> pd.DataFrame:
    cur = pg.execute(query)
    return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def test_matview_refresh_tolerates_empty_tables_and_goes_concurrent(clean_db):
    from krxflow.upkeep import matviews

    _reset_indicators(clean_db)
    for view in matviews.VIEWS:
        clean_db.execute(f"REFRESH MATERIALIZED VIEW {view} WITH NO DATA")  # noqa: S608 - fixed names
    first = matviews.refresh_all(clean_db)
    assert [(r.view, r.concurrently, r.rows) for r in first] == [(v, False, 0) for v in matviews.VIEWS]
    second = matviews.refresh_all(clean_db)
    assert [(r.view, r.concurrently, r.rows) for r in second] == [(v, True, 0) for v in matviews.VIEWS]
    with pytest.raises(matviews.MatviewError):
        matviews.refresh(clean_db, "stocks")


def test_matview_daily_market_summary_matches_pandas(candle_db):
    pg, raw, _ = candle_db
    got = _rows(pg, "SELECT * FROM daily_market_summary ORDER BY trade_date, market")

    frame = raw.merge(pd.DataFrame(market.STOCKS), on="ticker").sort_values(["ticker", "trade_date"])
    fallback = frame.groupby("ticker")["close"].pct_change().mul(100).round(2)
    frame["ret"] = frame["change_rate"].astype("float64").fillna(fallback)
    traded = frame[frame["volume"] > 0]
    expected = traded.groupby(["trade_date", "market"]).agg(
        tickers_traded=("ticker", "size"), trading_value=("trading_value", "sum"), mean_return=("ret", "mean"),
        advancers=("ret", lambda s: int((s > 0).sum())), decliners=("ret", lambda s: int((s < 0).sum())),
        unchanged=("ret", lambda s: int((s == 0).sum()))).reset_index()
    assert len(got) == len(expected) == len(market.candle_days()) * 2
    merged = got.merge(expected, on=["trade_date", "market"], suffixes=("", "_exp"))
    assert len(merged) == len(got)
    for column in ("tickers_traded", "advancers", "decliners", "unchanged"):
        assert (merged[column] == merged[f"{column}_exp"]).all(), column
    assert (merged["trading_value"].astype("int64") == merged["trading_value_exp"]).all()
    assert (merged["mean_return"].astype(float) - merged["mean_return_exp"]).abs().max() < 1e-4

    # hand-checked: holidays have no row; the split day is not a crash; the halted ticker is not traded
    assert not set(got["trade_date"]) & market.HOLIDAYS
    split_day = got[(got["trade_date"] == market.SPLIT_DAY) & (got["market"] == "KOSPI")].iloc[0]
    raw_split = raw[(raw["ticker"] == market.SPLIT_TICKER) & (raw["trade_date"] == market.SPLIT_DAY)].iloc[0]
    assert abs(raw_split["change_rate"]) < 30  # KRX's rate against the base price, not -80 %
    halted = got[(got["trade_date"] == market.HALTED_DAY) & (got["market"] == "KOSPI")].iloc[0]
    assert (halted["tickers_traded"], halted["halted"]) == (1, 1)
    assert split_day["tickers_traded"] == 2


def _expected_candles(frame: pd.DataFrame, period_start, adjusted: bool) -> pd.DataFrame:
    frame = frame.sort_values(["ticker", "trade_date"]).copy()
    frame["period_start"] = frame["trade_date"].map(period_start)
    grouped = frame.groupby(["ticker", "period_start"])
    out = grouped.agg(open=("open", lambda s: s.dropna().iloc[0] if s.notna().any() else None),
                      high=("high", "max"), low=("low", "min"), close=("close", "last"),
                      volume=("volume", "sum"), trading_days=("close", "size")).reset_index()
    out["trading_value"] = None if adjusted else grouped["trading_value"].sum().to_numpy()
    out["adjusted"] = adjusted
    return out


@pytest.mark.parametrize("view, period_start", [
    ("weekly_candles", lambda d: d - dt.timedelta(days=d.weekday())),
    ("monthly_candles", lambda d: d.replace(day=1)),
])
def test_matview_candles_match_pandas(candle_db, view, period_start):
    pg, raw, adjusted = candle_db
    got = _rows(pg, f"SELECT * FROM {view} ORDER BY ticker, adjusted, period_start")  # noqa: S608
    expected = pd.concat([_expected_candles(raw, period_start, False),
                          _expected_candles(adjusted, period_start, True)])
    merged = got.merge(expected, on=["ticker", "adjusted", "period_start"], suffixes=("", "_exp"))
    assert len(merged) == len(got) == len(expected)
    for column in ("open", "high", "low", "close", "volume", "trading_days"):
        assert (merged[column].astype(float) - merged[f"{column}_exp"].astype(float)).abs().max() < 1e-9, column
    raw_rows = merged[~merged["adjusted"]]
    assert (raw_rows["trading_value"].astype(float) == raw_rows["trading_value_exp"].astype(float)).all()
    assert merged.loc[merged["adjusted"], "trading_value"].isna().all()
    assert set(got["period_start"].map(lambda d: d.weekday() if view == "weekly_candles" else d.day)) == {
        0 if view == "weekly_candles" else 1}


def test_matview_weekly_candles_hand_checked(candle_db):
    pg, raw, _ = candle_db

    def candle(ticker, adjusted, start):
        return pg.execute("SELECT open, high, low, close, volume, trading_days, first_date FROM weekly_candles "
                          "WHERE ticker = %s AND adjusted = %s AND period_start = %s",
                          (ticker, adjusted, start)).fetchone()

    def day(ticker, d):
        return raw[(raw["ticker"] == ticker) & (raw["trade_date"] == d)].iloc[0]

    # the halted Wednesday (2024-02-07) neither opens nor bounds the week; its carried close is not last
    week = dt.date(2024, 2, 5)
    days = [week + dt.timedelta(days=i) for i in range(4)]  # Mon..Thu; Fri 02-09 is Seollal
    b = [day(market.HALTED_TICKER, d) for d in days]
    o, h, lo, c, v, n, first = candle(market.HALTED_TICKER, False, week)
    assert n == 4 and first == week
    assert float(o) == float(b[0]["open"]) and float(c) == float(b[3]["close"])
    assert v == sum(int(x["volume"]) for x in b)
    traded = [x for x in b if x["volume"] > 0]
    assert len(traded) == 3
    assert float(h) == max(float(x["high"]) for x in traded) and float(lo) == min(float(x["low"]) for x in traded)

    # the split week starts on Tuesday 02-13 (Monday was a holiday): raw spans both price levels,
    # the adjusted series does not
    week = dt.date(2024, 2, 12)
    o, h, lo, c, v, n, first = candle(market.SPLIT_TICKER, False, week)
    tuesday = day(market.SPLIT_TICKER, dt.date(2024, 2, 13))
    assert first == dt.date(2024, 2, 13) and n == 4
    assert float(o) == float(tuesday["open"]) and float(h) == float(tuesday["high"])
    ao, ah, alo, ac, av, an, _ = candle(market.SPLIT_TICKER, True, week)
    assert ao == Decimal(str(int(tuesday["open"]))) / 5 and ac == c and ah < h
    assert av > v  # adjusted volumes before the split are multiplied by the ratio
