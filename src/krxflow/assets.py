"""The Assets krxflow's DAGs produce and listen to: one per table that downstream work depends on.

Asset URIs name the market database's tables in the form Airflow expects for Postgres
(``postgres://host:port/database/schema/table``), with the host, port and database of the
database krxflow really writes to, taken from configuration:

1. ``KRXFLOW_ASSET_DATABASE`` (``postgres://host:port/database/schema``) when set — to keep URIs
   stable across a move, or to name the database as other teams' DAGs know it;
2. else the market database's Connection (``postgres_default``) as configured in the environment
   (``AIRFLOW_CONN_POSTGRES_DEFAULT``, URI or JSON — what ``make run``, docker-compose and the
   tests set), read by Airflow's own environment-variable secrets backend: no database, no network,
   so DAG files can import these while parsing;
3. else (the Connection lives only in the metadata database or a secrets backend, which parsing
   must not query) the logical name :data:`FALLBACK_DATABASE`.

Every Airflow process of one deployment has the same environment, so producers and consumers
agree on the URIs; the credentials never appear in them.
"""

from __future__ import annotations

import os

from airflow.sdk import Asset

from krxflow.settings import POSTGRES_CONN_ID

#: Used only when neither KRXFLOW_ASSET_DATABASE nor an environment Connection says where the database is.
FALLBACK_DATABASE = "postgres://krxflow-market:5432/krxflow/public"
SCHEMA = "public"


def database_uri(environ: dict[str, str] | None = None) -> str:
    """``postgres://host:port/database/schema`` of the market database, from configuration (see module doc)."""
    env = os.environ if environ is None else environ
    explicit = env.get("KRXFLOW_ASSET_DATABASE", "").strip().rstrip("/")
    if explicit:
        return explicit
    configured = env.get(f"AIRFLOW_CONN_{POSTGRES_CONN_ID.upper()}", "").strip()
    if configured:
        from airflow.models.connection import Connection  # how Airflow itself reads AIRFLOW_CONN_*

        conn = (Connection.from_json(configured, conn_id=POSTGRES_CONN_ID) if configured.startswith("{")
                else Connection(conn_id=POSTGRES_CONN_ID, uri=configured))
        if conn.host and conn.schema:
            return f"postgres://{conn.host}:{conn.port or 5432}/{conn.schema}/{SCHEMA}"
    return FALLBACK_DATABASE


def table_asset(table: str, environ: dict[str, str] | None = None) -> Asset:
    """The Asset of one table of the market database."""
    return Asset(f"{database_uri(environ)}/{table}", group="krxflow")


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
