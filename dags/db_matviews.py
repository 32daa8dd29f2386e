"""
### db_matviews — nightly read models: market summary, candles, technical indicators

Runs nightly (20:30 KST) **and** whenever a loader updates the `daily_prices` or
`daily_prices_adjusted` Asset.

* `daily_market_summary`, `weekly_candles`, `monthly_candles` are materialized views (migration
  0200) refreshed with `REFRESH MATERIALIZED VIEW CONCURRENTLY`, so dashboards keep reading the
  old rows during a refresh (a never-populated view gets one plain refresh first).
* `daily_indicators` is a table (MA 5/20/60/120/200, Bollinger 20/2, Wilder RSI 14, MACD 12/26/9,
  slow Stochastic 14/3/3 over each ticker's full history) written through `BatchedPostgresHook`:
  only tickers whose prices changed are recomputed, and only new or changed rows written.
  Param `full_indicators` rewrites every ticker (after a definition change, or to repair).

Empty price tables are fine: the views refresh empty and no indicator is written.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from krxflow.assets import DAILY_PRICES, DAILY_PRICES_ADJUSTED

MARKET_TZ = "Asia/Seoul"
#: Materialized views refreshed by this DAG, in order (kept literal: DAG files import no DB code).
VIEWS = ("daily_market_summary", "weekly_candles", "monthly_candles")


@dag(
    dag_id="db_matviews",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 20 * * *", timezone=MARKET_TZ),
        assets=(DAILY_PRICES | DAILY_PRICES_ADJUSTED),
    ),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    params={
        "full_indicators": Param(False, type="boolean",
                                 description="Recompute and rewrite every ticker's indicators, not only changed ones."),
    },
    tags=["krxflow", "upkeep", "postgres"],
)
def db_matviews():
    @task
    def refresh_view(view: str) -> dict:
        """Refresh one materialized view (concurrently once populated) and log it in load_stats."""
        from krxflow.db.connection import connection
        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import matviews

        with connection() as conn:
            result = matviews.refresh(conn, view)
        BatchedPostgresHook().log_stats(view, "refresh", rows_in=result.rows, seconds=result.seconds,
                                        details={"concurrently": result.concurrently})
        return {"view": view, "rows": result.rows, "concurrently": result.concurrently}

    @task
    def update_indicators() -> list[str]:
        """Bring daily_indicators in line with both price tables (writes through the hook)."""
        from airflow.sdk import get_current_context

        from krxflow.db.connection import connection
        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import indicators

        full = bool(get_current_context()["params"].get("full_indicators"))
        with connection() as conn:
            reports = indicators.update(conn, BatchedPostgresHook(), full=full)
        return [report.summary() for report in reports]

    previous = None
    for view in VIEWS:
        current = refresh_view.override(task_id=f"refresh_{view}")(view)
        if previous is not None:
            previous >> current
        previous = current
    update_indicators()


db_matviews()
