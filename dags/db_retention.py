"""
### db_retention — drop partitions past each table's retention

Nightly (02:30 KST). For each table in `krxflow_partitioning` with a retention (defaults:
`intraday_quotes` 365 days, `order_books` 30, `market_data` 90; daily prices and indicators are
kept forever), drops the whole partitions whose every row is older than *today (KST) − retention*.
A partition that still holds a row inside the retention period is never dropped.

* Override per table with the Variable `retention_days_<table>`: a number of days, or `keep`.
* Param `dry_run`: log (and record in `load_stats`) what would be dropped, drop nothing.
* Nothing is lost: before each drop, the partition is archived to the Parquet export
  (`krx_export`'s destination, docs/export.md) and the file verified against it (row count,
  checksum, every value) in the drop's transaction; a failed archive keeps the partition.

Each drop is logged; each table gets a `load_stats` row (operation `retention`, dropped names in
`details`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from krxflow.settings import MARKET_TZ


@dag(
    dag_id="db_retention",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("30 2 * * *", timezone=MARKET_TZ),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    params={"dry_run": Param(False, type="boolean", description="Only report what would be dropped.")},
    tags=["krxflow", "upkeep", "postgres"],
)
def db_retention():
    @task
    def purge_expired_partitions() -> dict[str, list[str]]:
        """Drop (or with dry_run, list) every expired partition; returns table -> partition names."""
        import contextlib

        from airflow.sdk import Variable, get_current_context

        from krxflow.db.connection import connection
        from krxflow.export import destination, exporter
        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import retention

        dry_run = bool(get_current_context()["params"].get("dry_run"))

        def override(table: str):
            return Variable.get(retention.VARIABLE_TEMPLATE.format(table=table), default=None)

        archive_to = None if dry_run else destination.from_connection()

        with connection() as conn, contextlib.ExitStack() as stack:
            archive = None if dry_run else stack.enter_context(exporter.PartitionArchiver(conn, archive_to))
            reports = retention.purge(conn, dry_run=dry_run, override=override, journal=BatchedPostgresHook().journal(),
                                      before_drop=archive)
        return {report.table: report.dropped for report in reports}

    purge_expired_partitions()


db_retention()
