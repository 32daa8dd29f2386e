"""The Assets krxflow's DAGs produce and listen to: one per table that downstream work depends on.

An Asset is matched by its URI: the dag-processor registers the URIs a DAG file declares, and a
worker reports the URIs of its task's outlets when the task succeeds; an outlet whose URI the
dag-processor did not register raises no event, and the DAGs that listen to it (``db_matviews``)
are never triggered. So the URIs must come out the same in every process that parses the DAG files,
whatever its environment: they are built from one constant, :data:`MARKET_DATABASE`, part of the
DAG bundle like the DAG files themselves — every process that parses a bundle version gets the same
value. They are names, never addresses: nothing connects to them, and where the market database
really is (the ``postgres_default`` Connection) does not change them.

``docs/reference/assets.md`` says how to change the setting and what a change does.
"""

from __future__ import annotations

from airflow.sdk import Asset

MARKET_DATABASE = "postgres://postgres:5432/krxflow/public"
"""The ``postgres://host:port/database/schema`` part of every krxflow Asset URI: the market database
as docker-compose names it (service ``postgres``, database ``krxflow``, schema ``public``), for every
installation. Deliberately not read from the environment (see the module doc)."""


def table_asset(table: str) -> Asset:
    """The Asset of one table of the market database."""
    return Asset(f"{MARKET_DATABASE}/{table}", group="krxflow")


STOCKS = table_asset("stocks")
DAILY_PRICES = table_asset("daily_prices")
DAILY_PRICES_ADJUSTED = table_asset("daily_prices_adjusted")
INTRADAY_QUOTES = table_asset("intraday_quotes")
ORDER_BOOKS = table_asset("order_books")
#: The other daily KRX reports (issue 17), one Asset per table.
KRX_REPORT_ASSETS = {table: table_asset(table) for table in (
    "krx_index_prices", "krx_investor_trading", "krx_fundamentals", "krx_short_selling", "krx_short_balance",
    "krx_foreign_ownership")}
TRADES = table_asset("trades")
MINUTE_BARS = table_asset("minute_bars")
