"""Technical indicators of daily prices, vectorised across tickers (pure: no database, no I/O).

:func:`compute` takes the complete daily history of any number of tickers (ticker, trade_date,
high, low, close) and returns every indicator for every row. The database side — which tickers to
(re)compute, reading their prices, writing ``daily_indicators`` through the writer — is
:mod:`krxflow.upkeep.indicators`, as :mod:`krxflow.adjustment` (the maths) is to
:mod:`krxflow.krx.adjusting` (its reads and writes).

How it is fast (the whole market, ~7M rows, in seconds): no Python loop over tickers or rows. The
kernels are pandas' own compiled (Cython) ones: trailing windows (MAs, Bollinger, the stochastic's
highs/lows and smoothing) are one ``rolling`` call over all rows with windows bounded at each
ticker's first row (``pandas.api.indexers.BaseIndexer``); the recursive series (EMAs, Wilder's
averages, the MACD signal) are the ``ewm(adjust=False)`` kernel down a days x tickers grid. They
were chosen over ``scipy.signal.lfilter`` or numba because they perform the very floating-point
operations of the per-ticker pandas computation krxflow always used, so the values are identical
to the bit (a switch rewrites nothing: the writer skips unchanged rows) and nothing new is
installed or JIT-compiled in a task.

Definitions (each value is NaN until the ticker has enough rows; every row of a ticker counts,
halted days included, since their close is carried and their volume is 0):

* ``ma5 … ma200`` — simple mean of the last N closes.
* Bollinger(20, 2) — ``bb_middle`` = ma20, ``bb_upper/lower`` = ma20 ± 2 × the **population**
  standard deviation (ddof=0) of the last 20 closes.
* RSI(14), Wilder — gains/losses of close-to-close changes; the first average is the simple mean
  of the first 14 changes, then ``avg = (13 × avg + today) / 14``; ``RSI = 100 × gain / (gain + loss)``
  (50 when both are 0). First value on the 15th row.
* MACD(12, 26, 9) — EMAs with ``alpha = 2 / (N + 1)`` seeded with the first close (pandas
  ``ewm(adjust=False)``); ``macd = EMA12 − EMA26`` from the 26th row; ``macd_signal`` = EMA9 of
  macd seeded with its first value, from the 34th row; ``macd_hist = macd − macd_signal``.
* Stochastic(14, 3, 3), slow — fast %K = 100 × (close − lowest low) / (highest high − lowest low)
  over 14 rows, where each day's range is widened to include its close (a halted day, high/low
  NULL, counts as its close); 50 when the range is flat. ``stoch_k`` = 3-row mean of fast %K,
  ``stoch_d`` = 3-row mean of ``stoch_k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

MA_WINDOWS = (5, 20, 60, 120, 200)
BB_WINDOW, BB_WIDTH = 20, 2.0
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
STOCH_PERIOD, STOCH_SMOOTH_K, STOCH_SMOOTH_D = 14, 3, 3
#: The indicator columns :func:`compute` returns, in ``daily_indicators``' order.
INDICATOR_COLUMNS = [f"ma{n}" for n in MA_WINDOWS] + [
    "bb_middle", "bb_upper", "bb_lower", "rsi14", "macd", "macd_signal", "macd_hist", "stoch_k", "stoch_d"]


class _TickerWindows(BaseIndexer):
    """Trailing windows of ``window_size`` rows that never reach back past their ticker's first row.

    ``first`` holds, for every row of a frame sorted by ticker and day, the position of its
    ticker's first row. One rolling call over all tickers then runs pandas' compiled kernel once,
    and it restarts its sums at every ticker boundary exactly as a per-ticker (groupby) rolling does.
    """

    def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
        end = np.arange(1, num_values + 1, dtype=np.int64)
        return np.maximum(end - self.window_size, self.first), end


@dataclass(frozen=True)
class _Layout:
    """Where each row of a frame sorted by ticker and day sits: its ticker and its position there."""

    codes: np.ndarray  # ticker number of each row
    position: np.ndarray  # 0-based position in the ticker's history
    first: np.ndarray  # row number of the ticker's first row
    tickers: int
    length: int  # rows of the longest history

    @classmethod
    def of(cls, tickers: pd.Series) -> "_Layout":
        codes, _ = pd.factorize(tickers, sort=False)
        counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        first = starts[codes] if len(codes) else np.zeros(0, dtype=np.int64)
        position = np.arange(len(codes), dtype=np.int64) - first
        return cls(codes, position, first, len(counts), int(counts.max()) if len(counts) else 0)

    def rolling(self, values: np.ndarray, window: int, how: str, **kwargs) -> np.ndarray:
        """A per-ticker trailing-window statistic (``mean``, ``std``, ``max``, ``min``), NaN until ``window`` rows."""
        windows = pd.Series(values).rolling(_TickerWindows(window_size=window, first=self.first),
                                            min_periods=window)
        return getattr(windows, how)(**kwargs).to_numpy()

    def ewm(self, values: np.ndarray, **kwargs) -> np.ndarray:
        """A per-ticker recursive EMA (``adjust=False``: seeded with the ticker's first non-NaN value).

        The rows are laid out as a days x tickers grid (histories aligned on their first day, NaN
        after their last), so pandas' compiled EWM kernel runs down each ticker's column; trailing
        NaNs never feed back into a ticker's own values.
        """
        grid = np.full((self.tickers, self.length), np.nan)
        grid[self.codes, self.position] = values
        smoothed = pd.DataFrame(grid.T).ewm(adjust=False, **kwargs).mean().to_numpy()
        return smoothed[self.position, self.codes]

    def diff(self, values: np.ndarray) -> np.ndarray:
        """Change from the ticker's previous row (NaN on its first row)."""
        change = np.empty_like(values)
        change[0:1] = np.nan
        change[1:] = values[1:] - values[:-1]
        change[self.position == 0] = np.nan
        return change


def _ratio_or(numerator: np.ndarray, denominator: np.ndarray, flat: float) -> np.ndarray:
    """``100 x numerator / denominator``; ``flat`` where the denominator is 0, NaN where it is NaN."""
    positive = denominator > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = 100.0 * numerator / np.where(positive, denominator, np.nan)
    return np.where(positive, ratio, np.where(np.isnan(denominator), np.nan, flat))


def compute(prices: pd.DataFrame) -> pd.DataFrame:
    """Indicators for every row of ``prices`` (columns ticker, trade_date, high, low, close).

    Rows may hold many tickers; each ticker's rows must be its complete history. Returns a frame
    with ``ticker, trade_date, close`` and :data:`INDICATOR_COLUMNS`, sorted by ticker and day.

    Vectorised across tickers: no Python loop over tickers or rows. Trailing windows are one call
    of pandas' compiled rolling kernels over all rows, with windows bounded at each ticker's first
    row (:class:`_TickerWindows`); the recursive series (EMAs, Wilder's averages, the MACD signal)
    are pandas' compiled EWM kernel down a days x tickers grid. The kernels and the order of every
    floating-point operation are those of a per-ticker pandas computation, so the values are the
    same to the last bit.
    """
    frame = prices.sort_values(["ticker", "trade_date"], kind="stable").reset_index(drop=True)
    if frame["close"].isna().any():
        raise ValueError("every price row needs a close")
    close = frame["close"].to_numpy(dtype="float64", na_value=np.nan)
    high = np.fmax(frame["high"].to_numpy(dtype="float64", na_value=np.nan), close)  # fmax/fmin ignore a NULL
    low = np.fmin(frame["low"].to_numpy(dtype="float64", na_value=np.nan), close)
    rows = _Layout.of(frame["ticker"])
    row = rows.position
    out = {}

    for n in MA_WINDOWS:
        out[f"ma{n}"] = rows.rolling(close, n, "mean")
    std = rows.rolling(close, BB_WINDOW, "std", ddof=0)
    out["bb_middle"] = out[f"ma{BB_WINDOW}"]
    out["bb_upper"] = out["bb_middle"] + BB_WIDTH * std
    out["bb_lower"] = out["bb_middle"] - BB_WIDTH * std

    out["rsi14"] = _wilder_rsi(rows, close)

    ema_fast = rows.ewm(close, span=MACD_FAST)
    ema_slow = rows.ewm(close, span=MACD_SLOW)
    macd = np.where(row >= MACD_SLOW - 1, ema_fast - ema_slow, np.nan)
    signal = rows.ewm(macd, span=MACD_SIGNAL, min_periods=MACD_SIGNAL)
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, macd - signal

    highest = rows.rolling(high, STOCH_PERIOD, "max")
    lowest = rows.rolling(low, STOCH_PERIOD, "min")
    fast_k = _ratio_or(close - lowest, highest - lowest, 50.0)
    slow_k = rows.rolling(fast_k, STOCH_SMOOTH_K, "mean")
    slow_d = rows.rolling(slow_k, STOCH_SMOOTH_D, "mean")
    out["stoch_k"], out["stoch_d"] = np.clip(slow_k, 0.0, 100.0), np.clip(slow_d, 0.0, 100.0)
    return pd.DataFrame({"ticker": frame["ticker"], "trade_date": frame["trade_date"], "close": close,
                         **{name: out[name] for name in INDICATOR_COLUMNS}})


def _wilder_rsi(rows: _Layout, close: np.ndarray) -> np.ndarray:
    """Wilder's RSI: seeded with the simple mean of the first ``RSI_PERIOD`` changes, then smoothed.

    Wilder's smoothing is an EMA with ``alpha = 1 / period``; feeding the recursive EMA a series
    whose first value is the seed (earlier rows NaN, which ``adjust=False`` skips) gives exactly it.
    """
    change = rows.diff(close)
    averages = []
    for moves in (np.clip(change, 0.0, None), np.clip(-change, 0.0, None)):
        seed = rows.rolling(moves, RSI_PERIOD, "mean")
        fed = np.where(rows.position == RSI_PERIOD, seed, np.where(rows.position > RSI_PERIOD, moves, np.nan))
        averages.append(rows.ewm(fed, alpha=1.0 / RSI_PERIOD))
    gain, loss = averages
    return np.clip(_ratio_or(gain, gain + loss, 50.0), 0.0, 100.0)
