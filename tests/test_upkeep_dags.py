"""The four upkeep DAGs load cleanly and run end to end with dag.test() (issue 5)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import upkeep_market as market

ROOT = Path(__file__).resolve().parents[1]
UPKEEP_DAGS = ("db_partitions", "db_matviews", "db_retention", "db_backup")


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _stats(pg, operation):
    return pg.execute("SELECT table_name, status, rows_in, details FROM load_stats WHERE operation = %s "
                      "ORDER BY id", (operation,)).fetchall()


def test_partition_matview_retention_backup_dags_load(dagbag):
    from airflow.sdk import AssetOrTimeSchedule

    assert not {k: v for k, v in dagbag.import_errors.items() if Path(k).stem in UPKEEP_DAGS}
    for dag_id in UPKEEP_DAGS:
        dag = dagbag.dags[dag_id]
        assert "krxflow" in dag.tags and dag.catchup is False and dag.doc_md
        assert all(task.retries >= 2 for task in dag.tasks)
    schedule = dagbag.dags["db_matviews"].timetable
    assert isinstance(schedule, AssetOrTimeSchedule)
    uris = {asset.uri.rsplit("/", 1)[-1] for asset in schedule.asset_condition.objects}
    assert uris == {"daily_prices", "daily_prices_adjusted"}


@pytest.mark.parametrize("dag_file", [f"{name}.py" for name in UPKEEP_DAGS])
def test_partition_matview_retention_backup_dag_files_parse_fast_and_offline(dag_file):
    """Parse-time rule: no pandas/pyarrow/psycopg/hook imports, well under a second."""
    probe = (
        "import sys, time, runpy; import airflow.sdk; t = time.perf_counter(); "
        f"runpy.run_path({str(ROOT / 'dags' / dag_file)!r}); took = time.perf_counter() - t; "
        "heavy = [m for m in ('pandas', 'pyarrow', 'krxflow.hooks', 'krxflow.upkeep', 'exchange_calendars') "
        "if m in sys.modules]; print(took, heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_matview_dag_runs_on_known_data(dagbag, airflow_db, clean_db):
    from krxflow.hooks import BatchedPostgresHook

    clean_db.execute("TRUNCATE daily_indicators")
    raw, adjusted = market.candle_market()
    market.write(BatchedPostgresHook(), market.STOCKS, raw, adjusted)
    run = dagbag.dags["db_matviews"].test()
    assert str(run.state) == "success", _states(run)
    days = len(market.candle_days())
    assert clean_db.execute("SELECT count(*) FROM daily_market_summary").fetchone()[0] == days * 2
    assert clean_db.execute("SELECT count(*) FROM daily_indicators").fetchone()[0] == days * 6
    refreshed = {row[0]: row for row in _stats(clean_db, "refresh")}
    assert set(refreshed) == {"daily_market_summary", "period_candles"}
    assert all(row[1] == "ok" for row in refreshed.values())
    writes = _stats(clean_db, "upsert")
    assert sum(row[2] for row in writes if row[0] == "daily_indicators") == days * 6


@pytest.fixture
def running_backfill(airflow_db):
    """A running krx_daily_prices run (as a by-date backfill has) in Airflow's metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    run_id = f"backfill__{time.time_ns()}"
    moment = dt.datetime(2024, 1, 3, 9, tzinfo=dt.timezone.utc)
    with create_session() as session:
        session.add(DagRun(dag_id="krx_daily_prices", run_id=run_id, run_type=DagRunType.BACKFILL_JOB,
                           state=DagRunState.RUNNING, logical_date=moment, run_after=moment))

    def finish() -> float:
        with create_session() as session:
            session.query(DagRun).filter(DagRun.run_id == run_id).update({"state": DagRunState.SUCCESS})
        return time.time()

    yield finish
    with create_session() as session:
        session.query(DagRun).filter(DagRun.run_id == run_id).delete()


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_matview_dag_waits_for_a_running_backfill_then_does_one_pass(dagbag, clean_db, running_backfill):
    """While krx_daily_prices has a running run, nothing is refreshed; once it ends, one pass does it all."""
    import threading

    from krxflow.hooks import BatchedPostgresHook

    clean_db.execute("TRUNCATE daily_indicators")
    raw, adjusted = market.candle_market()
    market.write(BatchedPostgresHook(), market.STOCKS, raw, adjusted)
    dag = dagbag.dags["db_matviews"]
    sensor = dag.get_task("loads_settled")
    # The DAG pokes every minute in reschedule mode; dag.test() does not wait out a reschedule, so
    # here the same poke runs every second inside one task attempt.
    kept, (sensor.poke_interval, sensor.mode) = (sensor.poke_interval, sensor.mode), (1, "poke")
    before = clean_db.execute("SELECT coalesce(max(id), 0) FROM load_stats").fetchone()[0]
    released = []
    waiter = threading.Timer(6.0, lambda: released.append(running_backfill()))
    waiter.start()
    try:
        run = dag.test()
    finally:
        waiter.cancel()
        sensor.poke_interval, sensor.mode = kept
    assert str(run.state) == "success", _states(run)
    assert released, "the run finished before the backfill did"
    first_write = clean_db.execute(
        "SELECT extract(epoch FROM min(finished_at)) FROM load_stats WHERE id > %s AND table_name IN "
        "('daily_market_summary', 'period_candles', 'daily_indicators')", (before,)).fetchone()[0]
    assert float(first_write) >= released[0], "the read models were written while the backfill still ran"
    assert clean_db.execute("SELECT count(*) FROM daily_indicators").fetchone()[0] == len(market.candle_days()) * 6


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_partition_and_retention_dags_run(dagbag, airflow_db, clean_db, monkeypatch):
    from krxflow.db import partitions
    from krxflow.db.partitions import KST
    from krxflow.hooks import BatchedPostgresHook

    from psycopg import sql

    for part in partitions.list_partitions(clean_db, "order_books"):  # other tests' partitions
        clean_db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(part.name)))
    today = dt.datetime.now(KST).date()
    old = today - dt.timedelta(days=60)
    BatchedPostgresHook().upsert("order_books", [{"ticker": "000010",
                                                  "ts": dt.datetime.combine(old, dt.time(9), tzinfo=KST)}])
    run = dagbag.dags["db_partitions"].test()
    assert str(run.state) == "success", _states(run)
    assert _states(run)["migrate"] == "success"
    names = [p.name for p in partitions.list_partitions(clean_db, "order_books")]
    assert names[0] == f"order_books_p{old:%Y%m%d}"
    assert names[-1] == f"order_books_p{today + dt.timedelta(days=7):%Y%m%d}"
    assert {row[0] for row in _stats(clean_db, "ensure_partitions")} >= {"daily_prices", "order_books"}

    # dry run first: nothing dropped, but reported
    run = dagbag.dags["db_retention"].test(run_conf={"dry_run": True})
    assert str(run.state) == "success", _states(run)
    assert [p.name for p in partitions.list_partitions(clean_db, "order_books")] == names
    # a Variable keeps order books for 90 days: the 60-day-old partition stays
    monkeypatch.setenv("AIRFLOW_VAR_RETENTION_DAYS_ORDER_BOOKS", "90")
    run = dagbag.dags["db_retention"].test(run_conf={"dry_run": False})  # dag.test() keeps earlier conf
    assert str(run.state) == "success", _states(run)
    assert [p.name for p in partitions.list_partitions(clean_db, "order_books")] == names
    monkeypatch.delenv("AIRFLOW_VAR_RETENTION_DAYS_ORDER_BOOKS")
    run = dagbag.dags["db_retention"].test(run_conf={"dry_run": False})
    assert str(run.state) == "success", _states(run)
    remaining = [p.name for p in partitions.list_partitions(clean_db, "order_books")]
    assert remaining[0] == f"order_books_p{today - dt.timedelta(days=30):%Y%m%d}"
    stats = [row for row in _stats(clean_db, "retention") if row[0] == "order_books"]
    assert [(row[3]["dry_run"], row[3]["retention_days"], len(row[3]["dropped"])) for row in stats] == [
        (True, 30, 30), (False, 90, 0), (False, 30, 30)]


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_backup_dag_dumps_and_restore_checks(dagbag, airflow_db, clean_db, monkeypatch, tmp_path):
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import matviews

    raw, adjusted = market.candle_market()
    market.write(BatchedPostgresHook(), market.STOCKS, raw, adjusted)
    matviews.refresh_all(clean_db)
    monkeypatch.setenv("AIRFLOW_VAR_KRXFLOW_BACKUP_DIR", str(tmp_path))
    run = dagbag.dags["db_backup"].test(run_conf={"restore_check": True})
    assert _states(run) == {"dump": "success", "rotate": "success", "restore_check": "success"}
    dumps = list(tmp_path.glob("krxflow-market-*.dump"))
    assert len(dumps) == 1
    (table, status, rows, details), = _stats(clean_db, "pg_dump")
    assert (table, status, details["file"], details["bytes"]) == ("backup", "ok", str(dumps[0]),
                                                                   dumps[0].stat().st_size)
    (table, status, restored_rows, details), = _stats(clean_db, "restore_check")
    assert (table, status, restored_rows) == ("backup", "ok", rows) and rows > len(raw)

    time.sleep(1.1)  # dump names carry seconds
    run = dagbag.dags["db_backup"].test(run_conf={"restore_check": False})
    assert _states(run) == {"dump": "success", "rotate": "success", "restore_check": "skipped"}
    assert len(list(tmp_path.glob("krxflow-market-*.dump"))) == 2


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_backup_dag_run_without_a_logical_date_takes_its_day_from_run_after(dagbag, airflow_db, clean_db,
                                                                             monkeypatch, tmp_path):
    """A run triggered with no logical date (UI/API) takes its KST day from run_after (issue 26 point 4):
    the restore check is due on a KST Sunday, which starts on Saturday in UTC."""
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.market_time import KST
    from krxflow.upkeep import matviews

    raw, adjusted = market.candle_market()
    market.write(BatchedPostgresHook(), market.STOCKS, raw, adjusted)
    matviews.refresh_all(clean_db)
    sunday = dt.datetime(2024, 3, 10, 3, tzinfo=KST)  # 2024-03-09 18:00 UTC, a Saturday there
    for run_after, restore_check in ((sunday, "success"), (sunday + dt.timedelta(days=1), "skipped")):
        monkeypatch.setenv("AIRFLOW_VAR_KRXFLOW_BACKUP_DIR", str(tmp_path / f"{run_after:%a}"))
        # restore_check None: by the day (dag.test() keeps an earlier test's conf otherwise)
        run = dagbag.dags["db_backup"].test(run_after=run_after, logical_date=None, run_conf={"restore_check": None})
        assert run.logical_date is None
        assert _states(run) == {"dump": "success", "rotate": "success", "restore_check": restore_check}
        assert len(list((tmp_path / f"{run_after:%a}").glob("krxflow-market-*.dump"))) == 1
