"""Versioned migrations: ordered, recorded, idempotent, and strict about edited history."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from krxflow.db import migrations


@pytest.fixture
def scratch_db(scratch_database):
    """An empty database of its own, so migrations start from nothing."""
    with psycopg.connect(scratch_database("mig"), autocommit=True) as conn:
        yield conn


def test_migrations_apply_in_order_and_a_second_run_applies_nothing(scratch_db):
    applied = migrations.migrate(scratch_db)
    assert applied == [m.version for m in migrations.discover()]
    assert applied[0] == "0001"
    assert migrations.migrate(scratch_db) == []
    recorded = scratch_db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in recorded] == applied
    tables = {r[0] for r in scratch_db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"stocks", "daily_prices", "daily_prices_adjusted", "intraday_quotes", "order_books", "market_data",
            "load_stats", "krxflow_partitioning"} <= tables
    views = {r[0] for r in scratch_db.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
    assert {"kospi_stocks", "kosdaq_stocks"} <= views


def test_partitioned_tables_are_range_partitioned_on_their_policy_key(scratch_db):
    migrations.migrate(scratch_db)
    rows = scratch_db.execute("""
        SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
    """).fetchall()
    keys = dict(rows)
    for table, key in scratch_db.execute("SELECT parent_table, key_column FROM krxflow_partitioning"):
        assert keys[table] == f"RANGE ({key})"


def test_an_edited_migration_is_refused(scratch_db, tmp_path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (id int);")
    assert migrations.migrate(scratch_db, tmp_path) == ["0001"]
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (id bigint);")
    with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
        migrations.migrate(scratch_db, tmp_path)


def test_a_failing_migration_rolls_back_and_is_not_recorded(scratch_db, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE t1 (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE t2 (id int); SELECT no_such_function();")
    with pytest.raises(migrations.MigrationError, match="0002_broken.sql failed"):
        migrations.migrate(scratch_db, tmp_path)
    assert migrations.applied(scratch_db).keys() == {"0001"}
    assert scratch_db.execute("SELECT to_regclass('t2')").fetchone()[0] is None


def test_badly_named_migration_files_are_refused(tmp_path):
    (tmp_path / "1_first.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="NNNN_lower_snake_case"):
        migrations.discover(tmp_path)


def test_the_command_line_migrates_and_reports_status():
    run = subprocess.run([sys.executable, "-m", "krxflow.db", "migrate"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "schema is up to date" in run.stdout  # conftest already migrated the session's database
    status = subprocess.run([sys.executable, "-m", "krxflow.db", "status"], capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "0001 core_schema" in status.stdout and "pending" not in status.stdout


def test_minute_bars_move_from_monthly_to_daily_partitions_with_their_rows(scratch_db, tmp_path):
    import datetime as dt
    import shutil

    from krxflow.db.partitions import ensure_partitions, list_partitions
    from krxflow.market_time import KST

    for migration in migrations.discover():
        if migration.version < "1000":
            shutil.copy(migration.path, tmp_path / migration.path.name)
    migrations.migrate(scratch_db, tmp_path)
    ensure_partitions(scratch_db, "minute_bars", dt.date(2026, 10, 30), dt.date(2026, 11, 2))
    assert [p.name for p in list_partitions(scratch_db, "minute_bars")] == ["minute_bars_p202610", "minute_bars_p202611"]
    bars = [(ticker, dt.datetime(2026, month, day, 9, 0, tzinfo=KST), 100, 110, 90, 105, 7, 735)
            for ticker in ("005930", "000660") for month, day in ((10, 30), (11, 2))]
    with scratch_db.cursor() as cur:
        cur.executemany("INSERT INTO minute_bars VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", bars)

    assert migrations.migrate(scratch_db) == ["1000"] + [m.version for m in migrations.discover() if m.version > "1000"]
    assert [p.name for p in list_partitions(scratch_db, "minute_bars")] == ["minute_bars_p20261030",
                                                                            "minute_bars_p20261102"]
    assert scratch_db.execute("SELECT * FROM minute_bars ORDER BY minute, ticker").fetchall() == sorted(
        bars, key=lambda bar: (bar[1], bar[0]))
    assert scratch_db.execute("SELECT granularity, retention_days FROM krxflow_partitioning "
                              "WHERE parent_table = 'minute_bars'").fetchone() == ("day", 400)
