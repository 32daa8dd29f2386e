"""The ``kis_realtime`` DAG loads and is wired as documented; its plan splits the watchlist and follows the venue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dag(dagbag):
    assert dagbag.import_errors == {}
    return dagbag.dags["kis_realtime"]


def test_dag_is_wired(dag):
    assert set(dag.task_ids) == {"plan", "stream_session", "poll_rest", "drain_live", "drain_leftovers"}
    assert type(dag.get_task("stream_session")).__name__ == "KisStreamSensor"
    assert type(dag.get_task("poll_rest")).__name__ == "KisPollSensor"
    assert dag.get_task("drain_leftovers").trigger_rule == "all_done"
    assert {t.task_id for t in dag.get_task("drain_leftovers").upstream_list} >= {"stream_session", "poll_rest",
                                                                                  "drain_live"}
    assert all(t.retries >= 2 for t in dag.tasks) and dag.timetable.at == "07:30"
    for name in ("kis_venue", "kis_ws_cap", "kis_ws_books"):
        assert name in dag.doc_md


def test_plan_splits_the_watchlist_and_follows_the_venue(clean_db):
    from krxflow.kis.session import realtime_plan, session_window

    tickers = [f"{100000 + i:06d}" for i in range(50)]
    day = dt.date(2026, 3, 3)
    plan = realtime_plan(day, "run-1", {"watchlist": ",".join(tickers), "ws_cap": 40, "ws_books": 15,
                                        "venue": "KRX+NXT"}, clean_db)
    assert plan["ws_trades"] == tickers[:25] and plan["ws_books"] == tickers[:15]
    assert plan["rest"]["tickers"] == tickers[25:] and plan["market"] == "UN"
    assert plan["start"].endswith("08:00:00+09:00") and plan["end"].endswith("20:00:00+09:00")
    krx = session_window(day, venue_name="KRX")
    assert (krx[0].hour, krx[1].hour, krx[1].minute) == (9, 15, 30)
    whole = realtime_plan(day, "run-2", {"watchlist": ",".join(tickers[:10])}, clean_db)
    assert whole["rest"]["tickers"] == [] and whole["rest"]["start"] == whole["rest"]["end"]  # nothing left for REST
    with pytest.raises(ValueError):
        realtime_plan(day, "run-3", {"watchlist": "005930", "venue": "NYSE"}, clean_db)
