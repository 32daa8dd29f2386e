"""The read API's ETF/ETN routes (issue 27, point 4) against the real market database, through FastAPI's TestClient.

The products go in through the normal load path (sample source -> load_etps -> BatchedPostgresHook);
requests carry real Airflow JWTs, as in tests/test_api_read.py.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets

import pytest

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))

TICKERS = 40
DAYS = (dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4))


@pytest.fixture(scope="module")
def etps():
    from psycopg import sql

    from krxflow.db.connection import connection
    from krxflow.krx.etps import load_etps
    from krxflow.sample.market import SampleSource

    with connection() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, ("krx_etps", "krx_etp_prices")))))
    source = SampleSource(TICKERS)
    for day in DAYS:
        load_etps(source, day, info=True)
    return source


@pytest.fixture
def client(viewer_token, etps):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app, headers={"Authorization": f"Bearer {viewer_token}"}) as c:
        yield c


def test_etf_routes_need_airflow_login(viewer_token, etps):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app) as anonymous:
        for path in ("/etfs", "/etfs/400003/prices"):
            assert anonymous.get(path).status_code == 401, path


def test_the_products_listed_on_a_date_with_their_nav(client, etps):
    from krxflow.sample.market_etps import day_frame

    body = client.get("/etfs", params={"date": DAYS[1].isoformat()}).json()
    expected = {k: day_frame(etps.market, k, DAYS[1]) for k in ("ETF", "ETN")}
    assert [i["code"] for i in body["items"]] == sorted(c for f in expected.values() for c in f["code"])
    closes = dict(zip(expected["ETF"]["code"], expected["ETF"]["close"]))
    for item in body["items"]:
        assert item["issuer"] and item["multiplier"] in (1, 2, -1, -2) and item["underlying_index"]
        assert abs(item["deviation_rate"]) < 1 and item["nav"] > 0
        if item["kind"] == "ETF":
            assert item["close"] == closes[item["code"]]
    etns = client.get("/etfs", params={"date": DAYS[1].isoformat(), "kind": "etn"}).json()["items"]
    assert etns and {i["kind"] for i in etns} == {"ETN"} and len(etns) == len(expected["ETN"])
    before = client.get("/etfs", params={"date": "2023-12-01"}).json()["items"]
    assert before == []  # nothing was loaded that early: no product is known to be listed then


def test_one_products_prices_nav_and_tracking_oldest_first_with_pages(client, etps):
    from krxflow.sample.market_etps import day_frame

    code = day_frame(etps.market, "ETF", DAYS[0])["code"].iloc[1]
    body = client.get(f"/etfs/{code}/prices", params={"start": "2024-01-01", "end": "2024-01-31"}).json()
    assert body["kind"] == "ETF" and body["issuer"] and [i["date"] for i in body["items"]] == [d.isoformat() for d in DAYS]
    for item, day in zip(body["items"], DAYS):
        row = day_frame(etps.market, "ETF", day).set_index("code").loc[code]
        assert (item["close"], item["volume"]) == (row["close"], row["volume"])
        assert item["nav"] == pytest.approx(row["nav"], abs=0.005) and item["index_close"] == pytest.approx(row["index_close"])
    assert body["items"][0]["tracking_difference"] is None  # no earlier session loaded to compare with
    assert all(i["tracking_difference"] is not None for i in body["items"][1:])
    page = client.get(f"/etfs/{code}/prices", params={"start": "2024-01-01", "end": "2024-01-31", "limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_start"] == DAYS[2].isoformat()


def test_unknown_code_is_a_404_and_bad_input_a_4xx(client):
    response = client.get("/etfs/999999/prices")
    assert response.status_code == 404 and "unknown ETF/ETN 999999" in response.json()["detail"]
    assert client.get("/etfs/abc/prices").status_code == 422
    assert client.get("/etfs", params={"kind": "ELW"}).status_code == 422
    assert client.get("/etfs", params={"date": "2024-02-30"}).status_code == 422
    inverted = client.get("/etfs/400003/prices", params={"start": "2024-02-01", "end": "2024-01-01"})
    assert inverted.status_code == 400 and "after end" in inverted.json()["detail"]
