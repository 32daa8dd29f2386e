"""OpenDART corporate-action events (issue 28, point 4): the fake's DS005 services, the load of a
day's material-event filings, and the cross-check against adjustment_factors (real PG and Redis)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import requests

from krxflow.sample.dart_server import DEMO_KEY, FakeDart, FakeDartThread, event_dates
from tests.test_dart import _client  # one way to make a test client

DAY = dt.date(2024, 3, 15)
EVENT_NAMES = ("유상증자결정", "무상증자결정", "감자결정")


@pytest.fixture(scope="module")
def fake():
    return FakeDart(2_700)


@pytest.fixture
def server(fake):
    fake.reset()
    with FakeDartThread(fake) as running:
        yield running


@pytest.fixture
def db(clean_db):
    clean_db.execute("TRUNCATE disclosures, corporate_actions, adjustment_factors")
    clean_db.execute("DELETE FROM load_stats WHERE operation LIKE 'dart_%%'")
    return clean_db


def _events(fake, day) -> list[dict]:
    return [r for r in fake.filings(day) if r["corp_cls"] in ("Y", "K")
            and any(f"주요사항보고서({n})" in r["report_nm"] for n in EVENT_NAMES)]


def test_the_fake_serves_ds005_events_for_the_filings_that_name_them(server):
    filings = _events(server.fake, DAY)
    kinds = {n for r in filings for n in EVENT_NAMES if n in r["report_nm"]}
    assert kinds == set(EVENT_NAMES)
    get = lambda api, **p: requests.get(f"{server.url}/api/{api}.json", params={"crtfc_key": DEMO_KEY, **p},
                                        timeout=30).json()
    assert get("crDecsn", bgn_de="20240315", end_de="20240315")["status"] == "100"  # corp_code is required
    reduction = next(r for r in filings if "감자결정" in r["report_nm"])
    answer = get("crDecsn", corp_code=reduction["corp_code"], bgn_de="20240315", end_de="20240315")
    assert answer["status"] == "000" and [r["rcept_no"] for r in answer["list"]] == [reduction["rcept_no"]]
    row = answer["list"][0]
    assert row["cr_std"].endswith("일") and "," in row["bfcr_tisstk_ostk"] and row["crstk_estk_cnt"] == "-"
    assert get("fricDecsn", corp_code=reduction["corp_code"], bgn_de="20240315", end_de="20240315")["status"] == "013"


def test_a_days_material_events_load_with_one_request_per_company_and_kind_and_a_rerun_changes_nothing(
        server, redis_client, db):
    from krxflow.dart.events import load_corporate_actions
    from krxflow.dart.loading import load_disclosures
    from krxflow.hooks import BatchedPostgresHook

    client = _client(server, redis_client)
    load_disclosures(client, DAY, hook=BatchedPostgresHook())
    server.fake.reset()
    loaded = load_corporate_actions(client, DAY, hook=BatchedPostgresHook())
    filings = _events(server.fake, DAY)
    pairs = {(r["corp_code"], next(n for n in EVENT_NAMES if f"({n})" in r["report_nm"])) for r in filings}
    assert loaded["event_filings"] == loaded["events"] == len(filings) and loaded["missing"] == 0
    assert loaded["requests"] == len(pairs) == sum(server.fake.requests.values())
    assert set(server.fake.requests) <= {"piicDecsn", "fricDecsn", "crDecsn"}  # never list or every company
    stored = db.execute("SELECT rcept_no, kind, ticker, shares_before, new_shares, shares_after, ratio, record_date "
                        "FROM corporate_actions ORDER BY rcept_no").fetchall()
    assert [r[0] for r in stored] == sorted(r["rcept_no"] for r in filings)
    for rcept_no, kind, ticker, before, new, after, ratio, record in stored:
        assert ticker and before > 0 and after == before + new
        if kind == "capital_reduction":
            assert new < 0 and 0 < ratio < 1 and abs(after - before * (1 - float(ratio))) <= 1
        if kind == "bonus_issue":
            assert float(ratio) in (0.5, 1.0, 0.2, 2.0)
        if kind != "rights_issue":
            assert record == event_dates(rcept_no)["record"]
        else:
            assert record is None and 0 < ratio < 1
    again = load_corporate_actions(client, DAY, hook=BatchedPostgresHook())
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, len(filings))


def test_a_factor_without_a_filed_event_is_flagged_in_load_stats_with_both_sides(server, redis_client, db):
    from krxflow.dart.events import cross_check_factors, load_corporate_actions
    from krxflow.dart.loading import load_disclosures
    from krxflow.hooks import BatchedPostgresHook

    client = _client(server, redis_client)
    load_disclosures(client, DAY, hook=BatchedPostgresHook())
    load_corporate_actions(client, DAY, hook=BatchedPostgresHook())
    bonus = db.execute("SELECT ticker, record_date FROM corporate_actions WHERE kind = 'bonus_issue' "
                       "ORDER BY rcept_no LIMIT 1").fetchone()
    explained_ex = bonus[1] - dt.timedelta(days=1)
    factors = pd.DataFrame([
        {"ticker": bonus[0], "ex_date": explained_ex, "previous_date": explained_ex - dt.timedelta(days=1),
         "previous_close": 10_000, "base_price": 6_667, "factor": 0.6667, "kind": "rights_or_bonus"},
        {"ticker": bonus[0], "ex_date": dt.date(2024, 9, 2), "previous_date": dt.date(2024, 8, 30),
         "previous_close": 10_000, "base_price": 5_000, "factor": 0.5, "kind": "unexplained"},
    ])
    BatchedPostgresHook().upsert("adjustment_factors", factors)
    checked = cross_check_factors(dt.date(2024, 3, 1), dt.date(2024, 12, 31), hook=BatchedPostgresHook())
    assert checked["unexplained"] == 1 and checked["factors"][0]["ex_date"] == "2024-09-02"
    status, rows_in, error, details = db.execute(
        "SELECT status, rows_in, error, details FROM load_stats WHERE operation = 'dart_events_cross_check'").fetchone()
    assert (status, rows_in) == ("warning", 1)
    assert bonus[0] in error and "2024-09-02" in error and "0.5" in error  # the factor's side
    assert details["unexplained"][0]["filed_nearby"] == []  # the filings' side: none within 120 days
    clean = cross_check_factors(explained_ex, explained_ex, hook=BatchedPostgresHook())
    assert clean["unexplained"] == 0
    assert db.execute("SELECT status FROM load_stats WHERE operation = 'dart_events_cross_check' "
                      "ORDER BY 1").fetchall() == [("ok",), ("warning",)]


def test_the_events_task_follows_the_days_disclosures_in_the_dag(airflow_db, dagbag, server, db, redis_client,
                                                                 monkeypatch):
    from tests.test_krx_dags import _kst

    dag = dagbag.get_dag("dart_disclosures")
    assert dag.get_task("events").upstream_task_ids == {"load"} and dag.default_args["retries"] >= 2
    monkeypatch.setenv("AIRFLOW_CONN_DART_DEFAULT", server.connection_json())
    monkeypatch.setenv("KRXFLOW_DART_PER_MINUTE", "6000")
    assert dag.test(logical_date=_kst("2024-03-15", 23)).state == "success"
    assert db.execute("SELECT count(*) FROM corporate_actions").fetchone()[0] == len(_events(server.fake, DAY))
    assert db.execute("SELECT status, details->>'first' FROM load_stats "
                      "WHERE operation = 'dart_events_cross_check'").fetchall() == [("ok", "2024-03-09")]
