"""Refresh krxflow's materialized views without locking out readers.

``REFRESH MATERIALIZED VIEW CONCURRENTLY`` keeps the old rows readable while the new ones are
computed, but PostgreSQL only allows it on a view that is populated and has a unique index (all
of ours do, see migration 0200). A view that was never populated (e.g. restored ``WITH NO DATA``)
gets one plain refresh first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from krxflow.journal import Journal, Operation, journaled
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

#: The materialized views the db_matviews DAG keeps fresh, in refresh order.
VIEWS = ("daily_market_summary", "period_candles")


class MatviewError(RuntimeError):
    """The view to refresh does not exist."""


@dataclass(frozen=True)
class RefreshResult:
    view: str
    concurrently: bool
    rows: int
    seconds: float

    def summary(self) -> str:
        how = "concurrently" if self.concurrently else "plain (first population)"
        return f"refreshed {self.view} {how}: {self.rows} rows in {self.seconds:.2f}s"


def is_populated(conn: psycopg.Connection, view: str) -> bool:
    row = conn.execute(template("queries/upkeep/matview_populated.sql"), {"view": view}).fetchone()
    if row is None:
        raise MatviewError(f"materialized view {view} does not exist (are the migrations applied?)")
    return bool(row[0])


def refresh(conn: psycopg.Connection, view: str, *, journal: Journal | None = None) -> RefreshResult:
    """Refresh one view: concurrently when it is populated, plainly the first time.

    With ``journal``, the refresh is journaled (operation ``refresh`` on the view).
    """
    if view not in VIEWS:
        raise MatviewError(f"{view} is not one of krxflow's materialized views: {', '.join(VIEWS)}")
    with journaled(journal, view, Operation.REFRESH) as entry:
        started = time.perf_counter()
        concurrently = is_populated(conn, view)
        statement = ("queries/upkeep/refresh_matview_concurrently.sql" if concurrently
                     else "queries/upkeep/refresh_matview.sql")
        conn.execute(template(statement, view=sql.Identifier(view)))
        rows = conn.execute(template("queries/upkeep/count_rows.sql", table=sql.Identifier(view))).fetchone()[0]
        result = RefreshResult(view, concurrently, rows, time.perf_counter() - started)
        entry.rows_in, entry.details["concurrently"] = rows, concurrently
    log.info(result.summary())
    return result


def refresh_all(conn: psycopg.Connection, *, journal: Journal | None = None) -> list[RefreshResult]:
    """Refresh every view in :data:`VIEWS` (handy for tests and the read API's fixtures)."""
    return [refresh(conn, view, journal=journal) for view in VIEWS]
