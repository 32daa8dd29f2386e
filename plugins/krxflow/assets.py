"""The Assets krxflow's DAGs produce and listen to: one per table that downstream work depends on.

Asset URIs name the market database's tables in the form Airflow expects for Postgres
(``postgres://host:port/database/schema/table``). The host part is a stable logical name, not
read from a Connection, so DAG files can import these while parsing without touching anything.
"""

from __future__ import annotations

import os

from airflow.sdk import Asset

_DATABASE = os.environ.get("KRXFLOW_ASSET_DATABASE", "postgres://krxflow-market:5432/krxflow/public")


def table_asset(table: str) -> Asset:
    """The Asset of one table of the market database."""
    return Asset(f"{_DATABASE}/{table}", group="krxflow")


STOCKS = table_asset("stocks")
DAILY_PRICES = table_asset("daily_prices")
DAILY_PRICES_ADJUSTED = table_asset("daily_prices_adjusted")
INTRADAY_QUOTES = table_asset("intraday_quotes")
ORDER_BOOKS = table_asset("order_books")
TRADES = table_asset("trades")
