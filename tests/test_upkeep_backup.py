"""db_backup: real pg_dump / pg_restore against the session's market database (issue 5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.fakes import upkeep_market as market

SECRET = "s3cret-Backup-PW"


@pytest.fixture
def backed_db(clean_db):
    """The candle data set, its views refreshed and its indicators computed."""
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import indicators, matviews

    clean_db.execute("TRUNCATE daily_indicators")
    raw, adjusted = market.candle_market()
    hook = BatchedPostgresHook()
    market.write(hook, market.STOCKS, raw, adjusted)
    matviews.refresh_all(clean_db)
    indicators.update(clean_db, hook)
    return clean_db


@pytest.fixture
def target():
    """The market database's Connection, with a password added: trust auth ignores it, so the
    tests can check it never shows up in argv, file names or logs."""
    from krxflow.upkeep import backup

    return dataclasses.replace(backup.Target.from_connection(), password=SECRET)


def test_backup_dump_is_checked_and_restore_counts_match(backed_db, target, tmp_path, caplog):
    from krxflow.upkeep import backup

    caplog.set_level(logging.DEBUG)
    now = dt.datetime(2024, 3, 10, 3, 0, tzinfo=backup.KST)
    result = backup.dump(target, tmp_path / "dumps", now=now, with_counts=True)
    assert result.path.name == "krxflow-market-20240310T030000.dump"
    assert result.bytes == result.path.stat().st_size > 0 and result.toc_entries > 20
    assert [p.name for p in (tmp_path / "dumps").iterdir()] == [result.path.name]  # no .partial left
    counts = result.counts
    assert counts["stocks"] == 3 and counts["period_candles"] > 0 and counts["schema_migrations"] >= 2
    assert sum(v for k, v in counts.items() if k.startswith("daily_prices_p")) == len(market.candle_days()) * 3
    assert sum(v for k, v in counts.items() if k.startswith("daily_indicators_p")) == len(market.candle_days()) * 6

    restored = backup.restore_check(target, result.path, counts)
    assert restored.mismatches == {} and restored.tables == len(counts) and restored.rows == sum(counts.values())
    # the scratch database is gone again
    with target.with_database("postgres").connect() as admin:
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                             (restored.database,)).fetchone()[0] == 0

    # a count that differs is a loud failure
    tampered = {**counts, "stocks": counts["stocks"] + 1}
    with pytest.raises(backup.BackupError, match="stocks: source 4 restored 3"):
        backup.restore_check(target, result.path, tampered)

    # no secret anywhere: argv, file names, logs, repr
    assert SECRET not in " ".join(target.tool_args()) and SECRET not in repr(target)
    assert target.tool_env()["PGPASSWORD"] == SECRET
    assert SECRET not in caplog.text and SECRET not in str(result.path)
    assert "pg_dump --format=custom" in caplog.text


def test_backup_failed_dump_or_bad_file_fails_loudly(clean_db, target, tmp_path):
    from krxflow.upkeep import backup

    broken = target.with_database("krxflow_no_such_database")
    with pytest.raises(backup.BackupError, match="cannot connect to .*krxflow_no_such_database") as failure:
        backup.dump(broken, tmp_path)
    assert SECRET not in str(failure.value)
    assert list(tmp_path.iterdir()) == []  # nothing written

    # pg_dump itself failing (here: tables its role may not read) leaves no partial file behind
    from psycopg import sql

    reader = dataclasses.replace(target, user=f"krxflow_backup_reader_{os.getpid()}")
    role = sql.Identifier(reader.user)
    with target.connect() as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
    try:
        with pytest.raises(backup.BackupError, match="pg_dump failed .*permission denied") as failure:
            backup.dump(reader, tmp_path)
        assert SECRET not in str(failure.value)
        assert list(tmp_path.iterdir()) == []  # the partial file is gone
    finally:
        with target.connect() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(role))

    garbage = tmp_path / "krxflow-market-20240101T000000.dump"
    garbage.write_bytes(b"PGDMP not really")
    with pytest.raises(backup.BackupError, match="pg_restore --list"):
        backup.list_dump(garbage, target)
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.dump(target, tmp_path, now=dt.datetime(2024, 1, 1, tzinfo=backup.KST))


def test_backup_rotation_keeps_30_days_and_the_newest(tmp_path):
    from krxflow.upkeep import backup

    now = dt.datetime(2024, 3, 31, 3, 0, tzinfo=backup.KST)
    names = [f"krxflow-market-{(now - dt.timedelta(days=d)):%Y%m%dT%H%M%S}.dump" for d in (0, 1, 29, 30, 31, 45)]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "unrelated.dump").write_bytes(b"x")
    stale = tmp_path / "krxflow-market-20240101T000000.dump.partial"
    stale.write_bytes(b"x")
    os.utime(stale, (now.timestamp() - 3 * 86400,) * 2)
    deleted = backup.rotate(tmp_path, keep_days=30, now=now)
    assert sorted(p.name for p in deleted) == sorted(names[4:])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[:4] + ["unrelated.dump"])
    assert backup.newest_dump(tmp_path).name == names[0]
    # an old lone dump is never deleted: it is the only backup there is
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / names[-1]).write_bytes(b"x")
    assert backup.rotate(lone, now=now) == [] and backup.newest_dump(lone).name == names[-1]


def test_backup_dir_configuration(monkeypatch, tmp_path):
    from krxflow.upkeep import backup

    monkeypatch.setenv("KRXFLOW_BACKUP_DIR", str(tmp_path / "from-env"))
    assert backup.backup_dir() == tmp_path / "from-env"
    assert backup.backup_dir(str(tmp_path / "from-variable")) == tmp_path / "from-variable"
    monkeypatch.delenv("KRXFLOW_BACKUP_DIR")
    assert backup.backup_dir() == Path(os.environ["AIRFLOW_HOME"]) / "backups"


def test_backup_uses_the_client_tools_of_the_servers_major_version(target, tmp_path):
    """pg_dump refuses a newer server and a newer pg_dump's output need not restore into an older one:
    the tools must be the server's major version, wherever they are (issue 26 point 10)."""
    from krxflow.upkeep import backup

    major = backup.server_major(target)
    tools = backup.client_tools(major)
    for tool in (tools.pg_dump, tools.pg_restore):
        reported = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
        assert f"(PostgreSQL) {major}." in reported
    # KRXFLOW_PG_BIN is searched first
    own = tmp_path / "bin"
    own.mkdir()
    for name, tool in (("pg_dump", tools.pg_dump), ("pg_restore", tools.pg_restore)):
        (own / name).symlink_to(os.path.realpath(tool))
    chosen = backup.client_tools(major, {"KRXFLOW_PG_BIN": str(own), "PATH": os.environ["PATH"]})
    assert (chosen.pg_dump, chosen.pg_restore) == (str(own / "pg_dump"), str(own / "pg_restore"))
    # tools of another major version are passed over; none matching is an error naming what was found
    with pytest.raises(backup.BackupError, match=rf"of PostgreSQL 99 .* found: {own}/pg_dump \({major}\), "
                                                 rf"{own}/pg_restore \({major}\)\. .*postgresql-client-99"):
        backup.client_tools(99, {"KRXFLOW_PG_BIN": str(own), "PATH": ""})
    with pytest.raises(backup.BackupError, match="clients found: none.*KRXFLOW_PG_BIN"):
        backup.client_tools(99, {"PATH": str(tmp_path / "nothing-here")})


def _waiting_on_a_lock(conn, application: str) -> bool:
    return conn.execute("SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = %s AND wait_event_type = 'Lock'", (application,)).fetchone()[0]


def _wait_until(condition, what: str, deadline_seconds: float = 300) -> None:
    """Poll ``condition`` (a hang guard, not a timing assertion)."""
    import time

    give_up = time.monotonic() + deadline_seconds
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def test_backup_restore_check_passes_with_a_refresh_committed_during_the_dump(clean_db, target, tmp_path):
    """Issue 26 point 9: db_backup's restore check must not fail because db_matviews ran at the same time.

    As after a catch-up: the prices are loaded, the views still hold the rows of their last refresh
    (none). A real pg_dump is started and held at its table locks (another connection holds one
    table); meanwhile one more session's prices are written and db_matviews' refresh commits from
    another connection. The restore check passes: the dump's counts expect every view as the
    restore rebuilds it from the snapshot's prices, not the rows the view stored.
    """
    from krxflow.db.connection import connection
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import backup, matviews

    clean_db.execute("TRUNCATE daily_indicators")
    matviews.refresh_all(clean_db)  # populated and empty, as on a fresh database
    raw, adjusted = market.candle_market()
    last_day = raw["trade_date"].max()
    hook = BatchedPostgresHook()
    market.write(hook, market.STOCKS, raw[raw["trade_date"] < last_day], adjusted[adjusted["trade_date"] < last_day])
    for table in ("daily_prices", "daily_prices_adjusted"):
        hook.ensure_partitions(table, last_day, last_day)  # so the write during the dump is rows only
    days_in_dump = len(market.candle_days()) - 1
    assert clean_db.execute("SELECT count(*) FROM daily_market_summary").fetchone()[0] == 0  # stale

    holder = target.connect()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
    outcome: dict = {}

    def run_dump() -> None:
        try:
            outcome["result"] = backup.dump(target, tmp_path, with_counts=True)
        except BaseException as exc:  # re-raised below
            outcome["error"] = exc

    dumper = threading.Thread(target=run_dump, name="dump")
    dumper.start()
    try:
        with connection() as other:
            _wait_until(lambda: _waiting_on_a_lock(other, "pg_dump") or not dumper.is_alive(),
                        "pg_dump to wait for its table locks")
            assert dumper.is_alive(), f"the dump ended before it reached the held lock: {outcome}"
            market.write(hook, [], raw[raw["trade_date"] == last_day], adjusted[adjusted["trade_date"] == last_day])
            refreshed = matviews.refresh_all(other)  # committed (autocommit) while pg_dump runs
            assert [(r.view, r.concurrently) for r in refreshed] == [(v, True) for v in matviews.VIEWS]
            assert refreshed[0].rows == (days_in_dump + 1) * 2
            assert _waiting_on_a_lock(other, "pg_dump") and dumper.is_alive()  # still in the middle of it
    finally:
        holder.execute("COMMIT")
        holder.close()
        dumper.join()
    if "error" in outcome:
        raise outcome["error"]
    counts = outcome["result"].counts
    # the snapshot's prices, without the session written during the dump ...
    assert sum(v for k, v in counts.items() if k.startswith("daily_prices_p")) == days_in_dump * 3
    # ... and the views as a restore rebuilds them from those: neither the 0 rows they stored when
    # the snapshot was taken nor the rows of the refresh committed during the dump
    assert counts["daily_market_summary"] == days_in_dump * 2
    # (the session written during the dump falls in a week and month that already have candles)
    assert counts["period_candles"] == refreshed[1].rows > 0

    restored = backup.restore_check(target, outcome["result"].path, counts)
    assert restored.mismatches == {} and restored.rows == sum(counts.values())


def test_backup_of_an_unpopulated_view_restores_it_unpopulated(backed_db, target, tmp_path):
    """A view never refreshed (WITH NO DATA) cannot be counted: pg_dump restores it unpopulated, and
    the check leaves it out on both sides."""
    from krxflow.upkeep import backup, matviews

    from psycopg import sql

    backed_db.execute("REFRESH MATERIALIZED VIEW period_candles WITH NO DATA")
    try:
        result = backup.dump(target, tmp_path, with_counts=True)
    finally:
        matviews.refresh_all(backed_db)
    assert "period_candles" not in result.counts and result.counts["daily_market_summary"] > 0
    restored = backup.restore_check(target, result.path, result.counts, keep_database=True)
    try:
        assert restored.mismatches == {}
        with target.with_database(restored.database).connect() as conn:
            assert conn.execute("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'period_candles'"
                                ).fetchone()[0] is False
    finally:
        with target.with_database("postgres").connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(restored.database)))
