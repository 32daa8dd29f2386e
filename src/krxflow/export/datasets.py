"""What ``krx_export`` writes: one dataset per table, its date column and where its files go.

A dataset's files are ``<dataset>/year=YYYY/month=MM/<unit>.parquet`` (hive partitioning: DuckDB,
pandas and Polars read ``year`` and ``month`` from the path), where a *unit* is what change is
detected on:

* a partitioned table (``krxflow_partitioning``): one unit per PostgreSQL partition — a month of
  daily prices is one partition, one file;
* a small table with a date column (adjustment factors, the ticker change history): the whole
  table is one unit, split into one file per month of that column;
* a table without one (the ticker master, the index master): one file, ``<dataset>/<dataset>.parquet``.

A table with a retention (intraday quotes, order books, market data) is not exported nightly,
but each of its partitions is archived in the same layout before ``db_retention`` drops it
(:func:`krxflow.export.exporter.archive_partition`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    """One exported table."""

    name: str
    table: str
    #: the column whose year and month place a row's file (None: one file for the whole table)
    date_column: str | None
    description: str

    def month_dir(self, day: dt.date) -> str:
        """The folder of the month ``day`` falls in, relative to the export root."""
        return month_dir(self.name, day)

    def single_file(self) -> str:
        return f"{self.name}/{self.name}.parquet"


def month_dir(name: str, day: dt.date) -> str:
    return f"{name}/year={day.year:04d}/month={day.month:02d}"


#: Every dataset of the nightly export, in the order they are written. Universes and filings join
#: this list when their tables land.
DATASETS: tuple[Dataset, ...] = (
    Dataset("daily_prices", "daily_prices", "trade_date", "raw daily prices of every ticker (KRX, won)"),
    Dataset("daily_prices_adjusted", "daily_prices_adjusted", "trade_date",
            "adjusted daily prices (raw × product of later factors), as the database holds them today"),
    Dataset("adjustment_factors", "adjustment_factors", "ex_date",
            "one factor per ex-date; known from its ex_date on (the point-in-time key)"),
    Dataset("stocks", "stocks", None, "the ticker master (delisted tickers included)"),
    Dataset("stock_changes", "stock_changes", "changed_on", "renames, market moves and (de)listings"),
    Dataset("krx_indices", "krx_indices", None, "the KRX index master"),
    Dataset("krx_index_prices", "krx_index_prices", "trade_date", "daily index levels"),
    Dataset("krx_investor_trading", "krx_investor_trading", "trade_date", "buys and sells by investor type"),
    Dataset("krx_fundamentals", "krx_fundamentals", "trade_date", "EPS, PER, BPS, PBR, DPS, dividend yield"),
    Dataset("krx_short_selling", "krx_short_selling", "trade_date", "daily short selling"),
    Dataset("krx_short_balance", "krx_short_balance", "trade_date", "short balances"),
    Dataset("krx_foreign_ownership", "krx_foreign_ownership", "trade_date", "foreign ownership and limits"),
)

BY_TABLE = {dataset.table: dataset for dataset in DATASETS}


def for_table(table: str, key_column: str | None = None) -> Dataset:
    """The dataset of ``table``: its nightly one, or (an archived table) one named after it."""
    return BY_TABLE.get(table) or Dataset(table, table, key_column, f"archived partitions of {table}")
