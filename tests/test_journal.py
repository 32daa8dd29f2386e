"""The operations journal: one load_stats row per operation, timed, failures recorded and re-raised."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from krxflow.hooks import BatchedPostgresHook
from krxflow.journal import Journal, Operation, Status, journaled

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = {"dag_id": "tests", "run_id": "journal", "task_id": "t", "map_index": None}


@pytest.fixture
def journal(clean_db):
    return Journal(BatchedPostgresHook(stats_context=CONTEXT))


def _rows(pg):
    return pg.execute("SELECT table_name, operation, rows_in, status, error, seconds, details, dag_id, run_id "
                      "FROM load_stats ORDER BY id").fetchall()


def test_an_operation_is_timed_and_recorded_with_its_figures(clean_db, journal):
    with journal.operation("daily_prices", Operation.QUALITY_CHECK, day="2024-03-04") as entry:
        entry.rows_in = 12
        entry.details["gaps"] = 0
        entry.warn([])  # no problems: stays ok
    [(table, operation, rows_in, status, error, seconds, details, dag_id, run_id)] = _rows(clean_db)
    assert (table, operation, rows_in, status, error) == ("daily_prices", "quality_check", 12, "ok", None)
    assert details == {"day": "2024-03-04", "gaps": 0}
    assert seconds >= 0 and (dag_id, run_id) == ("tests", "journal")


def test_a_failing_operation_is_recorded_as_failed_and_the_error_propagates(clean_db, journal):
    with pytest.raises(ZeroDivisionError):
        with journal.operation("backup", Operation.PG_DUMP, directory="/nowhere"):
            1 / 0
    [(table, operation, _, status, error, _, details, _, _)] = _rows(clean_db)
    assert (table, operation, status) == ("backup", "pg_dump", "failed")
    assert error.startswith("ZeroDivisionError") and details == {"directory": "/nowhere"}


def test_problems_make_a_warning_and_recorded_finds_a_row_by_its_details(clean_db, journal):
    with journal.operation("intraday_quotes", Operation.KIS_POLL_WINDOW, stream="s1", window="7") as entry:
        entry.warn(["3 EGW00201 throttles", "1 failed call"])
    assert _rows(clean_db)[0][3:5] == ("warning", "3 EGW00201 throttles; 1 failed call")
    assert journal.recorded(Operation.KIS_POLL_WINDOW, stream="s1", window="7")
    assert not journal.recorded(Operation.KIS_POLL_WINDOW, stream="s1", window="8")
    assert not journal.recorded(Operation.KIS_WS_STATS, stream="s1", window="7")


def test_without_a_journal_the_work_runs_and_nothing_is_recorded(clean_db):
    with journaled(None, "daily_prices", Operation.REFRESH) as entry:
        entry.rows_in = 5
    assert _rows(clean_db) == []


def test_each_partitioned_table_is_journaled_with_its_own_time(clean_db, journal):
    """db_partitions and db_retention record one row per table, each with that table's seconds."""
    from krxflow.upkeep import partition_upkeep, retention

    today = dt.date(2024, 11, 20)
    reports = partition_upkeep.ensure_all(clean_db, today=today, journal=journal)
    retention.purge(clean_db, today=today, dry_run=True, journal=journal)
    rows = _rows(clean_db)
    ensured = {r[0]: r for r in rows if r[1] == Operation.ENSURE_PARTITIONS}
    purged = {r[0]: r for r in rows if r[1] == Operation.RETENTION}
    assert set(ensured) == set(purged) == {r.parent for r in reports}
    assert all(r[3] == Status.OK and r[6]["partitions"] >= 1 for r in ensured.values())
    assert all(r[6]["dry_run"] is True for r in purged.values())
    # the per-table times add up to no more than the whole pass, so none is the whole task's time
    assert sum(r[5] for r in ensured.values()) > 0
    assert len({r[5] for r in ensured.values()}) > 1


def test_every_operation_written_anywhere_is_in_the_enumeration():
    """Operation names appear in code only through :class:`Operation` (SQL gets them as parameters)."""
    names = {op.value for op in Operation}
    literal = re.compile(r"operation\s*(?:=|IN\s*\()\s*'([a-z_]+)'")
    for path in [*ROOT.glob("include/sql/**/*.sql"), *ROOT.glob("grafana/*.py"), *ROOT.glob("src/**/*.py"),
                 *ROOT.glob("dags/*.py")]:
        for name in literal.findall(path.read_text()):
            assert name in names, f"{path.relative_to(ROOT)} names operation {name!r} outside the enumeration"
    for dag_file in ROOT.glob("dags/*.py"):  # DAG files wire; the package times and journals
        assert "perf_counter" not in dag_file.read_text(), f"{dag_file.name} times work itself"
