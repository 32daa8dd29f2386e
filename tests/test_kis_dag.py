"""The ``kis_intraday`` DAG: loads cleanly, is wired as documented, and runs end to end.

The end-to-end run is ``airflow dags test`` in a subprocess bounded with ``timeout -s INT``
(``dags test`` runs triggers in-process and ignores defer timeouts), polling the fake KIS server
for a short demo session (Param ``demo_seconds``) in short windows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from krxflow.sample.kis_server import FakeKis, FakeKisThread
from krxflow.market_time import kst_today

ROOT = Path(__file__).resolve().parents[1]


def test_dag_loads_and_is_wired(dagbag):
    assert dagbag.import_errors == {}
    dag = dagbag.dags["kis_intraday"]
    assert "krxflow" in dag.tags and dag.catchup is False
    assert type(dag.timetable).__name__ == "KRXSessionTimetable" and dag.timetable.at == "08:30"
    assert set(dag.task_ids) == {"plan", "poll_session", "drain_leftovers"}
    poll = dag.get_task("poll_session")
    assert type(poll).__name__ == "KisPollSensor" and poll.retries >= 2
    assert {t.task_id for t in poll.upstream_list} == {"plan"}
    assert dag.get_task("drain_leftovers").trigger_rule == "none_skipped"
    for name in ("kis_watchlist", "kis_watchlist_size", "kis_window_seconds", "kis_session_end", "kis_demo_seconds"):
        assert name in dag.doc_md


def test_watchlist_from_variables_and_stocks(clean_db):
    from krxflow.kis import watchlist

    clean_db.execute("INSERT INTO stocks (ticker, name, market, market_cap) VALUES "
                     "('005930', 'A', 'KOSPI', 400), ('000660', 'B', 'KOSPI', 300), ('035420', 'C', 'KOSPI', 200), "
                     "('091990', 'D', 'KOSDAQ', 100), ('000040', 'E', 'KOSPI', 999)")
    clean_db.execute("UPDATE stocks SET delisted = true WHERE ticker = '000040'")
    assert watchlist.resolve(clean_db, None, 2) == ["005930", "000660"]
    assert watchlist.resolve(clean_db, "", None) == ["005930", "000660", "035420", "091990"]
    assert watchlist.resolve(clean_db, "all", None) == ["000660", "005930", "035420", "091990"]
    assert watchlist.resolve(clean_db, "005930, 000660;005930", None) == ["005930", "000660"]
    assert watchlist.resolve(clean_db, '["035420"]', None) == ["035420"]
    with pytest.raises(ValueError, match="6-character"):
        watchlist.resolve(clean_db, "5930", None)
    clean_db.execute("DELETE FROM stocks")
    with pytest.raises(ValueError, match="watchlist is empty"):
        watchlist.resolve(clean_db, None, None)


def test_session_window_follows_the_calendar():
    from krxflow.kis.session import session_window

    start, end = session_window(dt.date(2025, 7, 25))
    assert (start.hour, start.minute, end.hour, end.minute) == (9, 0, 15, 30)
    start, end = session_window(dt.date(2025, 7, 25), "18:00")
    assert (end.hour, end.minute) == (18, 0)
    with pytest.raises(ValueError, match="not an XKRX trading day"):
        session_window(dt.date(2025, 10, 6))  # Chuseok
    with pytest.raises(ValueError, match="HH:MM"):
        session_window(dt.date(2025, 7, 25), "late")


#: The polling window of the end-to-end run (a window ends before the next one starts).
WINDOW_SECONDS = 2


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_dag_runs_end_to_end_against_the_fake_server(airflow_db, clean_db, redis_client):
    with FakeKisThread(FakeKis(rate=18, move_probability=0.5)) as srv:
        env = {**os.environ, "AIRFLOW_CONN_KIS_DEFAULT": srv.connection_json(),
               "AIRFLOW_VAR_KIS_WATCHLIST": "005930,000660,035420,005380,000001,999999",
               "AIRFLOW_VAR_KIS_WINDOW_SECONDS": str(WINDOW_SECONDS),
               "PYTHONPATH": str(ROOT)}
        from krxflow.calendar import previous_trading_day

        session = previous_trading_day(kst_today()).isoformat()  # after the DAG's start_date
        # The demo's clock starts in `plan`; the sensor's windows start when its task does, which a
        # loaded machine delays by seconds: 20 s leaves room for two windows after a long delay.
        conf = json.dumps({"demo_seconds": 20})
        started = time.monotonic()
        proc = subprocess.run([shutil.which("timeout"), "-s", "INT", "240", sys.executable, "-m", "airflow", "dags",
                               "test", "kis_intraday", session, "-c", conf],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
        assert time.monotonic() - started < 240
        served = srv.fake.counts["served"]
    quotes = clean_db.execute("SELECT count(*), count(DISTINCT ticker) FROM intraday_quotes").fetchone()
    books = clean_db.execute("SELECT count(*) FROM order_books").fetchone()[0]
    assert quotes[0] > 0 and quotes[1] == 5 and books > 0  # 999999 is unknown to KIS
    windows = clean_db.execute("SELECT dag_id, task_id, status, details FROM load_stats "
                               "WHERE operation = 'kis_poll_window' ORDER BY id").fetchall()
    assert len(windows) >= 2  # the sensor chained windows: 20 s in 2-s windows
    starts = [int(w[3]["window"]) for w in windows]  # a window is named by the second it started
    assert all(later - earlier >= WINDOW_SECONDS - 1 for earlier, later in zip(starts, starts[1:])), starts
    assert all(w[0] == "kis_intraday" and w[1] == "poll_session" for w in windows)
    assert sum(w[3]["rows_written"] for w in windows) == quotes[0] + books
    assert sum(w[3]["successes"] for w in windows) == served
    writes = clean_db.execute("SELECT count(*) FROM load_stats WHERE operation = 'append' "
                              "AND table_name IN ('intraday_quotes', 'order_books')").fetchone()[0]
    assert writes >= 2  # every row went through the batched hook
    assert not list(redis_client.scan_iter(match=os.environ["KRXFLOW_REDIS_PREFIX"] + "kis:buffer:*"))


def test_closed_since_tells_a_past_window_from_a_current_one():
    from krxflow.kis.session import closed_since

    plan = {"end": "2025-07-25T15:30:00+09:00"}
    assert closed_since(plan, dt.datetime(2025, 7, 25, 6, 29, tzinfo=dt.timezone.utc)) is None  # 15:29 KST
    assert closed_since(plan, dt.datetime(2025, 7, 25, 6, 30, tzinfo=dt.timezone.utc)).hour == 15


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_the_run_unpausing_creates_for_a_closed_session_is_skipped_without_polling(dagbag, airflow_db, clean_db,
                                                                                    redis_client):
    """Unpausing kis_intraday creates the latest session's run at once (catchup off). When that
    session has closed, the run ends at once: every task skipped, not one KIS request."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    from krxflow.calendar import previous_trading_day
    from krxflow.kis.session import session_window

    dag = dagbag.get_dag("kis_intraday")
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=pendulum.instance(dag.start_date), latest=None, catchup=False))
    session = info.logical_date.in_timezone("Asia/Seoul").date()
    if session_window(session)[1] > dt.datetime.now(dt.timezone.utc):  # tests run during today's session
        session = previous_trading_day(session)
    logical_date = pendulum.datetime(session.year, session.month, session.day, tz="Asia/Seoul")
    with FakeKisThread(FakeKis(rate=18)) as srv:
        env = {**os.environ, "AIRFLOW_CONN_KIS_DEFAULT": srv.connection_json(),
               "AIRFLOW_VAR_KIS_WATCHLIST": "005930,000660", "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        proc = subprocess.run([shutil.which("timeout"), "-s", "INT", "120", sys.executable, "-m", "airflow", "dags",
                               "test", "kis_intraday", logical_date.isoformat()],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        requests = srv.fake.counts.get("requests", 0) + srv.fake.counts.get("token_requests", 0)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
    assert requests == 0 and seconds < 90
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session

    with create_session() as db:
        run = db.query(DagRun).filter(DagRun.dag_id == "kis_intraday",
                                      DagRun.logical_date == logical_date).one()
        states = {ti.task_id: ti.state for ti in db.query(TaskInstance).filter(
            TaskInstance.dag_id == "kis_intraday", TaskInstance.run_id == run.run_id)}
    assert states == {"plan": "skipped", "poll_session": "skipped", "drain_leftovers": "skipped"}
    assert clean_db.execute("SELECT count(*) FROM intraday_quotes").fetchone()[0] == 0
