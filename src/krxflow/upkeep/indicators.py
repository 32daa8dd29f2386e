"""``daily_indicators``: technical indicators over each ticker's full history, kept in a table
(the database side; the maths is :mod:`krxflow.indicators`).

Why a table filled by a task rather than a materialized view: EMAs, Wilder's RSI and the MACD
signal are recursive (each value depends on the previous one). SQL can only express that with a
recursive CTE, which is slow over ~3.5M rows per series, and a nightly ``REFRESH ... CONCURRENTLY``
would recompute and diff ~7M rows (raw + adjusted) to change one day per ticker. Here each
ticker's whole history is computed (so a chart window never starts with warm-up gaps) and only
rows that are new or changed are written, through :class:`~krxflow.hooks.BatchedPostgresHook`.

How it is fast: a chunk of tickers is read as one CSV text and parsed by Arrow;
:func:`krxflow.indicators.compute` works on the whole chunk at once; the writer sends the rows in
PostgreSQL's binary COPY format (:mod:`krxflow.hooks.binary_copy`), straight into an empty table
through its fast path, while this thread reads and computes the next chunk.

How a run decides what to write, per source table and ticker (``queries/upkeep/indicator_plan.sql``):
up to date → nothing; new days only → the days after the last computed one; history changed (a
split rewrote the adjusted series, a correction) or ``full=True`` → the ticker's whole history
(the hook leaves unchanged rows untouched).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from krxflow.indicators import INDICATOR_COLUMNS, compute
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

TABLE = "daily_indicators"
#: price table -> value of the ``adjusted`` column
SOURCES = {"daily_prices": False, "daily_prices_adjusted": True}
#: Tickers computed and written per chunk: bounds memory (~1,250 rows per ticker for 5 years; a
#: chunk of 150 keeps the task under ~350 MB, 400 took it past 600 MB on the whole market).
DEFAULT_CHUNK_TICKERS = 100

OUTPUT_COLUMNS = ["ticker", "adjusted", "trade_date", "close"] + INDICATOR_COLUMNS
#: The columns of ``queries/upkeep/indicator_prices.sql`` as Arrow reads them (the day: days since 1970-01-01).
_PRICE_TYPES = {"ticker": pa.string(), "trade_date": pa.int32(), "high": pa.float64(), "low": pa.float64(),
                "close": pa.float64()}


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
    """The complete daily history of ``tickers`` in ``source`` (in no particular order).

    The database sends the rows as one CSV text (``queries/upkeep/indicator_prices.sql``) and
    Arrow's CSV reader parses it at once, so millions of rows stay fast; ``trade_date`` comes back
    as ``datetime64`` (naive KST days), which the writer takes without parsing row by row. The
    prices are the decimal texts PostgreSQL prints, read as the nearest doubles.
    """
    text = conn.execute(template("queries/upkeep/indicator_prices.sql", source=sql.Identifier(source)),
                        {"tickers": tickers}).fetchone()[0]
    if text is None:  # none of these tickers has a row
        table = pa.table({name: pa.array([], type) for name, type in _PRICE_TYPES.items()})
    else:
        table = pacsv.read_csv(pa.py_buffer(text.encode()),
                               read_options=pacsv.ReadOptions(column_names=list(_PRICE_TYPES)),
                               convert_options=pacsv.ConvertOptions(column_types=_PRICE_TYPES))
    table = table.set_column(1, "trade_date", table.column("trade_date").cast(pa.date32()))
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
