"""OpenDART financial statements (issue 28, point 3): the fake's fnlttMultiAcnt, the load of a day's
periodic reports' companies, and the key items as known on a date (real PostgreSQL and Redis)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
import requests

from krxflow.sample.dart_server import DEMO_KEY, FakeDart, FakeDartThread
from tests.test_krx_dags import _kst
from tests.test_dart import _client  # one way to make a test client

DAY = dt.date(2024, 3, 15)  # a Friday in the annual-report season
QUIET = dt.date(2024, 6, 12)


@pytest.fixture(scope="module")
def fake():
    return FakeDart(2_700)


@pytest.fixture
def server(fake):
    fake.reset()
    fake.corrections.clear()
    fake.today = None
    with FakeDartThread(fake) as running:
        yield running


@pytest.fixture
def db(clean_db):
    clean_db.execute("TRUNCATE dart_corp_codes, disclosures, financial_statements")
    clean_db.execute("DELETE FROM load_stats WHERE operation LIKE 'dart_%%'")
    return clean_db


def _multi(server, codes, year="2023", reprt_code="11011") -> dict:
    return requests.get(f"{server.url}/api/fnlttMultiAcnt.json",
                        params={"crtfc_key": DEMO_KEY, "corp_code": ",".join(codes), "bsns_year": year,
                                "reprt_code": reprt_code}, timeout=60).json()


def _periodic(fake: FakeDart, day: dt.date) -> list[dict]:
    from krxflow.dart.statements import report_of

    return [r for r in fake.filings(day) if r["corp_cls"] in ("Y", "K") and report_of(r["report_nm"])]


def _load_day(server, redis_client, day, client=None) -> dict:
    from krxflow.dart.loading import load_disclosures
    from krxflow.dart.statements import load_statements
    from krxflow.hooks import BatchedPostgresHook

    client = client or _client(server, redis_client)
    load_disclosures(client, day, hook=BatchedPostgresHook())
    return load_statements(client, day, hook=BatchedPostgresHook())


# ------------------------------------------------------------------------------------------- the fake
def test_the_fake_serves_fnlttmultiacnt_as_opendart_with_021_and_013(server):
    fake = server.fake
    fake.today = DAY
    filed = _periodic(fake, DAY)
    assert len(filed) > 100 and all(r["report_nm"] == "사업보고서 (2023.12)" for r in filed)
    codes = sorted({r["corp_code"] for r in filed})
    too_many = _multi(server, codes[:101])
    assert too_many["status"] == "021" and "list" not in too_many
    answer = _multi(server, codes[:100])
    assert answer["status"] == "000"
    rows = answer["list"]
    assert {r["corp_code"] for r in rows} == set(codes[:100])
    assert {(r["fs_div"], r["sj_div"]) for r in rows} == {("CFS", "BS"), ("CFS", "IS"), ("OFS", "BS"), ("OFS", "IS")}
    by_code = {r["corp_code"]: r["rcept_no"] for r in filed}
    assert all(r["rcept_no"] == by_code[r["corp_code"]] for r in rows)  # the filing's receipt number
    first = rows[0]
    for name in ("rcept_no", "reprt_code", "bsns_year", "corp_code", "stock_code", "fs_div", "fs_nm", "sj_div",
                 "sj_nm", "account_nm", "thstrm_nm", "thstrm_dt", "thstrm_amount", "frmtrm_nm", "frmtrm_dt",
                 "frmtrm_amount", "bfefrmtrm_nm", "bfefrmtrm_dt", "bfefrmtrm_amount", "ord", "currency"):
        assert name in first, name
    accounts = {r["account_nm"] for r in rows}
    assert {"매출액", "영업이익", "당기순이익", "자산총계", "자본총계", "부채총계"} <= accounts
    revenue = [r["thstrm_amount"] for r in rows if r["account_nm"] == "매출액"]
    assert all("," in a for a in revenue)  # strings with commas, as OpenDART
    assert all(1e10 < int(a.replace(",", "")) < 1e14 for a in revenue)
    # a company whose report is not filed yet (2024's annual report, asked in March 2024): 013
    assert _multi(server, [codes[0]], year="2024") == {"status": "013", "message": "조회된 데이타가 없습니다."}
    never = sorted({c["corp_code"] for c in fake.companies()[:fake.market.count]} - set(codes))[0]
    assert _multi(server, [never], year="2023", reprt_code="11011")["status"] in ("000", "013")
    for bad in ({"year": "2014"}, {"reprt_code": "11015"}):
        assert _multi(server, codes[:2], **bad)["status"] == "100", bad
    quarter = _multi(server, codes[:3], year="2023", reprt_code="11014")
    assert quarter["status"] in ("000", "013")
    if quarter["status"] == "000":
        assert all("thstrm_add_amount" in r for r in quarter["list"] if r["sj_div"] == "IS")


def test_a_statement_exists_only_once_its_report_was_filed(server):
    fake = server.fake
    filing = _periodic(fake, DAY)[0]
    fake.today = DAY - dt.timedelta(days=1)
    assert _multi(server, [filing["corp_code"]])["status"] == "013"
    fake.today = DAY
    assert {r["rcept_no"] for r in _multi(server, [filing["corp_code"]])["list"]} == {filing["rcept_no"]}


# ------------------------------------------------------------------------------------------- the load
def test_a_day_with_periodic_filings_loads_exactly_those_companies_in_calls_of_100_and_a_rerun_changes_nothing(
        server, redis_client, db):
    fake = server.fake
    client = _client(server, redis_client)
    from krxflow.dart.loading import load_disclosures
    from krxflow.dart.statements import load_statements
    from krxflow.hooks import BatchedPostgresHook

    load_disclosures(client, DAY, hook=BatchedPostgresHook())
    fake.reset()
    loaded = load_statements(client, DAY, hook=BatchedPostgresHook())
    filed = _periodic(fake, DAY)
    n = len({r["corp_code"] for r in filed})
    assert n > 100 and loaded["companies"] == n and loaded["groups"] == {"2023/11011": n}
    assert loaded["requests"] == math.ceil(n / 100) == fake.requests["fnlttMultiAcnt"]
    asked = [q["corp_code"].split(",") for api, q in fake.log if api == "fnlttMultiAcnt"]
    assert all(len(codes) <= 100 for codes in asked)
    assert sorted(c for codes in asked for c in codes) == sorted({r["corp_code"] for r in filed})
    assert set(fake.requests) == {"fnlttMultiAcnt"}  # nothing else: no polling of every company
    truth = {(r["rcept_no"], r["fs_div"], r["sj_div"], r["account_nm"]): int(r["thstrm_amount"].replace(",", ""))
             for f in filed for r in fake.statements(f["corp_code"], "2023", "11011")}
    stored = {tuple(row[:4]): int(row[4]) for row in db.execute(
        "SELECT rcept_no, fs_div, sj_div, account_nm, thstrm_amount FROM financial_statements").fetchall()}
    assert stored == truth and loaded["rows"] == len(truth) == loaded["inserted"] == 26 * n
    assert db.execute("SELECT count(DISTINCT corp_code), min(rcept_dt), max(rcept_dt), count(*) FILTER "
                      "(WHERE ticker IS NULL) FROM financial_statements").fetchone() == (n, DAY, DAY, 0)
    journal = db.execute("SELECT status, rows_in, details->>'requests' FROM load_stats "
                         "WHERE operation = 'dart_statements_day'").fetchall()
    assert journal == [("ok", len(truth), str(loaded["requests"]))]
    before = db.execute("SELECT * FROM financial_statements ORDER BY 1, 7, 8, 9").fetchall()
    again = load_statements(client, DAY, hook=BatchedPostgresHook())
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, len(truth))
    assert db.execute("SELECT * FROM financial_statements ORDER BY 1, 7, 8, 9").fetchall() == before
    print(f"statements of {DAY}: companies={n} requests={loaded['requests']} rows={loaded['rows']}")


def test_a_day_without_periodic_reports_sends_no_statement_request(server, redis_client, db):
    loaded = _load_day(server, redis_client, QUIET)
    assert (loaded["periodic_filings"], loaded["requests"], loaded["rows"]) == (0, 0, 0)
    assert server.fake.requests["fnlttMultiAcnt"] == 0
    assert db.execute("SELECT count(*) FROM financial_statements").fetchone()[0] == 0


def test_key_items_as_known_on_a_date_never_before_the_filing_and_corrected_after_a_correction(
        server, redis_client, db):
    fake = server.fake
    filing = _periodic(fake, DAY)[0]
    corp, corrected_on = filing["corp_code"], dt.date(2024, 4, 10)
    fake.today = DAY
    _load_day(server, redis_client, DAY)
    fake.corrections[(corp, "2023", "11011")] = corrected_on
    fake.today = corrected_on
    loaded = _load_day(server, redis_client, corrected_on)
    assert loaded["groups"] == {"2023/11011": 1} and loaded["requests"] == 1
    original = {r["account_nm"]: int(r["thstrm_amount"].replace(",", ""))
                for r in fake.statements(corp, "2023", "11011") if r["fs_div"] == "CFS"}
    assert original["매출액"] > 0

    def known(day):
        return db.execute("SELECT rcept_no, revenue, operating_income, net_income, total_assets, total_equity "
                          "FROM financial_key_items_as_of(%s) WHERE corp_code = %s AND bsns_year = 2023 "
                          "AND reprt_code = '11011' AND fs_div = 'CFS'", (day, corp)).fetchall()

    assert known(DAY - dt.timedelta(days=1)) == []  # never a report before it was filed
    fake.today = DAY
    first = {r["account_nm"]: int(r["thstrm_amount"].replace(",", ""))
             for r in fake.statements(corp, "2023", "11011") if r["fs_div"] == "CFS"}
    on_day = known(DAY)
    assert on_day == [(filing["rcept_no"], first["매출액"], first["영업이익"], first["당기순이익"], first["자산총계"],
                       first["자본총계"])]
    assert known(corrected_on - dt.timedelta(days=1)) == on_day
    after = known(corrected_on)
    assert after[0][0].startswith(f"{corrected_on:%Y%m%d}") and after[0][0] != filing["rcept_no"]
    assert after[0][1] == original["매출액"] != first["매출액"] and after[0][3] == original["당기순이익"]
    assert known(dt.date(2025, 1, 1)) == after
    everyone = db.execute("SELECT count(*) FROM financial_key_items_as_of(%s)", (DAY,)).fetchone()[0]
    assert everyone == 2 * len({r["corp_code"] for r in _periodic(fake, DAY)})  # CFS and OFS of each company
    assert db.execute("SELECT has_function_privilege('krxflow_readonly', 'financial_key_items_as_of(date)', "
                      "'EXECUTE'), has_table_privilege('krxflow_readonly', 'financial_statements', 'SELECT')"
                      ).fetchone() == (True, True)


def test_the_statements_task_follows_the_days_disclosures_in_the_dag(airflow_db, dagbag, server, db, redis_client,
                                                                     monkeypatch):
    dag = dagbag.get_dag("dart_disclosures")
    assert dag.get_task("statements").upstream_task_ids == {"load"}
    monkeypatch.setenv("AIRFLOW_CONN_DART_DEFAULT", server.connection_json())
    monkeypatch.setenv("KRXFLOW_DART_PER_MINUTE", "6000")
    assert dag.test(logical_date=_kst("2024-03-15", 23)).state == "success"
    n = len({r["corp_code"] for r in _periodic(server.fake, DAY)})
    assert db.execute("SELECT count(DISTINCT corp_code) FROM financial_statements").fetchone()[0] == n
    assert server.fake.requests["fnlttMultiAcnt"] == math.ceil(n / 100)
