"""
### db_backup — daily pg_dump of the market database, checked, rotated, restore-tested

Daily (03:00 KST):

1. `dump` — `pg_dump -Fc` of the `postgres_default` database into the backup directory (Variable
   `krxflow_backup_dir`, else env `KRXFLOW_BACKUP_DIR`, else `$AIRFLOW_HOME/backups`), named
   `krxflow-market-<KST yyyymmddThhmmss>.dump`, verified with `pg_restore --list` before it gets
   its final name. Outcome in `load_stats` (table `backup`, operation `pg_dump`, `details.file`,
   `details.bytes`) — the health dashboard shows the newest backup's age from it.
2. `rotate` — deletes dumps older than `keep_days` (30), never the newest.
3. `restore_check` — on Sundays (KST), or when Param `restore_check` is true: restores the dump into
   a scratch database and compares every table's row count with counts taken in the dump's own
   snapshot (materialized views: as the restore rebuilds them from that snapshot, so a
   `db_matviews` refresh during the dump is harmless); the scratch database is dropped afterwards.
   Recorded as `backup` / `restore_check`.

The day is the run's KST day (its `run_after` for a run without a logical date). pg_dump and
pg_restore are those of the server's major version (`KRXFLOW_PG_BIN`, `PATH`, the per-version
package directories). See docs/operations/backups.md.

Any failure fails the task loudly (and is recorded with status `failed`). The password is handed
to pg_dump/pg_restore only via `PGPASSWORD`, never on the command line, in file names or logs.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from krxflow.settings import MARKET_TZ
SUNDAY = 6


@dag(
    dag_id="db_backup",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 3 * * *", timezone=MARKET_TZ),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    params={
        "restore_check": Param(None, type=["null", "boolean"],
                               description="Restore into a scratch database and compare counts "
                                           "(default: on Sundays KST)."),
        "keep_days": Param(30, type="integer", minimum=1, description="Days of dumps to keep."),
    },
    tags=["krxflow", "upkeep", "postgres", "backup"],
)
def db_backup():
    def _directory():
        from airflow.sdk import Variable

        from krxflow.upkeep import backup

        return backup.backup_dir(Variable.get("krxflow_backup_dir", default=None))

    @task
    def dump() -> dict:
        """pg_dump -Fc + pg_restore --list; counts rows in the dump's snapshot when a restore check is due."""
        from airflow.sdk import get_current_context

        from krxflow.calendar import session_of_run
        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import backup

        context = get_current_context()
        wanted = context["params"].get("restore_check")
        # the run's KST day (its run_after when it has no logical date); backups run on closed days too
        run_day = session_of_run(context.get("logical_date"), closed_ok=True)
        restore_due = run_day.weekday() == SUNDAY if wanted is None else bool(wanted)
        result = backup.dump(backup.Target.from_connection(), _directory(), with_counts=restore_due, journal=BatchedPostgresHook().journal())
        return {"file": str(result.path), "bytes": result.bytes, "counts": result.counts}

    @task
    def rotate(dumped: dict) -> list[str]:
        """Delete dumps older than keep_days (the one just written always stays)."""
        from airflow.sdk import get_current_context

        from krxflow.upkeep import backup

        keep_days = int(get_current_context()["params"].get("keep_days") or backup.DEFAULT_KEEP_DAYS)
        return [path.name for path in backup.rotate(_directory(), keep_days=keep_days)]

    @task
    def restore_check(dumped: dict) -> dict:
        """Restore the dump into a scratch database; every table's row count must match."""
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from krxflow.hooks import BatchedPostgresHook
        from krxflow.upkeep import backup

        if not dumped.get("counts"):
            raise AirflowSkipException("no restore check due today (Sundays KST, or Param restore_check)")
        path = Path(dumped["file"])
        result = backup.restore_check(backup.Target.from_connection(), path, dumped["counts"], journal=BatchedPostgresHook().journal())
        return {"file": str(path), "tables": result.tables, "rows": result.rows}

    dumped = dump()
    rotate(dumped)
    restore_check(dumped)


db_backup()
