"""
### krx_export — the market database as zstd Parquet files for pandas, Polars and DuckDB

Runs nightly (21:00 KST) **and** whenever a loader or the upkeep updates a table it exports
(daily prices raw and adjusted, the ticker master, the reports).

Writes `<dataset>/year=YYYY/month=MM/*.parquet` and a `manifest.json` (files, rows, checksums,
schema, as-of) to the destination of the `krxflow_export` Connection — an S3-compatible bucket,
any pyarrow/fsspec filesystem — or, without it, to `$KRXFLOW_EXPORT_DIR` (`make run`:
`<run dir>/export`).

Incremental: only partitions whose rows changed are read and rewritten, each file under a
temporary name renamed into place, the manifest last; a failure (full disk, unreachable bucket)
leaves the previous files and manifest as they were. Param `full`: read every partition again
(files still rewritten only when their bytes change). See docs/export.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from krxflow.assets import DAILY_PRICES, DAILY_PRICES_ADJUSTED, KRX_REPORT_ASSETS, STOCKS
from krxflow.settings import MARKET_TZ

_TRIGGERS = DAILY_PRICES | DAILY_PRICES_ADJUSTED | STOCKS
for _asset in KRX_REPORT_ASSETS.values():
    _TRIGGERS = _TRIGGERS | _asset


@dag(
    dag_id="krx_export",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 21 * * *", timezone=MARKET_TZ),
                                 assets=_TRIGGERS),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    params={"full": Param(False, type="boolean", description="Read every partition again, not only changed ones.")},
    tags=["krxflow", "export", "parquet"],
)
def krx_export():
    @task
    def export_parquet() -> dict:
        """Bring the Parquet export in line with the database; returns what it wrote."""
        from airflow.sdk import get_current_context

        from krxflow.db.connection import connection
        from krxflow.export import destination, exporter
        from krxflow.hooks import BatchedPostgresHook

        full = bool(get_current_context()["params"].get("full"))
        with connection() as conn:
            report = exporter.export(conn, destination.from_connection(), full=full,
                                     journal=BatchedPostgresHook().journal())
        return {"as_of": report.as_of, "written": len(report.written), "rows_written": report.rows_written,
                "units_read": report.units_read, "units_skipped": report.units_skipped}

    export_parquet()


krx_export()
