"""db_backup: real pg_dump / pg_restore against the session's market database (issue 5)."""

from __future__ import annotations

import datetime as dt
import logging
import os
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
    import dataclasses

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
    with pytest.raises(backup.BackupError, match="pg_dump failed") as failure:
        backup.dump(broken, tmp_path)
    assert SECRET not in str(failure.value)
    assert list(tmp_path.iterdir()) == []  # the partial file is gone

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
