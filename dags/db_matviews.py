"""
### db_matviews — nightly read models: market summary, candles, technical indicators

Runs nightly (20:30 KST) **and** whenever a loader updates the `daily_prices` or
`daily_prices_adjusted` Asset.

* `daily_market_summary` and `period_candles` (weekly and monthly candles; `weekly_candles` and
  `monthly_candles` are plain views over it) are materialized views (migrations 0200, 1300) refreshed with `REFRESH MATERIALIZED VIEW CONCURRENTLY`, so dashboards keep reading the
  old rows during a refresh (a never-populated view gets one plain refresh first).
* `daily_indicators` is a table (MA 5/20/60/120/200, Bollinger 20/2, Wilder RSI 14, MACD 12/26/9,
  slow Stochastic 14/3/3 over each ticker's full history) written through `BatchedPostgresHook`:
  only tickers whose prices changed are recomputed, and only new or changed rows written; one
  task per price table (raw, adjusted), running side by side.
  Param `full_indicators` rewrites every ticker (after a definition change, or to repair).

**Proportional to what changed during a backfill.** Every loaded session (and every ticker of
`krx_history_backfill`) updates an Asset; refreshing the whole market's read models after each
would redo whole-market work ~1,230 times in a 5-year by-date backfill. So the first task,
`loads_settled`, waits (a sensor in reschedule mode: no worker slot held) while `krx_daily_prices`,
`krx_history_backfill` or `krx_cold_start` has queued or running runs. Airflow keeps at most one
queued Asset trigger per Asset for this DAG (`max_active_runs=1`), so all the events of a backfill
collapse into one run, and that run does ONE pass once the loads are done: views refreshed once,
indicators computed once for every ticker. On a normal day the loader has finished when the
Asset event arrives, and the sensor passes at its first poke.

Empty price tables are fine: the views refresh empty and no indicator is written.

A `db_backup` running at the same time needs no coordination: a dump carries the views'
definitions, not their rows, and its restore check expects each view as rebuilt from the dump's
snapshot (docs/operations/backups.md).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, PokeReturnValue, dag, task

from krxflow.assets import DAILY_PRICES, DAILY_PRICES_ADJUSTED
from krxflow.settings import MARKET_TZ

#: Materialized views refreshed by this DAG, in order (kept literal: DAG files import no DB code).
VIEWS = ("daily_market_summary", "period_candles")
#: The DAGs whose runs update the price Assets: while any of them has a queued or running run
#: (a backfill), the read models wait and are then brought current in one pass.
LOADER_DAGS = ("krx_daily_prices", "krx_history_backfill", "krx_cold_start")
LOADS_POKE_SECONDS = 60


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
    @task.sensor(poke_interval=LOADS_POKE_SECONDS, mode="reschedule", timeout=dt.timedelta(days=2).total_seconds())
    def loads_settled(ti=None) -> PokeReturnValue:
        """Wait while a price loader has queued or running runs (a by-date or per-ticker backfill)."""
        active = {dag_id: ti.get_dr_count(dag_id=dag_id, states=["queued", "running"]) for dag_id in LOADER_DAGS}
        return PokeReturnValue(is_done=not any(active.values()), xcom_value=active)

    @task
    def refresh_view(view: str) -> dict:
        """Refresh one materialized view (concurrently once populated) and log it in load_stats."""
        from krxflow.db.connection import connection
        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import matviews

        with connection() as conn:
            result = matviews.refresh(conn, view, journal=BatchedPostgresHook().journal())
        return {"view": view, "rows": result.rows, "concurrently": result.concurrently}

    @task
    def indicator_sources() -> list[str]:
        """The price tables daily_indicators is computed from (one indicator task each, in parallel)."""
        from krxflow.upkeep import indicators

        return list(indicators.SOURCES)

    @task(map_index_template="{{ source }}")
    def update_indicators(source: str) -> list[str]:
        """Bring daily_indicators in line with one price table (writes through the hook)."""
        from airflow.sdk import get_current_context

        from krxflow.db.connection import connection
        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import indicators

        full = bool(get_current_context()["params"].get("full_indicators"))
        with connection() as conn:
            reports = indicators.update(conn, BatchedPostgresHook(), sources=(source,), full=full)
        return [report.summary() for report in reports]

    previous = settled = loads_settled()
    for view in VIEWS:
        current = refresh_view.override(task_id=f"refresh_{view}")(view)
        previous >> current
        previous = current
    settled >> update_indicators.expand(source=indicator_sources())


db_matviews()
