"""daily_indicators: values equal an independent reference; incremental runs write only what changed.

The reference below is written per ticker with plain pandas rolling windows for the moving
averages and explicit Python loops for every recursive series (EMA, Wilder, MACD signal), so it
shares no code path with krxflow.indicators (pandas' compiled rolling/EWM kernels run once over all
tickers at once). krxflow.indicators (the maths) is also pinned to the bit: on a fixed input its
output hashes to what it gave before it moved out of krxflow.upkeep.indicators (the I/O).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from tests.fakes import upkeep_market as market

COLUMNS = ["ma5", "ma20", "ma60", "ma120", "ma200", "bb_middle", "bb_upper", "bb_lower", "rsi14", "macd",
           "macd_signal", "macd_hist", "stoch_k", "stoch_d"]


def _ema(values: list[float], span: int) -> list[float]:
    alpha, out = 2.0 / (span + 1), []
    for value in values:
        out.append(value if not out else alpha * value + (1 - alpha) * out[-1])
    return out


def reference(one: pd.DataFrame) -> pd.DataFrame:
    """Indicators of one ticker's full history (rows sorted by day)."""
    close = one["close"].astype(float).reset_index(drop=True)
    n = len(close)
    out = pd.DataFrame(index=range(n))
    for w in (5, 20, 60, 120, 200):
        out[f"ma{w}"] = close.rolling(w).mean()
    std = close.rolling(20).std(ddof=0)
    out["bb_middle"], out["bb_upper"], out["bb_lower"] = out["ma20"], out["ma20"] + 2 * std, out["ma20"] - 2 * std

    rsi = [math.nan] * n
    if n > 14:
        changes = [close[i] - close[i - 1] for i in range(1, n)]
        gains = [max(c, 0.0) for c in changes]
        losses = [max(-c, 0.0) for c in changes]
        avg_gain, avg_loss = sum(gains[:14]) / 14, sum(losses[:14]) / 14
        for i in range(14, n):
            if i > 14:
                avg_gain = (avg_gain * 13 + gains[i - 1]) / 14
                avg_loss = (avg_loss * 13 + losses[i - 1]) / 14
            rsi[i] = 50.0 if avg_gain + avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss) \
                if avg_loss > 0 else 100.0
    out["rsi14"] = rsi

    fast, slow = _ema(close.tolist(), 12), _ema(close.tolist(), 26)
    macd = [fast[i] - slow[i] if i >= 25 else math.nan for i in range(n)]
    signal = [math.nan] * n
    if n > 25:
        smoothed = _ema(macd[25:], 9)
        for j, value in enumerate(smoothed):
            if j >= 8:
                signal[25 + j] = value
    out["macd"], out["macd_signal"] = macd, signal
    out["macd_hist"] = out["macd"] - out["macd_signal"]

    high = [max(h, c) if not pd.isna(h) else c for h, c in zip(one["high"].astype(float), close)]
    low = [min(lo, c) if not pd.isna(lo) else c for lo, c in zip(one["low"].astype(float), close)]
    fast_k = [math.nan] * n
    for i in range(13, n):
        hh, ll = max(high[i - 13:i + 1]), min(low[i - 13:i + 1])
        fast_k[i] = 50.0 if hh == ll else 100.0 * (close[i] - ll) / (hh - ll)
    slow_k = pd.Series(fast_k).rolling(3).mean()
    out["stoch_k"], out["stoch_d"] = slow_k, slow_k.rolling(3).mean()
    out.insert(0, "trade_date", one["trade_date"].to_numpy())
    return out


def _stored(pg, adjusted: bool) -> pd.DataFrame:
    cur = pg.execute("SELECT * FROM daily_indicators WHERE adjusted = %s ORDER BY ticker, trade_date", (adjusted,))
    return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def _assert_matches(stored: pd.DataFrame, prices: pd.DataFrame) -> None:
    for ticker, one in prices.sort_values(["ticker", "trade_date"]).groupby("ticker"):
        mine = stored[stored["ticker"] == ticker].reset_index(drop=True)
        ref = reference(one.reset_index(drop=True))
        assert list(mine["trade_date"]) == list(ref["trade_date"])
        for column in COLUMNS:
            got, want = mine[column].astype(float).to_numpy(), ref[column].astype(float).to_numpy()
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{ticker} {column} NULLs")
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-7, equal_nan=True, err_msg=f"{ticker} {column}")
        # full history: every indicator has a value from its warm-up on, to the last day
        assert mine["ma200"].notna().sum() == len(one) - 199
        assert mine.iloc[-1][COLUMNS].notna().all()


@pytest.fixture
def indicator_db(clean_db):
    from krxflow.hooks import BatchedPostgresHook

    clean_db.execute("TRUNCATE daily_indicators")
    raw, adjusted = market.indicator_market()
    market.write(BatchedPostgresHook(), market.STOCKS, raw, adjusted)
    return clean_db, raw, adjusted


def test_indicator_values_equal_independent_reference(indicator_db):
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import indicators

    pg, raw, adjusted = indicator_db
    reports = indicators.update(pg, BatchedPostgresHook(), chunk_tickers=2)
    by_source = {r.source: r for r in reports}
    assert by_source["daily_prices"].inserted == len(raw) and by_source["daily_prices"].rewritten == 3
    assert by_source["daily_prices_adjusted"].inserted == len(adjusted)
    assert all(r.rejected == 0 for r in reports)
    # an empty table: every chunk of both series is COPYed straight in (the writer's fast path)
    assert all(chunk.endswith("(fast path)") for r in reports for chunk in r.chunks)
    _assert_matches(_stored(pg, False), raw)
    _assert_matches(_stored(pg, True), adjusted)
    # the halted days (NULL high/low) do not blank the stochastic
    halted = _stored(pg, False).query("ticker == '000020'").iloc[100:116]
    assert halted["stoch_k"].notna().all()


def test_indicator_incremental_runs_write_only_changes(indicator_db):
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import indicators

    pg, raw, adjusted = indicator_db
    hook = BatchedPostgresHook()
    # first 300 days, then the last 20 arrive: only those are written, values still exact
    cut = sorted(raw["trade_date"].unique())[300]
    pg.execute("DELETE FROM daily_prices WHERE trade_date >= %s", (cut,))
    pg.execute("DELETE FROM daily_prices_adjusted WHERE trade_date >= %s", (cut,))
    indicators.update(pg, hook)
    market.write(hook, None, raw[raw["trade_date"] >= cut], adjusted[adjusted["trade_date"] >= cut])
    report = {r.source: r for r in indicators.update(pg, hook)}["daily_prices"]
    assert (report.appended, report.rewritten, report.rows_in, report.inserted, report.updated) == (3, 0, 60, 60, 0)
    _assert_matches(_stored(pg, False), raw)

    # nothing new: nothing written
    again = indicators.update(pg, hook)
    assert [(r.up_to_date, r.rows_in) for r in again] == [(3, 0), (1, 0)]

    # a new split rewrites the adjusted history of that ticker: every row changes
    resplit = adjusted.copy()
    for column in ("open", "high", "low", "close"):
        resplit[column] = resplit[column] / 2
    market.write(hook, None, raw.iloc[:0], resplit)
    report = {r.source: r for r in indicators.update(pg, hook)}["daily_prices_adjusted"]
    assert (report.rewritten, report.rows_in) == (1, len(resplit))
    assert report.updated == len(resplit)
    _assert_matches(_stored(pg, True), resplit)

    # full=True offers every row again; the hook leaves identical rows untouched
    full = {r.source: r for r in indicators.update(pg, hook, full=True)}["daily_prices"]
    assert (full.rows_in, full.inserted, full.updated, full.unchanged) == (len(raw), 0, 0, len(raw))


def test_indicator_update_tolerates_empty_tables(clean_db):
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import indicators

    clean_db.execute("TRUNCATE daily_indicators")
    reports = indicators.update(clean_db, BatchedPostgresHook())
    assert [(r.tickers, r.rows_in) for r in reports] == [(0, 0), (0, 0)]


def test_indicator_short_history_gives_nulls_not_errors():
    from krxflow import indicators

    raw, _ = market.indicator_market(days=10)
    values = indicators.compute(raw[["ticker", "trade_date", "high", "low", "close"]])
    assert values["ma5"].notna().any() and values[["ma20", "rsi14", "macd", "stoch_k"]].isna().all().all()
    with pytest.raises(ValueError):
        indicators.compute(raw.assign(close=None)[["ticker", "trade_date", "high", "low", "close"]])


def test_one_pass_over_many_tickers_equals_each_ticker_alone_to_the_bit():
    """Vectorised across tickers: histories of different lengths in one call (in any row order) give
    exactly, bit for bit, what each ticker's history gives alone; no value leaks across tickers."""
    from krxflow import indicators

    raw, _ = market.indicator_market()
    prices = raw[["ticker", "trade_date", "high", "low", "close"]]
    lengths = {"000010": len(prices), "000020": 150, "000030": 30}  # 000030 too short for MA200/MACD signal
    parts = [one.sort_values("trade_date").head(lengths[t]) for t, one in prices.groupby("ticker")]
    together = indicators.compute(pd.concat(parts).sample(frac=1.0, random_state=7))
    assert together["ticker"].tolist() == sorted(together["ticker"].tolist())
    for part in parts:
        ticker = part["ticker"].iloc[0]
        alone = indicators.compute(part)
        mine = together[together["ticker"] == ticker].reset_index(drop=True)
        assert mine["trade_date"].tolist() == alone["trade_date"].tolist()
        for column in COLUMNS:
            np.testing.assert_array_equal(mine[column].to_numpy(), alone[column].to_numpy(), err_msg=f"{ticker} {column}")
    short = together[together["ticker"] == "000030"]
    assert short["ma200"].isna().all() and short["macd"].notna().sum() == 30 - 25


def fixed_prices() -> pd.DataFrame:
    """Four tickers of known prices (no random generator: an integer LCG): a long history, one with a
    flat stretch (RSI and stochastic at their "no move" values) and three halted days, one too short
    for most indicators, and one with 4-decimal (adjusted) prices."""
    days = pd.bdate_range("2021-01-04", periods=260).date
    rows, state = [], 12345

    def step() -> float:
        nonlocal state
        state = (state * 1103515245 + 12345) % 2**31
        return state / 2**31

    for ticker, length, start, decimals in (("000010", 260, 50_000, 0), ("000020", 230, 9_000, 0),
                                            ("000030", 40, 1_500, 0), ("000040", 250, 1234.5678, 4)):
        close = start
        for i, day in enumerate(days[:length]):
            close = max(10.0, close * (1 + (step() - 0.5) * 0.08))
            if ticker == "000020" and 60 <= i < 80:
                close = 9_000.0
            c = round(close, decimals)
            spread = round(c * step() * 0.03, decimals)
            high, low = c + spread, c - round(c * step() * 0.03, decimals)
            if ticker == "000020" and 60 <= i < 80:
                high = low = c
            if ticker == "000020" and i in (100, 101, 102):
                high = low = None
            rows.append({"ticker": ticker, "trade_date": day, "high": high, "low": low, "close": c})
    return pd.DataFrame(rows)


#: sha256 (first 16 hex digits) of each output column's float64 bytes (NaN canonical) and its NaN
#: count, as computed by krxflow.upkeep.indicators.compute at 73757b5, before the maths moved.
PREVIOUS_OUTPUT = {
    "close": ("bc03f5eac98bbe9b", 0), "ma5": ("93e4ea707c351174", 16), "ma20": ("5c9e3a0e2bf11c76", 76),
    "ma60": ("bdfb022ee6e562de", 217), "ma120": ("20894b740e94525c", 397), "ma200": ("560c203cbf8d3deb", 637),
    "bb_middle": ("5c9e3a0e2bf11c76", 76), "bb_upper": ("0d3286389dc31e0e", 76),
    "bb_lower": ("12df54ff6410444c", 76), "rsi14": ("da9277c3a1a118de", 56), "macd": ("04a8c289ee2a2e25", 100),
    "macd_signal": ("145453f0852c840b", 132), "macd_hist": ("b6d1d49a05cf41dd", 132),
    "stoch_k": ("e8260c35654d5c39", 60), "stoch_d": ("34b6b56023e300c7", 68),
}


def test_pure_maths_equals_the_previous_output_to_the_bit():
    """krxflow.indicators.compute, on a fixed input in shuffled row order, gives every value the
    indicator fill gave before its maths was split from its database I/O (same bits, same NULLs)."""
    from krxflow import indicators

    prices = fixed_prices()
    out = indicators.compute(prices.sample(frac=1.0, random_state=3))
    assert len(out) == len(prices) == 780
    assert list(out.columns) == ["ticker", "trade_date", "close", *indicators.INDICATOR_COLUMNS]
    assert out["ticker"].tolist() == sorted(prices["ticker"].tolist())
    got = {}
    for column in PREVIOUS_OUTPUT:
        values = out[column].to_numpy(dtype="float64")
        canonical = np.where(np.isnan(values), np.nan, values)
        got[column] = (hashlib.sha256(canonical.tobytes()).hexdigest()[:16], int(np.isnan(values).sum()))
    assert got == PREVIOUS_OUTPUT
    # the fixed input reaches the cases it is there for
    flat = out[(out["ticker"] == "000020")].iloc[77:80]
    assert (flat["stoch_k"] == 50.0).all() and (flat["stoch_d"] == 50.0).all()
    assert out[out["ticker"] == "000030"]["ma200"].isna().all()
