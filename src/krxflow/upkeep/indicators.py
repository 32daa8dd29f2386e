"""Technical indicators over each ticker's full history, kept in the ``daily_indicators`` table.

Why a table filled by a task rather than a materialized view: EMAs, Wilder's RSI and the MACD
signal are recursive (each value depends on the previous one). SQL can only express that with a
recursive CTE, which is slow over ~3.5M rows per series, and a nightly ``REFRESH ... CONCURRENTLY``
would recompute and diff ~7M rows (raw + adjusted) to change one day per ticker. Here each
ticker's whole history is computed (so a chart window never starts with warm-up gaps) and only
rows that are new or changed are written, through :class:`~krxflow.hooks.BatchedPostgresHook`.

How it is fast (the whole market, ~7M rows, in seconds of compute): a chunk of tickers is read as
one CSV text per ticker and parsed by Arrow; :func:`compute` is vectorised across the chunk's
tickers — no Python loop over tickers or rows. The kernels are pandas' own compiled (Cython)
ones, already a dependency: trailing windows (MAs, Bollinger, the stochastic's highs/lows and
smoothing) are one ``rolling`` call over all rows with windows bounded at each ticker's first row
(``pandas.api.indexers.BaseIndexer``); the recursive series (EMAs, Wilder's averages, the MACD
signal) are the ``ewm(adjust=False)`` kernel down a days x tickers grid. They were chosen over
``scipy.signal.lfilter`` or numba because they perform the very floating-point operations of the
per-ticker pandas computation krxflow always used, so the values are identical to the bit (a
switch rewrites nothing: the writer skips unchanged rows) and nothing new is installed or JIT-
compiled in a task. An empty table is filled through the writer's fast path (straight COPY).

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from pandas.api.indexers import BaseIndexer
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
#: Tickers computed and written per chunk: bounds memory (~1,250 rows per ticker for 5 years; a
#: chunk of 150 keeps the task under ~350 MB, 400 took it past 600 MB on the whole market).
DEFAULT_CHUNK_TICKERS = 100

INDICATOR_COLUMNS = [f"ma{n}" for n in MA_WINDOWS] + [
    "bb_middle", "bb_upper", "bb_lower", "rsi14", "macd", "macd_signal", "macd_hist", "stoch_k", "stoch_d"]
OUTPUT_COLUMNS = ["ticker", "adjusted", "trade_date", "close"] + INDICATOR_COLUMNS
_PRICE_TYPES = {"ticker": pa.string(), "trade_date": pa.date32(), "high": pa.float64(), "low": pa.float64(),
                "close": pa.float64()}


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
    compute_seconds: float = 0.0  # reading prices and computing, without the writes
    chunks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{TABLE} from {self.source}: {self.tickers} tickers ({self.up_to_date} up to date, "
                f"{self.appended} with new days, {self.rewritten} rewritten), {self.rows_computed} rows "
                f"computed, {self.rows_in} offered, {self.inserted} inserted, {self.updated} updated, "
                f"{self.rejected} rejected in {self.seconds:.1f}s ({self.compute_seconds:.1f}s reading and computing)")


def plan(conn: psycopg.Connection, source: str) -> pd.DataFrame:
    """Per ticker of ``source``: ``computed_through``, ``up_to_date``, ``history_unchanged``."""
    if source not in SOURCES:
        raise ValueError(f"unknown price table {source!r}; expected one of {', '.join(SOURCES)}")
    rows = conn.execute(template("queries/upkeep/indicator_plan.sql", source=sql.Identifier(source)),
                        {"adjusted": SOURCES[source]}).fetchall()
    frame = pd.DataFrame(rows, columns=["ticker", "computed_through", "up_to_date", "history_unchanged"])
    return frame.astype({"up_to_date": bool, "history_unchanged": bool})


def load_prices(conn: psycopg.Connection, source: str, tickers: list[str]) -> pd.DataFrame:
    """The complete daily history of ``tickers`` in ``source``, sorted by ticker and day.

    The database sends each ticker's history as one CSV text (``queries/upkeep/indicator_prices.sql``)
    and Arrow's CSV reader parses them all at once, so millions of rows stay fast; ``trade_date``
    comes back as ``datetime64`` (naive KST days), which the writer takes without parsing row by row.
    """
    histories = [row[0] for row in conn.execute(
        template("queries/upkeep/indicator_prices.sql", source=sql.Identifier(source)), {"tickers": tickers})]
    text = "\n".join(histories).encode()
    table = pacsv.read_csv(io.BytesIO(text), read_options=pacsv.ReadOptions(column_names=list(_PRICE_TYPES)),
                           convert_options=pacsv.ConvertOptions(column_types=_PRICE_TYPES))
    return table.to_pandas(date_as_object=False)


def _account(report: IndicatorReport, written: Future, chunk: list[str], done: int, total: int) -> None:
    """Add one chunk's write (when it has finished) to the report."""
    result = written.result()
    for name in ("rows_in", "inserted", "updated", "unchanged", "rejected"):
        setattr(report, name, getattr(report, name) + getattr(result, name))
    report.chunks.append(f"{chunk[0]}..{chunk[-1]}: {result.summary()}")
    log.info("%s from %s: %d/%d tickers done (%s)", TABLE, report.source, done, total, result.summary())


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
        write_after = pd.Series(pd.to_datetime(todo["computed_through"].where(~rewrite, None)).to_numpy(),
                                index=todo["ticker"].to_numpy())
        names = todo["ticker"].tolist()
        # Streamed: the writer thread writes chunk k while this thread reads and computes chunk k+1
        # (the writer mostly waits for the server's COPY; psycopg and numpy release the GIL), so at
        # most two chunks are in memory.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="indicator-writer") as writer:
            pending = None
            for start in range(0, len(names), chunk_tickers):
                chunk = names[start:start + chunk_tickers]
                computing = time.perf_counter()
                values = compute(load_prices(conn, source, chunk))
                report.rows_computed += len(values)
                since = values["ticker"].map(write_after).to_numpy(dtype="datetime64[ns]")
                keep = np.isnat(since) | (values["trade_date"].to_numpy(dtype="datetime64[ns]") > since)
                # day by day (each month's partition and the trade_date index then take their rows in
                # runs: the server's insert cost fell by ~30 %), only the kept rows
                by_day = np.argsort(values["trade_date"].to_numpy(), kind="stable")
                values = values.take(by_day[keep[by_day]])
                values.insert(1, "adjusted", SOURCES[source])  # now in OUTPUT_COLUMNS order
                report.compute_seconds += time.perf_counter() - computing
                if pending is not None:
                    _account(report, *pending, len(names))
                pending = (writer.submit(hook.upsert, TABLE, values), chunk, start + len(chunk))
                del values
            if pending is not None:
                _account(report, *pending, len(names))
        report.seconds = time.perf_counter() - started
        log.info(report.summary())
        reports.append(report)
    return reports
