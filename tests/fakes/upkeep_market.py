"""Small known market data sets for the upkeep tests (issue 5), written through the hook.

``candle_market()`` — three tickers over 2024-01-29 .. 2024-03-08 with
  * the Seollal holidays (Fri 2024-02-09, Mon 2024-02-12) and 2024-03-01 missing (no rows at all),
  * a 1:5 split of 000010 effective 2024-02-14 (raw prices drop, KRX's change_rate stays small;
    the adjusted series divides earlier prices by 5),
  * a halted day for 000020 on 2024-02-07 (open/high/low NULL, close carried, volume 0),
  * 000030 (KOSDAQ) loaded without change_rate, so returns come from close-to-close changes.

``indicator_market()`` — three tickers with ~320 business days of random-walk prices, two halted
days, and an adjusted series (a split) for one of them: enough history for MA200 and everything else.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

HOLIDAYS = {dt.date(2024, 2, 9), dt.date(2024, 2, 12), dt.date(2024, 3, 1)}
SPLIT_TICKER, SPLIT_DAY, SPLIT_RATIO = "000010", dt.date(2024, 2, 14), 5
HALTED_TICKER, HALTED_DAY = "000020", dt.date(2024, 2, 7)
NO_RATE_TICKER = "000030"
STOCKS = [
    {"ticker": "000010", "name": "Alpha", "market": "KOSPI"},
    {"ticker": "000020", "name": "Beta", "market": "KOSPI"},
    {"ticker": "000030", "name": "Gamma", "market": "KOSDAQ"},
]


def candle_days() -> list[dt.date]:
    days, day = [], dt.date(2024, 1, 29)
    while day <= dt.date(2024, 3, 8):
        if day.weekday() < 5 and day not in HOLIDAYS:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def candle_market() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(daily_prices rows, daily_prices_adjusted rows) as DataFrames."""
    raw, adjusted = [], []
    for ticker, base in (("000010", 50_000), ("000020", 8_000), ("000030", 1_200)):
        previous_close = None
        for i, day in enumerate(candle_days()):
            # a deterministic zig-zag: up three days, down two, with one flat day for 000030
            step = (1, 2, 3, -2, -1)[i % 5] * (base // 500)
            close = base + step * (i % 7)
            if ticker == NO_RATE_TICKER and i == 10:
                close = previous_close  # an unchanged day
            factor = SPLIT_RATIO if ticker == SPLIT_TICKER and day >= SPLIT_DAY else 1
            close = close // factor
            open_, high, low = close - base // 1000 // factor, close + base // 200 // factor, close - base // 100 // factor
            volume = 1_000 + 37 * i + (5_000 if ticker == SPLIT_TICKER and day >= SPLIT_DAY else 0)
            halted = ticker == HALTED_TICKER and day == HALTED_DAY
            if halted:
                close, open_, high, low, volume = previous_close, None, None, None, 0
            if previous_close is None:
                rate = 0.0
            else:
                basis = previous_close / (SPLIT_RATIO if ticker == SPLIT_TICKER and day == SPLIT_DAY else 1)
                rate = round(100.0 * (close - basis) / basis, 2)
            raw.append({
                "ticker": ticker, "trade_date": day, "open": open_, "high": high, "low": low, "close": close,
                "volume": volume, "trading_value": 0 if halted else volume * close,
                "change_rate": None if ticker == NO_RATE_TICKER else (0.0 if halted else rate),
            })
            to_adjusted = SPLIT_RATIO if ticker == SPLIT_TICKER and day < SPLIT_DAY else 1
            adjusted.append({
                "ticker": ticker, "trade_date": day,
                "open": None if open_ is None else open_ / to_adjusted,
                "high": None if high is None else high / to_adjusted,
                "low": None if low is None else low / to_adjusted,
                "close": close / to_adjusted, "volume": volume * to_adjusted,
                "change_rate": None,
            })
            previous_close = close
    return pd.DataFrame(raw), pd.DataFrame(adjusted)


def business_days(first: dt.date, count: int) -> list[dt.date]:
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def indicator_market(days: int = 320, seed: int = 20240101) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(daily_prices rows, daily_prices_adjusted rows) with random-walk prices."""
    rng = np.random.default_rng(seed)
    calendar = business_days(dt.date(2023, 1, 2), days)
    raw, adjusted = [], []
    for ticker, start in (("000010", 60_000), ("000020", 9_000), ("000030", 1_500)):
        close = float(start)
        for i, day in enumerate(calendar):
            close = max(100.0, close * (1 + rng.normal(0, 0.02)))
            c = int(round(close))
            spread = max(1, int(c * abs(rng.normal(0, 0.01))))
            high, low = c + spread, max(0, c - spread - int(rng.integers(0, spread + 1)))
            open_ = int(rng.integers(low, high + 1))
            halted = ticker == "000020" and i in (100, 101)
            if halted:
                c, open_, high, low = raw[-1]["close"], None, None, None
            raw.append({"ticker": ticker, "trade_date": day, "open": open_, "high": high, "low": low, "close": c,
                        "volume": 0 if halted else int(rng.integers(1_000, 100_000)), "trading_value": None,
                        "change_rate": None})
            close = float(c)
    frame = pd.DataFrame(raw)
    # an adjusted series for 000010: a 1:2 split after day 200 (earlier prices halved)
    alpha = frame[frame["ticker"] == "000010"].reset_index(drop=True)
    factor = np.where(np.arange(len(alpha)) < 200, 0.5, 1.0)
    for column in ("open", "high", "low", "close"):
        alpha[column] = alpha[column].astype("float64") * factor
    alpha["volume"] = (alpha["volume"] / factor).astype("int64")
    adjusted = alpha[["ticker", "trade_date", "open", "high", "low", "close", "volume"]]
    return frame, adjusted


def write(hook, stocks, prices: pd.DataFrame, adjusted: pd.DataFrame | None = None) -> None:
    """Write the data sets through the one writer (the way every loader does)."""
    if stocks:
        assert hook.upsert("stocks", stocks).rejected == 0
    assert hook.upsert("daily_prices", prices).rejected == 0
    if adjusted is not None:
        assert hook.upsert("daily_prices_adjusted", adjusted).rejected == 0
