"""The read API's universe routes (issue 27) against the real market database, through FastAPI's TestClient.

The universe goes in through the normal load path (sample source -> load_universe -> BatchedPostgresHook);
requests carry real Airflow JWTs, as in tests/test_api_read.py.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets

import pytest

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))

TICKERS = 300
BEFORE, REBALANCE = dt.date(2023, 6, 8), dt.date(2023, 6, 9)


@pytest.fixture(scope="module")
def universe():
    from psycopg import sql

    from krxflow.db.connection import connection
    from krxflow.krx.loading import load_daily_prices
    from krxflow.krx.master import load_listing
    from krxflow.krx.universe import load_universe
    from krxflow.sample.market import SampleSource

    tables = ["stocks", "daily_prices", "load_stats", "krx_indices", "krx_industry_history", "krx_index_members",
              "krx_delistings", "krx_universe_checks", "stock_changes"]
    with connection() as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
    source = SampleSource(TICKERS)
    load_listing(source, REBALANCE, include_delisted=False)
    for day in (BEFORE, REBALANCE):
        load_daily_prices(source, day)
        load_universe(source, day)
    return source


@pytest.fixture
def client(viewer_token, universe):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app, headers={"Authorization": f"Bearer {viewer_token}"}) as c:
        yield c


def test_universe_routes_need_airflow_login(viewer_token, universe):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app) as anonymous:
        for path in ("/indices/1028/members", "/industries"):
            assert anonymous.get(path).status_code == 401, path


def test_members_on_a_date_are_the_sample_index_then(client, universe):
    from krxflow.sample.market_universe import core_members

    for day in (BEFORE, REBALANCE):
        body = client.get("/indices/5300/members", params={"date": day.isoformat()}).json()
        assert body["name"] == "KRX 300" and body["date"] == day.isoformat()
        assert {m["ticker"] for m in body["items"]} == set(core_members(universe.market, "5300", day))
        assert all(m["industry"] and m["market_cap"] for m in body["items"])
        caps = [m["market_cap"] for m in body["items"]]
        assert caps == sorted(caps, reverse=True)
    before = {m["ticker"] for m in client.get("/indices/5300/members", params={"date": "2023-06-08"}).json()["items"]}
    after = {m["ticker"] for m in client.get("/indices/5300/members", params={"date": "2023-06-09"}).json()["items"]}
    assert before != after
    assert client.get("/indices/5300/members", params={"date": "2020-01-02"}).json()["items"] == []


def test_unknown_index_is_a_404_with_a_message_and_bad_input_a_422(client):
    response = client.get("/indices/9999/members")
    assert response.status_code == 404 and "unknown index code 9999" in response.json()["detail"]
    assert client.get("/indices/abc/members").status_code == 422
    assert client.get("/indices/1028/members", params={"date": "2023-13-01"}).status_code == 422
    assert client.get("/industries", params={"market": "KONEX"}).status_code == 422


def test_industries_sum_to_the_market_with_a_cap_weighted_return(client, universe, pg):
    body = client.get("/industries", params={"date": REBALANCE.isoformat()}).json()
    items = body["items"]
    assert {i["market"] for i in items} == {"KOSPI", "KOSDAQ"}
    market = universe.market.day(REBALANCE)
    assert sum(i["tickers"] for i in items) == len(market)
    assert sum(i["market_cap"] for i in items) == int(market["market_cap"].sum())
    for item in items:  # the cap-weighted return against the base prices, recomputed from the sample
        part = market[market["ticker"].isin(
            [t for t, ind in pg.execute("SELECT ticker, industry FROM industries_on(%s) WHERE market = %s",
                                        (REBALANCE, item["market"])).fetchall() if ind == item["industry"]])]
        base = (part["market_cap"] / (1 + part["change_rate"] / 100)).sum()
        assert item["change_rate"] == pytest.approx(round(100 * (part["market_cap"].sum() / base - 1), 2), abs=0.011)
    kospi = client.get("/industries", params={"date": REBALANCE.isoformat(), "market": "kospi"}).json()["items"]
    assert kospi and {i["market"] for i in kospi} == {"KOSPI"}
