"""OpenDART (issue 28, first slice): the strict fake, the gate, the client's errors, and the loads.

The fake OpenDART serves on loopback (a thread of this process); the gate and the loads use the
real Redis and PostgreSQL of the test session.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile
from xml.etree import ElementTree

import pandas as pd
import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from krxflow.dart import errors
from krxflow.dart.client import DartClient
from krxflow.dart.config import DartConfig
from krxflow.dart.gate import DartGate, seconds_to_next_kst_day
from krxflow.sample.dart_server import DEMO_KEY, FakeDart, FakeDartThread
from tests.test_krx_dags import _kst

COMPANIES = 300
WEEKDAY = dt.date(2024, 3, 15)  # a Friday in the annual-report season
SATURDAY = dt.date(2024, 3, 16)
DART_TABLES = ("dart_corp_codes", "disclosures")


@pytest.fixture
def server():
    with FakeDartThread(FakeDart(COMPANIES, filings_per_company=1.5)) as running:
        yield running


@pytest.fixture
def dart_db(clean_db):
    clean_db.execute("TRUNCATE dart_corp_codes, disclosures")
    return clean_db


def _client(server, redis_client, key: str = DEMO_KEY, **gate) -> DartClient:
    gate.setdefault("per_minute", 6000)
    return DartClient(DartConfig(api_key=key, base_url=server.url), DartGate(redis_client, **gate))


def _get(server, api: str, **params) -> requests.Response:
    return requests.get(f"{server.url}/api/{api}", params={"crtfc_key": DEMO_KEY, **params}, timeout=30)


def _truth(fake: FakeDart, day: dt.date) -> list[tuple]:
    return sorted((r["rcept_no"], r["corp_code"], r["corp_name"], r["corp_cls"], r["stock_code"], r["report_nm"],
                   r["flr_nm"], dt.datetime.strptime(r["rcept_dt"], "%Y%m%d").date(), r["rm"],
                   f"https://dart.fss.or.kr/dsaf001/main.do?rcpNo={r['rcept_no']}")
                  for r in fake.filings(day) if r["corp_cls"] in ("Y", "K"))


def _stored(pg, day: dt.date) -> list[tuple]:
    return pg.execute("SELECT rcept_no, corp_code, corp_name, corp_cls, ticker, report_nm, flr_nm, rcept_dt, rm, url "
                      "FROM disclosures WHERE rcept_dt = %s ORDER BY rcept_no", (day,)).fetchall()


# ------------------------------------------------------------------------------------------- the fake
def test_the_fake_checks_the_key_and_counts_each_keys_requests_per_day(server):
    fake = server.fake
    fake.suspended.add("suspended-key-000000000000000000000000000")
    fake.keys.add("suspended-key-000000000000000000000000000")
    day = {"bgn_de": "20240315", "end_de": "20240315"}
    unknown = requests.get(f"{server.url}/api/list.json", params={"crtfc_key": "x" * 40, **day}, timeout=30).json()
    assert unknown["status"] == "010" and "list" not in unknown
    missing = requests.get(f"{server.url}/api/list.json", params=day, timeout=30).json()
    assert missing["status"] == "010"
    suspended = requests.get(f"{server.url}/api/list.json",
                             params={"crtfc_key": "suspended-key-000000000000000000000000000", **day}, timeout=30)
    assert suspended.json()["status"] == "011"
    fake.daily_limit = 3
    answers = [_get(server, "list.json", **day).json()["status"] for _ in range(4)]
    assert answers == ["000", "000", "000", "020"]
    assert fake.sent_today(DEMO_KEY) == 4 and fake.requests["list"] == 7
    assert fake.statuses["020"] == 1 and fake.statuses["010"] == 2


def test_the_fake_pages_within_its_limits_refuses_long_windows_and_answers_013(server):
    fake = server.fake
    for bad in ("0", "101", "x"):
        answer = _get(server, "list.json", bgn_de="20240315", end_de="20240315", page_count=bad).json()
        assert answer["status"] == "100" and "list" not in answer, bad
    long = _get(server, "list.json", bgn_de="20240101", end_de="20240415").json()
    assert long["status"] == "100" and "3개월" in long["message"] and "3 months" in long["message"]
    assert _get(server, "list.json", bgn_de="20240115", end_de="20240415", page_count=100)\
        .json()["status"] == "000"  # exactly 3 months is allowed
    company = fake.companies()[0]["corp_code"]
    with_code = _get(server, "list.json", corp_code=company, bgn_de="20231001", end_de="20240415").json()
    assert with_code["status"] in ("000", "013")  # a company's own filings have no 3-month window
    weekend = _get(server, "list.json", bgn_de="20240316", end_de="20240316").json()
    assert weekend == {"status": "013", "message": "조회된 데이타가 없습니다."}
    first = _get(server, "list.json", bgn_de="20240315", end_de="20240315", corp_cls="K", page_count=40).json()
    assert first["status"] == "000" and isinstance(first["total_page"], int) and first["page_no"] == 1
    assert first["total_page"] == -(-first["total_count"] // 40) >= 3
    rows = list(first["list"])
    for page in range(2, first["total_page"] + 1):
        rows += _get(server, "list.json", bgn_de="20240315", end_de="20240315", corp_cls="K", page_count=40,
                     page_no=page).json()["list"]
    assert len({r["rcept_no"] for r in rows}) == len(rows) == first["total_count"]
    assert rows == [r for r in fake.filings(WEEKDAY) if r["corp_cls"] == "K"]
    assert all(len(r["rcept_no"]) == 14 and r["rcept_dt"] == "20240315" and r["stock_code"] for r in rows)
    past = _get(server, "list.json", bgn_de="20240315", end_de="20240315", corp_cls="K", page_count=40,
                page_no=first["total_page"] + 1).json()
    assert past["status"] == "013" and "list" not in past
    names = {r["report_nm"] for r in fake.filings(WEEKDAY)}
    assert "사업보고서 (2023.12)" in names and "주요사항보고서(유상증자결정)" in names
    assert {r["rm"] for r in fake.filings(WEEKDAY)} <= {"", "유", "공", "연", "정", "정연"}
    november = {r["report_nm"] for r in fake.filings(dt.date(2026, 11, 13))}
    assert "분기보고서 (2026.09)" in november


def test_corp_code_xml_is_a_zip_of_corpcode_xml_in_opendarts_shape(server):
    answer = _get(server, "corpCode.xml")
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert archive.namelist() == ["CORPCODE.xml"]
        root = ElementTree.fromstring(archive.read("CORPCODE.xml"))
    assert root.tag == "result"
    items = root.findall("list")
    assert len(items) == COMPANIES + COMPANIES // 2
    assert all([c.tag for c in item] == ["corp_code", "corp_name", "corp_eng_name", "stock_code", "modify_date"]
               for item in items)
    codes = [item.findtext("stock_code") for item in items]
    assert codes.count(" ") == COMPANIES // 2  # unlisted: a single space, as OpenDART writes it
    assert sorted(c for c in codes if c != " ") == sorted(server.fake.market.tickers)
    assert all(len(item.findtext("corp_code")) == 8 and item.findtext("corp_code").isdigit() for item in items)
    refused = requests.get(f"{server.url}/api/corpCode.xml", params={"crtfc_key": "y" * 40}, timeout=30)
    assert ElementTree.fromstring(refused.content).findtext("status") == "010"


# ------------------------------------------------------------------------------------------- the gate
def _send_through_the_gate(url: str, cap: int, window: float, count: int) -> None:
    """One client of its own (own Redis connection, own gate object) sending ``count`` requests."""
    from krxflow import redis_client as redis_module

    client = DartClient(DartConfig(api_key=DEMO_KEY, base_url=url),
                        DartGate(redis_module.client(), per_minute=cap, window=window))
    for _ in range(count):
        client.get_json("list.json", bgn_de="20240315", end_de="20240315", page_count=1)


@pytest.mark.parametrize("how", ["threads", "processes"])
def test_two_clients_never_exceed_the_per_minute_cap(server, redis_client, how):
    """A cap of 20 per 2-s window (the 300/min default scaled down): 0.1 s from answer to next send,
    two clients in two threads or two processes sharing only Redis."""
    import multiprocessing

    cap, window, each = 20, 2.0, 15
    failures = []
    if how == "threads":
        def run() -> None:
            try:
                _send_through_the_gate(server.url, cap, window, each)
            except Exception as exc:  # reported below
                failures.append(exc)

        workers = [threading.Thread(target=run) for _ in range(2)]
    else:
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_send_through_the_gate, args=(server.url, cap, window, each))
                   for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert failures == [] and all(getattr(w, "exitcode", 0) == 0 for w in workers)
    arrivals = sorted(server.fake.arrivals)
    assert len(arrivals) == 2 * each
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= window / cap * 0.95, min(gaps)
    busiest = max(sum(1 for t in arrivals if start <= t < start + window) for start in arrivals)
    assert busiest <= cap, busiest
    assert arrivals[-1] - arrivals[0] >= (2 * each - 1) * window / cap * 0.95


def test_the_daily_budget_stops_before_opendarts_limit_with_a_clear_message(server, redis_client):
    client = _client(server, redis_client, budget=5)
    for _ in range(5):
        client.get_json("list.json", bgn_de="20240315", end_de="20240315", page_count=1)
    with pytest.raises(errors.DartBudgetError, match=r"daily budget of 5 OpenDART requests .* is used up") as caught:
        client.get_json("list.json", bgn_de="20240315", end_de="20240315", page_count=1)
    assert isinstance(caught.value, AirflowFailException)
    assert "00:00 KST" in str(caught.value) and "KRXFLOW_DART_DAILY_BUDGET" in str(caught.value)
    assert server.fake.requests["list"] == 5
    other = _client(server, redis_client, budget=5)  # the budget is the installation's, not a client's
    with pytest.raises(errors.DartBudgetError):
        other.get_json("list.json", bgn_de="20240315", end_de="20240315")
    assert server.fake.requests["list"] == 5 and other.gate.sent_today() == 5


@pytest.mark.parametrize("status", ["010", "011", "901"])
def test_key_errors_are_clear_and_never_retried(server, redis_client, status):
    fake = server.fake
    key = "k" * 40
    if status != "010":
        fake.keys.add(key)
        (fake.suspended if status == "011" else fake.expired).add(key)
    client = _client(server, redis_client, key=key)
    with pytest.raises(errors.DartKeyError, match="dart_default Connection") as caught:
        client.filings(WEEKDAY, "Y")
    assert caught.value.status == status and isinstance(caught.value, AirflowFailException)
    assert fake.requests["list"] == 1


def test_status_020_opens_the_dart_circuit_until_the_next_kst_day(server, redis_client):
    server.fake.daily_limit = 1
    client = _client(server, redis_client)
    client.get_json("list.json", bgn_de="20240315", end_de="20240315")
    with pytest.raises(errors.DartLimitError, match="circuit is open until 00:00 KST"):
        client.get_json("list.json", bgn_de="20240315", end_de="20240315")
    ttl = redis_client.ttl(client.gate.circuit_key())
    assert abs(ttl - seconds_to_next_kst_day()) <= 5 and ":dart:circuit:" in client.gate.circuit_key()
    with pytest.raises(errors.DartCircuitOpenError, match="OPEN"):
        _client(server, redis_client).get_json("list.json", bgn_de="20240315", end_de="20240315")
    assert server.fake.requests["list"] == 2  # nothing went out while the circuit was open
    assert not redis_client.exists(client.gate.circuit_key().replace(":dart:", ":krx:"))


def test_maintenance_and_http_faults_are_retryable(server, redis_client):
    client = _client(server, redis_client)
    server.fake.maintenance_next = 1
    with pytest.raises(errors.DartMaintenanceError) as caught:
        client.get_json("list.json", bgn_de="20240315", end_de="20240315")
    assert not isinstance(caught.value, AirflowFailException)
    server.fake.fail_next = 1
    with pytest.raises(errors.DartHttpError, match="HTTP 500"):
        client.get_json("list.json", bgn_de="20240315", end_de="20240315")
    assert client.get_json("list.json", bgn_de="20240315", end_de="20240315")["status"] == "000"


# ------------------------------------------------------------------------------------------- the loads
def _stocks(pg, fake: FakeDart) -> None:
    from krxflow.hooks import BatchedPostgresHook

    rows = [(t, fake.market.profile(t).name, fake.market.profile(t).market) for t in fake.market.tickers]
    BatchedPostgresHook().upsert("stocks", pd.DataFrame(rows, columns=["ticker", "name", "market"]))


def test_corp_codes_load_every_company_linked_to_stocks_and_a_rerun_changes_nothing(server, redis_client, dart_db):
    from krxflow.dart.loading import load_corp_codes
    from krxflow.hooks import BatchedPostgresHook

    _stocks(dart_db, server.fake)
    client = _client(server, redis_client)
    first = load_corp_codes(client, hook=BatchedPostgresHook())
    assert first["requests"] == 1 and first["companies"] == COMPANIES + COMPANIES // 2
    assert first["inserted"] == first["companies"] and first["listed"] == first["stocks_linked"] == COMPANIES
    assert dart_db.execute("SELECT count(*) FROM dart_corp_codes WHERE stock_code IS NULL").fetchone()[0] == \
        COMPANIES // 2
    linked = dart_db.execute("SELECT c.corp_code, c.corp_name, s.name FROM dart_corp_codes c "
                             "JOIN stocks s ON s.ticker = c.stock_code WHERE c.stock_code = '005930'").fetchone()
    assert linked[1] == linked[2] and linked[0] == server.fake.companies()[0]["corp_code"]
    before = dart_db.execute("SELECT * FROM dart_corp_codes ORDER BY corp_code").fetchall()
    again = load_corp_codes(client, hook=BatchedPostgresHook())
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, first["companies"])
    assert dart_db.execute("SELECT * FROM dart_corp_codes ORDER BY corp_code").fetchall() == before


def test_a_days_disclosures_equal_the_fakes_truth_row_for_row_and_a_rerun_changes_nothing(server, redis_client,
                                                                                          dart_db):
    from krxflow.dart.loading import load_disclosures
    from krxflow.hooks import BatchedPostgresHook

    client = _client(server, redis_client)
    loaded = load_disclosures(client, WEEKDAY, hook=BatchedPostgresHook())
    truth = _truth(server.fake, WEEKDAY)
    assert _stored(dart_db, WEEKDAY) == truth and len(truth) > 200
    by_class = {c: sum(1 for r in truth if r[3] == c) for c in ("Y", "K")}
    assert loaded["by_class"] == by_class and loaded["inserted"] == len(truth)
    assert loaded["requests"] == sum(-(-n // 100) for n in by_class.values()) >= 3
    unlisted = [r["rcept_no"] for r in server.fake.filings(WEEKDAY) if r["corp_cls"] == "E"]
    assert unlisted and dart_db.execute("SELECT count(*) FROM disclosures WHERE rcept_no = ANY(%s)",
                                        (unlisted,)).fetchone()[0] == 0  # only listed companies are kept
    _stocks(dart_db, server.fake)
    assert dart_db.execute("SELECT count(*) FROM disclosures d JOIN stocks s USING (ticker)").fetchone()[0] == \
        len(truth)  # every filing links to its stock
    journal = dart_db.execute("SELECT status, rows_in, details->>'requests' FROM load_stats "
                              "WHERE operation = 'dart_disclosures_day'").fetchall()
    assert journal == [("ok", len(truth), str(loaded["requests"]))]
    again = load_disclosures(client, WEEKDAY, hook=BatchedPostgresHook())
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, len(truth))
    assert _stored(dart_db, WEEKDAY) == truth


def test_a_day_without_filings_is_empty_and_successful(server, redis_client, dart_db):
    from krxflow.dart.loading import load_disclosures
    from krxflow.hooks import BatchedPostgresHook

    loaded = load_disclosures(_client(server, redis_client), SATURDAY, hook=BatchedPostgresHook())
    assert (loaded["filings"], loaded["requests"]) == (0, 2)
    assert dart_db.execute("SELECT count(*) FROM disclosures").fetchone()[0] == 0
    assert dart_db.execute("SELECT status, rows_in FROM load_stats WHERE operation = 'dart_disclosures_day'")\
        .fetchall() == [("ok", 0)]


def test_a_fault_mid_pages_writes_nothing_of_the_day_and_a_retry_loads_it(server, redis_client, dart_db):
    from krxflow.dart.loading import load_disclosures
    from krxflow.hooks import BatchedPostgresHook

    server.fake.fail_skip, server.fake.fail_next = 1, 1  # page 1 of the KOSPI filings passes, page 2 fails
    client = _client(server, redis_client)
    with pytest.raises(errors.DartHttpError):
        load_disclosures(client, WEEKDAY, hook=BatchedPostgresHook())
    assert [q.get("page_no") for _, q in server.fake.log] == ["1", "2"]
    assert dart_db.execute("SELECT count(*) FROM disclosures").fetchone()[0] == 0
    load_disclosures(client, WEEKDAY, hook=BatchedPostgresHook())
    assert _stored(dart_db, WEEKDAY) == _truth(server.fake, WEEKDAY)


def test_requests_per_day_on_the_default_fake_market(redis_client):
    """The default fake (2,700 companies, realistic filing rates): requests of a normal and a season day."""
    with FakeDartThread(FakeDart(2_700)) as full:
        client = _client(full, redis_client)
        counts = {}
        for day in (dt.date(2024, 6, 12), dt.date(2024, 3, 15), SATURDAY):
            before = client.requests_sent
            filings = sum(len(client.filings(day, c)) for c in ("Y", "K"))
            counts[day.isoformat()] = (filings, client.requests_sent - before)
    print("requests per day on the default fake:", counts)
    assert counts["2024-06-12"][1] <= 4 and counts["2024-03-15"][1] <= 8 and counts["2024-03-16"] == (0, 2)
    assert counts["2024-03-15"][0] > counts["2024-06-12"][0] > 50


# ------------------------------------------------------------------------------------------- the DAGs
def test_the_dart_dags_parse_and_a_run_loads_its_kst_day(airflow_db, dagbag, server, dart_db, redis_client,
                                                         monkeypatch):
    for dag_id in ("dart_corp_codes", "dart_disclosures"):
        dag = dagbag.get_dag(dag_id)
        assert dag is not None and dag.default_args["retries"] >= 2 and "dart" in dag.tags
    assert {a.uri.rsplit("/", 1)[-1] for a in dagbag.get_dag("dart_disclosures").get_task("load").outlets} == \
        {"disclosures"}
    monkeypatch.setenv("AIRFLOW_CONN_DART_DEFAULT", server.connection_json())
    monkeypatch.setenv("KRXFLOW_DART_PER_MINUTE", "6000")
    dag = dagbag.get_dag("dart_disclosures")
    assert dag.test(logical_date=_kst("2024-03-15", 23)).state == "success"
    assert _stored(dart_db, WEEKDAY) == _truth(server.fake, WEEKDAY)
    assert dart_db.execute("SELECT count(DISTINCT rcept_dt) FROM disclosures").fetchone()[0] == 1
    assert dag.test(logical_date=_kst("2024-03-16", 23)).state == "success"  # a Saturday: 013, empty, success
    assert dart_db.execute("SELECT count(DISTINCT rcept_dt) FROM disclosures").fetchone()[0] == 1


def test_sample_mode_without_a_connection_loads_corp_codes_from_the_local_fake(airflow_db, dagbag, dart_db,
                                                                              redis_client, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_DART_DEFAULT", raising=False)
    monkeypatch.setenv("KRXFLOW_SAMPLE_TICKERS", "40")
    monkeypatch.setenv("KRXFLOW_DART_PER_MINUTE", "6000")
    assert dagbag.get_dag("dart_corp_codes").test().state == "success"
    assert dart_db.execute("SELECT count(*), count(stock_code) FROM dart_corp_codes").fetchone() == (60, 40)
