"""The read API's report routes (issue 17) against the real market database, through FastAPI's TestClient.

Reports go in through the normal load path (sample source -> load_report -> BatchedPostgresHook);
requests carry real Airflow JWTs, as in tests/test_api_read.py.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets

import pytest

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))

SESSIONS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4), dt.date(2024, 1, 5), dt.date(2024, 1, 8)]
SAMSUNG = "005930"
TICKERS = 30


@pytest.fixture(scope="module")
def reports():
    from psycopg import sql

    from krxflow.db.connection import connection
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.master import load_listing
    from krxflow.krx.report_catalog import REPORTS
    from krxflow.krx.report_loading import load_report
    from krxflow.sample.market import SampleSource

    tables = ["stocks", "daily_prices", "load_stats", "krx_indices"] + [r.table for r in REPORTS.values()]
    with connection() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
    source = SampleSource(TICKERS)
    load_listing(source, SESSIONS[-1], include_delisted=False)
    for day in SESSIONS:
        load_daily_prices(source, day)
        for name in REPORTS:
            load_report(source, name, day)
    return source


@pytest.fixture
def client(viewer_token, reports):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app, headers={"Authorization": f"Bearer {viewer_token}"}) as c:
        yield c


ROUTES = ("/indices", "/indices/1001/prices", f"/stocks/{SAMSUNG}/investors", f"/stocks/{SAMSUNG}/fundamentals",
          f"/stocks/{SAMSUNG}/shorts")


def test_every_report_route_needs_airflow_login(viewer_token, reports):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app) as anonymous:
        for path in ROUTES:
            assert anonymous.get(path).status_code == 401, path


def test_indices_list_and_pages(client, reports):
    body = client.get("/indices").json()
    # the sample's indices with members (a sector index of an industry without tickers has no prices)
    priced = {code for day in SESSIONS for code in reports.index_prices(day)["index_code"]}
    kospi = sum(1 for code in priced if code.startswith("1"))
    assert body["total"] == len(priced) and body["next_offset"] is None
    assert {"code": "1001", "name": "코스피", "group": "KOSPI", "first_seen": "2024-01-02",
            "last_seen": "2024-01-08"} in body["items"]
    page = client.get("/indices", params={"group": "kospi", "limit": 2}).json()
    assert [i["group"] for i in page["items"]] == ["KOSPI", "KOSPI"] and page["total"] == kospi and page["next_offset"] == 2
    assert client.get("/indices", params={"offset": 50}).json() == {"items": [], "total": len(priced), "limit": 100,
                                                                     "offset": 50, "next_offset": None}


def test_index_prices_are_the_loaded_levels_paged(client, reports):
    body = client.get("/indices/1001/prices", params={"start": "2024-01-01", "end": "2024-01-31", "limit": 3}).json()
    assert body["name"] == "코스피" and [p["date"] for p in body["items"]] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert body["next_start"] == "2024-01-05"
    expected = reports.index_prices(dt.date(2024, 1, 3)).set_index("index_code").loc["1001"]
    assert body["items"][1]["close"] == expected["close"] and body["items"][1]["volume"] == expected["volume"]
    rest = client.get("/indices/1001/prices", params={"start": body["next_start"], "end": "2024-01-31"}).json()
    assert [p["date"] for p in rest["items"]] == ["2024-01-05", "2024-01-08"] and rest["next_start"] is None


def test_investors_page_by_session_and_sum_to_zero(client):
    body = client.get(f"/stocks/{SAMSUNG}/investors", params={"start": "2024-01-01", "end": "2024-01-31",
                                                             "limit": 2}).json()
    assert sorted({r["date"] for r in body["items"]}) == ["2024-01-02", "2024-01-03"]
    assert len(body["items"]) == 22 and body["next_start"] == "2024-01-04"
    for day in ("2024-01-02", "2024-01-03"):
        assert sum(r["net_volume"] for r in body["items"] if r["date"] == day) == 0
    foreign = client.get(f"/stocks/{SAMSUNG}/investors", params={"start": "2024-01-01", "end": "2024-01-31",
                                                                "investor": "foreign"}).json()
    assert {r["investor"] for r in foreign["items"]} == {"foreign"} and len(foreign["items"]) == len(SESSIONS)


def test_fundamentals_and_shorts(client, reports):
    body = client.get(f"/stocks/{SAMSUNG}/fundamentals", params={"start": "2024-01-01", "end": "2024-01-31"}).json()
    expected = reports.fundamentals(dt.date(2024, 1, 2)).set_index("ticker").loc[SAMSUNG]
    first = body["items"][0]
    assert first["date"] == "2024-01-02" and first["eps"] == expected["eps"] and first["per"] == expected["per"]
    assert len(body["items"]) == len(SESSIONS) and body["next_start"] is None
    shorts = client.get(f"/stocks/{SAMSUNG}/shorts", params={"start": "2024-01-01", "end": "2024-01-31"}).json()
    assert [r["date"] for r in shorts["items"]] == [d.isoformat() for d in SESSIONS]
    assert all(r["short_volume"] is not None and r["short_volume"] <= r["volume"] for r in shorts["items"])
    # balances come two sessions late: the run of 2024-01-08 loaded the balance of 2024-01-04
    assert [r["balance_quantity"] is not None for r in shorts["items"]] == [True, True, True, False, False]


def test_bad_input_gets_the_same_answers_as_the_price_routes(client):
    assert client.get("/indices", params={"group": "NASDAQ"}).status_code == 422
    assert client.get("/indices/KOSPI/prices").status_code == 422
    assert client.get("/indices/9999/prices").status_code == 404
    assert client.get("/indices/1001/prices", params={"start": "2024-02-01", "end": "2024-01-01"}).status_code == 400
    assert client.get("/stocks/5930/fundamentals").status_code == 422
    assert client.get("/stocks/999999/shorts").status_code == 404
    assert client.get(f"/stocks/{SAMSUNG}/investors", params={"investor": "aliens"}).status_code == 422
    assert client.get(f"/stocks/{SAMSUNG}/investors", params={"limit": 0}).status_code == 422
    assert client.get(f"/stocks/{SAMSUNG}/shorts", params={"start": "2024-02-01",
                                                          "end": "2024-01-01"}).status_code == 400
    assert client.get(f"/stocks/{SAMSUNG}/fundamentals", params={"start": "not-a-date"}).status_code == 422
