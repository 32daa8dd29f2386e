"""
### db_partitions — partitions ahead for every partitioned table

Daily (00:10 KST) and at setup (the first run starts as soon as the DAG is unpaused): every table
listed in `krxflow_partitioning` gets its partitions from the period of its oldest row (or the
current period, when empty) to N periods ahead — each table's `premake` (3 months for the monthly
tables, 7 days for `order_books`) unless the `ahead` Param says otherwise. Idempotent: existing
partitions are left alone, gaps are filled. Each table's outcome is logged and written to
`load_stats` (operation `ensure_partitions`, created names in `details`).

It first applies any pending schema migration (`include/sql/migrations`), so a new release's
schema lands with the first upkeep run. The same work without Airflow:
`python -m krxflow.db migrate && python -m krxflow.db partitions`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from krxflow.settings import MARKET_TZ


@dag(
    dag_id="db_partitions",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("10 0 * * *", timezone=MARKET_TZ, run_immediately=True),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    params={
        "ahead": Param(None, type=["null", "integer"], minimum=0,
                       description="Periods to create ahead of today (default: each table's premake)."),
    },
    tags=["krxflow", "upkeep", "postgres"],
)
def db_partitions():
    @task
    def migrate() -> list[str]:
        """Apply pending schema migrations first (a no-op when the schema is up to date)."""
        from krxflow.db import migrations
        from krxflow.db.connection import connection

        with connection() as conn:
            return migrations.migrate(conn)

    @task
    def ensure_partitions() -> dict[str, list[str]]:
        """Create the missing partitions of every partitioned table; returns table -> created names."""
        from airflow.sdk import get_current_context

        from krxflow.db.connection import connection
        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import partition_upkeep

        ahead = get_current_context()["params"].get("ahead")
        with connection() as conn:
            reports = partition_upkeep.ensure_all(conn, ahead=ahead, journal=BatchedPostgresHook().journal())
        return {report.parent: report.created for report in reports}

    migrate() >> ensure_partitions()


db_partitions()
