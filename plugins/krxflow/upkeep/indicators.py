"""Technical indicators over each ticker's full history, kept in the ``daily_indicators`` table.

Why a table filled by a task rather than a materialized view: EMAs, Wilder's RSI and the MACD
signal are recursive (each value depends on the previous one). SQL can only express that with a
recursive CTE, which is slow over ~3.5M rows per series, and a nightly ``REFRESH ... CONCURRENTLY``
would recompute and diff ~7M rows (raw + adjusted) to change one day per ticker. Here pandas
computes each ticker's whole history (so a chart window never starts with warm-up gaps) and only
rows that are new or changed are written, through :class:`~krxflow.hooks.BatchedPostgresHook`.

Definitions (each value is NULL until the ticker has enough rows; every row of a ticker counts,
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

How a run decides what to write, per source table and ticker (``queries/upkeep/indicator_plan.sql``):
up to date → nothing; new days only → the days after the last computed one; history changed (a
split rewrote the adjusted series, a correction) or ``full=True`` → the ticker's whole history
(the hook leaves unchanged rows untouched).
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

TABLE = "daily_indicators"
#: price table -> value of the ``adjusted`` column
SOURCES = {"daily_prices": False, "daily_prices_adjusted": True}
MA_WINDOWS = (5, 20, 60, 120, 200)
BB_WINDOW, BB_WIDTH = 20, 2.0
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
STOCH_PERIOD, STOCH_SMOOTH_K, STOCH_SMOOTH_D = 14, 3, 3
#: Tickers computed per chunk: bounds memory (~1,250 rows per ticker for 5 years).
DEFAULT_CHUNK_TICKERS = 400

INDICATOR_COLUMNS = [f"ma{n}" for n in MA_WINDOWS] + [
    "bb_middle", "bb_upper", "bb_lower", "rsi14", "macd", "macd_signal", "macd_hist", "stoch_k", "stoch_d"]
OUTPUT_COLUMNS = ["ticker", "adjusted", "trade_date", "close"] + INDICATOR_COLUMNS


def _per_ticker(grouped_result: pd.Series) -> pd.Series:
    """A groupby-rolling/ewm result (indexed by ticker, row) back on the frame's row index."""
    return grouped_result.reset_index(level=0, drop=True).sort_index()


def compute(prices: pd.DataFrame) -> pd.DataFrame:
    """Indicators for every row of ``prices`` (columns ticker, trade_date, high, low, close).

    Rows may hold many tickers; each ticker's rows must be its complete history. Returns a frame
    with ``ticker, trade_date, close`` and :data:`INDICATOR_COLUMNS`, sorted by ticker and day.
    """
    frame = prices.sort_values(["ticker", "trade_date"], kind="stable").reset_index(drop=True)
    if frame["close"].isna().any():
        raise ValueError("every price row needs a close")
    close = frame["close"].astype("float64")
    high = np.fmax(frame["high"].astype("float64"), close)  # fmax/fmin ignore a NULL high/low
    low = np.fmin(frame["low"].astype("float64"), close)
    tickers = frame["ticker"]
    row = frame.groupby("ticker", sort=False).cumcount()  # 0-based position in the ticker's history
    out = pd.DataFrame({"ticker": tickers, "trade_date": frame["trade_date"], "close": close})

    by_close = close.groupby(tickers, sort=False)
    for n in MA_WINDOWS:
        out[f"ma{n}"] = _per_ticker(by_close.rolling(n).mean())
    std = _per_ticker(by_close.rolling(BB_WINDOW).std(ddof=0))
    out["bb_middle"] = out[f"ma{BB_WINDOW}"]
    out["bb_upper"] = out["bb_middle"] + BB_WIDTH * std
    out["bb_lower"] = out["bb_middle"] - BB_WIDTH * std

    out["rsi14"] = _wilder_rsi(close, tickers, row)

    ema_fast = _per_ticker(by_close.ewm(span=MACD_FAST, adjust=False).mean())
    ema_slow = _per_ticker(by_close.ewm(span=MACD_SLOW, adjust=False).mean())
    macd = (ema_fast - ema_slow).where(row >= MACD_SLOW - 1)
    signal = _per_ticker(macd.groupby(tickers, sort=False)
                         .ewm(span=MACD_SIGNAL, adjust=False, min_periods=MACD_SIGNAL).mean())
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, macd - signal

    highest = _per_ticker(high.groupby(tickers, sort=False).rolling(STOCH_PERIOD).max())
    lowest = _per_ticker(low.groupby(tickers, sort=False).rolling(STOCH_PERIOD, min_periods=STOCH_PERIOD).min())
    span = highest - lowest
    fast_k = (100.0 * (close - lowest) / span.where(span > 0)).where(span > 0, 50.0).where(span.notna())
    slow_k = _per_ticker(fast_k.groupby(tickers, sort=False).rolling(STOCH_SMOOTH_K).mean())
    slow_d = _per_ticker(slow_k.groupby(tickers, sort=False).rolling(STOCH_SMOOTH_D).mean())
    out["stoch_k"], out["stoch_d"] = slow_k.clip(0.0, 100.0), slow_d.clip(0.0, 100.0)
    return out


def _wilder_rsi(close: pd.Series, tickers: pd.Series, row: pd.Series) -> pd.Series:
    """Wilder's RSI: seeded with the simple mean of the first ``RSI_PERIOD`` changes, then smoothed.

    Wilder's smoothing is an EMA with ``alpha = 1 / period``; feeding pandas' recursive EMA a series
    whose first value is the seed (earlier rows NaN, which ``adjust=False`` skips) gives exactly it.
    """
    change = close.groupby(tickers, sort=False).diff()
    averages = []
    for moves in (change.clip(lower=0.0), (-change).clip(lower=0.0)):
        seed = _per_ticker(moves.groupby(tickers, sort=False).rolling(RSI_PERIOD).mean())
        fed = moves.where(row > RSI_PERIOD).mask(row == RSI_PERIOD, seed)
        averages.append(_per_ticker(fed.groupby(tickers, sort=False).ewm(alpha=1.0 / RSI_PERIOD, adjust=False).mean()))
    gain, loss = averages
    total = gain + loss
    rsi = (100.0 * gain / total.where(total > 0)).where(total > 0, 50.0).where(total.notna())
    return rsi.clip(0.0, 100.0)


# ---------------------------------------------------------------------------------------------- run
@dataclass
class IndicatorReport:
    """What one ``update`` call did for one price table."""

    source: str
    adjusted: bool
    tickers: int = 0
    up_to_date: int = 0
    appended: int = 0
    rewritten: int = 0
    rows_computed: int = 0
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    chunks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{TABLE} from {self.source}: {self.tickers} tickers ({self.up_to_date} up to date, "
                f"{self.appended} with new days, {self.rewritten} rewritten), {self.rows_computed} rows "
                f"computed, {self.rows_in} offered, {self.inserted} inserted, {self.updated} updated, "
                f"{self.rejected} rejected in {self.seconds:.1f}s")


def plan(conn: psycopg.Connection, source: str) -> pd.DataFrame:
    """Per ticker of ``source``: ``computed_through``, ``up_to_date``, ``history_unchanged``."""
    if source not in SOURCES:
        raise ValueError(f"unknown price table {source!r}; expected one of {', '.join(SOURCES)}")
    rows = conn.execute(template("queries/upkeep/indicator_plan.sql", source=sql.Identifier(source)),
                        {"adjusted": SOURCES[source]}).fetchall()
    frame = pd.DataFrame(rows, columns=["ticker", "computed_through", "up_to_date", "history_unchanged"])
    return frame.astype({"up_to_date": bool, "history_unchanged": bool})


def load_prices(conn: psycopg.Connection, source: str, tickers: list[str]) -> pd.DataFrame:
    """The complete daily history of ``tickers`` in ``source`` (COPY, so millions of rows stay fast)."""
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(template("queries/upkeep/indicator_prices.sql", source=sql.Identifier(source)),
                                        {"tickers": tickers}) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(buffer, dtype={"ticker": str, "high": "float64", "low": "float64", "close": "float64"},
                       parse_dates=["trade_date"]).assign(trade_date=lambda f: f["trade_date"].dt.date)


def update(conn: psycopg.Connection, hook, *, sources=tuple(SOURCES), full: bool = False,
           chunk_tickers: int = DEFAULT_CHUNK_TICKERS) -> list[IndicatorReport]:
    """Bring ``daily_indicators`` in line with the price tables; every write goes through ``hook``.

    :param conn: reads (plan and prices).
    :param hook: a :class:`~krxflow.hooks.BatchedPostgresHook` for the writes (one upsert per chunk).
    :param full: rewrite every ticker's whole history (the hook still skips unchanged rows).
    """
    if chunk_tickers < 1:
        raise ValueError("chunk_tickers must be at least 1")
    reports = []
    for source in sources:
        started = time.perf_counter()
        todo = plan(conn, source)
        report = IndicatorReport(source, SOURCES[source], tickers=len(todo))
        if not full:
            report.up_to_date = int(todo["up_to_date"].sum())
            todo = todo[~todo["up_to_date"]]
        rewrite = full | ~todo["history_unchanged"] | todo["computed_through"].isna()
        report.rewritten = int(rewrite.sum())
        report.appended = len(todo) - report.rewritten
        # write everything of a rewritten ticker; only days after the last computed one otherwise
        write_after = todo["computed_through"].where(~rewrite, None)
        after = dict(zip(todo["ticker"], write_after))
        names = todo["ticker"].tolist()
        for start in range(0, len(names), chunk_tickers):
            chunk = names[start:start + chunk_tickers]
            values = compute(load_prices(conn, source, chunk))
            report.rows_computed += len(values)
            since = values["ticker"].map(after)
            keep = since.isna() | (values["trade_date"] > since.where(since.notna(), values["trade_date"]))
            values = values[keep.to_numpy()]
            values.insert(1, "adjusted", SOURCES[source])
            result = hook.upsert(TABLE, values[OUTPUT_COLUMNS])
            for name in ("rows_in", "inserted", "updated", "unchanged", "rejected"):
                setattr(report, name, getattr(report, name) + getattr(result, name))
            report.chunks.append(f"{chunk[0]}..{chunk[-1]}: {result.summary()}")
        report.seconds = time.perf_counter() - started
        log.info(report.summary())
        reports.append(report)
    return reports
