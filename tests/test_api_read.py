"""The read API (``krxflow.api.app``) against the real market database, through FastAPI's TestClient.

Sample data goes in through the normal load path (sample KRX source -> BatchedPostgresHook), the
week/month views are refreshed by the upkeep module, and requests carry real Airflow JWTs issued
by the configured auth manager (the simple auth manager, as in a default deployment).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
from decimal import Decimal

import pytest

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))

FIRST, LAST = dt.date(2023, 1, 2), dt.date(2024, 12, 30)
SAMSUNG = "005930"


@pytest.fixture(scope="module")
def market():
    """30 sample tickers, two years of raw and adjusted prices, views refreshed."""
    from psycopg import sql

    from grafana import sample_data
    from krxflow.db.connection import connection
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.sample.market import SampleSource
    from krxflow.upkeep import matviews

    with connection() as conn:
        conn.execute(sql.SQL("TRUNCATE stocks, daily_prices, daily_prices_adjusted, load_stats"))
        hook = BatchedPostgresHook(stats_context={"dag_id": "test_api", "run_id": "r", "task_id": "load"})
        report = sample_data.load_market(hook, SampleSource(tickers=30), FIRST, LAST)
        matviews.refresh_all(conn)
        counts = dict(conn.execute(
            "SELECT market, count(*) FROM stocks WHERE NOT delisted GROUP BY market").fetchall())
        delisted = conn.execute("SELECT count(*) FROM stocks WHERE delisted").fetchone()[0]
    return {"report": report, "listed_by_market": counts, "delisted": delisted}


@pytest.fixture(scope="module")
def auth(airflow_db):
    """The Airflow auth manager (initialised as the api-server does) and a viewer's token."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = init_auth_manager()
    token = manager.generate_jwt(SimpleAuthManagerUser(username="reader", role="viewer"))
    return manager, token


@pytest.fixture
def client(auth, market):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    _, token = auth
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture
def anonymous(auth, market):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app) as c:
        yield c


# ------------------------------------------------------------------------------------ auth
def test_every_route_needs_airflow_login(anonymous):
    for path in ("/stocks", f"/stocks/{SAMSUNG}/prices", "/stocks?market=KOSPI"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.json() == {"detail": "Not authenticated"}


def test_a_forged_token_is_refused(anonymous):
    response = anonymous.get("/stocks", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 403
    assert "Invalid JWT" in response.json()["detail"]


def test_an_expired_token_is_refused(auth, anonymous):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager, _ = auth
    expired = manager.generate_jwt(SimpleAuthManagerUser(username="reader", role="viewer"),
                                   expiration_time_in_seconds=-120)
    response = anonymous.get("/stocks", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Token Expired"


def test_a_user_the_auth_manager_does_not_allow_is_forbidden(auth, client, monkeypatch):
    manager, _ = auth
    monkeypatch.setattr(manager, "is_authorized_asset", lambda **kwargs: False)
    response = client.get("/stocks")
    assert response.status_code == 403
    assert "Assets" in response.json()["detail"]


def test_the_ui_session_cookie_is_accepted(auth, market):
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    _, token = auth
    with TestClient(app, cookies={COOKIE_NAME_JWT_TOKEN: token}) as c:
        assert c.get("/stocks?limit=1").status_code == 200


# ------------------------------------------------------------------------------------ /stocks
def test_stocks_by_market_are_paged_and_complete(client, market):
    kospi = market["listed_by_market"]["KOSPI"]
    seen, offset = [], 0
    while offset is not None:
        response = client.get("/stocks", params={"market": "kospi", "limit": 4, "offset": offset})
        assert response.status_code == 200
        page = response.json()
        assert page["total"] == kospi and len(page["items"]) <= 4
        assert {item["market"] for item in page["items"]} == {"KOSPI"}
        seen += [item["ticker"] for item in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == kospi
    assert seen == sorted(seen)


def test_stocks_without_market_lists_every_listed_ticker_and_delisted_on_request(client, market):
    listed = sum(market["listed_by_market"].values())
    body = client.get("/stocks", params={"limit": 1000}).json()
    assert body["total"] == listed and body["next_offset"] is None
    assert not any(item["delisted"] for item in body["items"])
    everything = client.get("/stocks", params={"limit": 1000, "include_delisted": "true"}).json()
    assert everything["total"] == listed + market["delisted"]


def test_stocks_search_by_code_prefix_and_name(client):
    by_code = client.get("/stocks", params={"q": "0059"}).json()
    assert [item["ticker"] for item in by_code["items"]] == [SAMSUNG]
    name = by_code["items"][0]["name"]
    by_name = client.get("/stocks", params={"q": name[1:3]}).json()
    assert SAMSUNG in [item["ticker"] for item in by_name["items"]]


def test_stocks_page_past_the_end_is_empty_with_the_real_total(client, market):
    body = client.get("/stocks", params={"offset": 10_000}).json()
    assert body["items"] == [] and body["next_offset"] is None
    assert body["total"] == sum(market["listed_by_market"].values())


@pytest.mark.parametrize("params, status, fragment", [
    ({"market": "NYSE"}, 422, "market must be one of KOSPI, KOSDAQ, KONEX"),
    ({"limit": 0}, 422, "greater than or equal to 1"),
    ({"limit": 5000}, 422, "less than or equal to 1000"),
    ({"offset": -1}, 422, "greater than or equal to 0"),
    ({"offset": "99999999999999999999"}, 422, "less than or equal to 1000000"),
    ({"offset": 1_000_001}, 422, "less than or equal to 1000000"),
    ({"limit": "99999999999999999999"}, 422, "less than or equal to 1000"),
    ({"include_delisted": "maybe"}, 422, "valid boolean"),
    ({"q": ""}, 422, "at least 1 character"),
    ({"q": "x" * 51}, 422, "at most 50 characters"),
    ({"q": "a\x00b"}, 422, "should match pattern"),
])
def test_stocks_bad_input_is_a_4xx_with_a_message(client, params, status, fragment):
    response = client.get("/stocks", params=params)
    assert response.status_code == status
    assert fragment in str(response.json()["detail"])


@pytest.mark.parametrize("q", ["%", "_", "%%", "0_", "\\", "a%b"])
def test_search_text_is_matched_literally_not_as_a_pattern(client, q):
    body = client.get("/stocks", params={"q": q, "include_delisted": "true"})
    assert body.status_code == 200
    assert body.json()["total"] == 0 and body.json()["items"] == []  # no ticker or name holds these characters


def test_search_wildcards_in_a_real_name_match_only_that_name(client, pg):
    """A name that does hold '%' and '_' is found by exactly that text, and nothing else is."""
    from krxflow.hooks import BatchedPostgresHook

    BatchedPostgresHook().upsert("stocks", [{"ticker": "99999Z", "name": "100%_테스트", "market": "KONEX"}])
    try:
        found = client.get("/stocks", params={"q": "0%_테", "include_delisted": "true"}).json()
        assert [i["ticker"] for i in found["items"]] == ["99999Z"]
        assert client.get("/stocks", params={"q": "0%x테"}).json()["total"] == 0
    finally:
        pg.execute("DELETE FROM stocks WHERE ticker = '99999Z'")


# ------------------------------------------------------------------------------------ /prices
def test_daily_raw_prices_match_the_table(client, pg):
    response = client.get(f"/stocks/{SAMSUNG}/prices", params={"start": "2024-03-01", "end": "2024-03-31"})
    assert response.status_code == 200
    body = response.json()
    expected = pg.execute("SELECT trade_date, open, high, low, close, volume FROM daily_prices "
                          "WHERE ticker = %s AND trade_date BETWEEN '2024-03-01' AND '2024-03-31' ORDER BY 1",
                          (SAMSUNG,)).fetchall()
    assert len(expected) > 15
    assert [(dt.date.fromisoformat(i["date"]), i["open"], i["high"], i["low"], i["close"], i["volume"])
            for i in body["items"]] == [tuple(r) for r in expected]
    assert body["interval"] == "day" and body["adjusted"] is False and body["next_start"] is None
    assert body["name"] and body["market"] in ("KOSPI", "KOSDAQ")


def test_daily_adjusted_prices_come_from_the_adjusted_table(client, pg):
    body = client.get(f"/stocks/{SAMSUNG}/prices",
                      params={"start": "2024-03-01", "end": "2024-03-31", "adjusted": "true"}).json()
    expected = pg.execute("SELECT trade_date, close FROM daily_prices_adjusted "
                          "WHERE ticker = %s AND trade_date BETWEEN '2024-03-01' AND '2024-03-31' ORDER BY 1",
                          (SAMSUNG,)).fetchall()
    # exact decimal strings with four places, equal to the column's numeric values
    assert [(dt.date.fromisoformat(i["date"]), Decimal(i["close"])) for i in body["items"]] == \
        [tuple(r) for r in expected]
    assert all(re.fullmatch(r"\d+\.\d{4}", i[k]) for i in body["items"] for k in ("open", "high", "low", "close"))
    assert body["adjusted"] is True


@pytest.mark.parametrize("interval, view", [("week", "weekly_candles"), ("month", "monthly_candles")])
def test_week_and_month_candles_come_from_the_views(client, pg, interval, view):
    body = client.get(f"/stocks/{SAMSUNG}/prices",
                      params={"start": "2024-01-10", "end": "2024-06-30", "interval": interval}).json()
    dates = [dt.date.fromisoformat(i["date"]) for i in body["items"]]
    # the period containing `start` is included: its first day is returned as `start`
    first = dt.date(2024, 1, 8) if interval == "week" else dt.date(2024, 1, 1)
    assert body["start"] == str(first) and dates[0] == first
    if interval == "week":
        assert all(d.weekday() == 0 for d in dates)
    else:
        assert all(d.day == 1 for d in dates) and len(dates) == 6
    expected = pg.execute(f"SELECT period_start, close, volume FROM {view} "  # noqa: S608 (fixed names)
                          "WHERE ticker = %s AND NOT adjusted AND period_start BETWEEN %s AND '2024-06-30' "
                          "ORDER BY 1", (SAMSUNG, first)).fetchall()
    assert [(dt.date.fromisoformat(i["date"]), i["close"], i["volume"]) for i in body["items"]] == \
        [tuple(r) for r in expected]


def test_prices_are_bounded_and_continue_with_next_start(client, pg):
    params = {"start": "2023-01-01", "end": "2024-12-31", "limit": 100}
    first = client.get(f"/stocks/{SAMSUNG}/prices", params=params).json()
    assert len(first["items"]) == 100 and first["next_start"]
    second = client.get(f"/stocks/{SAMSUNG}/prices", params={**params, "start": first["next_start"]}).json()
    assert second["items"][0]["date"] == first["next_start"]
    assert second["items"][0]["date"] > first["items"][-1]["date"]
    total = pg.execute("SELECT count(*) FROM daily_prices WHERE ticker = %s", (SAMSUNG,)).fetchone()[0]
    everything = client.get(f"/stocks/{SAMSUNG}/prices", params={**params, "limit": 5000}).json()
    assert len(everything["items"]) == total and everything["next_start"] is None


def test_default_range_is_the_year_before_today(client):
    body = client.get(f"/stocks/{SAMSUNG}/prices").json()
    end = dt.date.fromisoformat(body["end"])
    assert (end - dt.date.fromisoformat(body["start"])).days == 365


@pytest.mark.parametrize("path, params, status, fragment", [
    ("/stocks/5930/prices", {}, 422, "String should match pattern"),
    ("/stocks/005930/prices", {"interval": "hour"}, 422, "'day', 'week' or 'month'"),
    ("/stocks/005930/prices", {"start": "2024-13-01"}, 422, "valid date"),
    ("/stocks/005930/prices", {"start": "2024-05-01", "end": "2024-04-01"}, 400,
     "start (2024-05-01) is after end (2024-04-01)"),
    ("/stocks/005930/prices", {"limit": 5001}, 422, "less than or equal to 5000"),
    ("/stocks/005930/prices", {"limit": "99999999999999999999"}, 422, "less than or equal to 5000"),
    ("/stocks/005930/prices", {"limit": 0}, 422, "greater than or equal to 1"),
    ("/stocks/005930/prices", {"start": "0001-01-01"}, 422, "greater than or equal to 1956-01-01"),
    ("/stocks/005930/prices", {"end": "0001-01-03"}, 422, "greater than or equal to 1956-01-01"),
    ("/stocks/005930/prices", {"end": "9999-12-31", "interval": "week"}, 422, "less than or equal to 2999-12-31"),
    ("/stocks/005930/prices", {"adjusted": "perhaps"}, 422, "valid boolean"),
    ("/stocks/999999/prices", {}, 404, "unknown ticker 999999"),
])
def test_prices_bad_input_is_a_4xx_with_a_message(client, path, params, status, fragment):
    response = client.get(path, params=params)
    assert response.status_code == status
    assert fragment in str(response.json()["detail"])


def test_the_api_connection_cannot_write(market):
    import psycopg

    from krxflow.api.db import read_only_connection

    connections = read_only_connection()
    conn = next(connections)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM stocks")
    finally:
        connections.close()


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {"/stocks", "/stocks/{ticker}/prices", "/stocks/{ticker}/factors",
                          # the other daily KRX reports (issue 17)
                          "/indices", "/indices/{code}/prices", "/stocks/{ticker}/investors",
                          "/stocks/{ticker}/fundamentals", "/stocks/{ticker}/shorts",
                          # the universe (issue 27)
                          "/indices/{code}/members", "/industries",
                          # ETFs and ETNs (issue 27)
                          "/etfs", "/etfs/{code}/prices",
                          # OpenDART filings (issue 28)
                          "/stocks/{ticker}/disclosures"}


def test_factors_say_why_an_adjusted_chart_differs_and_delisted_tickers_have_one(client, pg):
    from krxflow.sample.market import EVENT_TICKERS, universe

    bonus, gone = universe(30)[EVENT_TICKERS["bonus"]], universe(30)[EVENT_TICKERS["split_then_delisted"]]
    body = client.get(f"/stocks/{bonus}/factors").json()
    assert [(f["ex_date"], f["kind"], f["flagged"]) for f in body["items"]] == [("2023-06-15", "rights_or_bonus", False)]
    factor = body["items"][0]
    assert factor["factor"] == pytest.approx(factor["base_price"] / factor["previous_close"])
    adjusted = client.get(f"/stocks/{bonus}/prices", params={"start": "2023-06-14", "end": "2023-06-14",
                                                           "adjusted": "true"}).json()["items"][0]
    raw = client.get(f"/stocks/{bonus}/prices", params={"start": "2023-06-14", "end": "2023-06-14"}).json()["items"][0]
    assert float(adjusted["close"]) == pytest.approx(raw["close"] * factor["factor"], abs=1e-4)
    delisted = client.get(f"/stocks/{gone}/prices", params={"start": "2023-01-02", "end": "2024-12-30",
                                                          "adjusted": "true"}).json()
    assert len(delisted["items"]) > 250 and delisted["items"][-1]["date"] < "2024-05-02"
    assert client.get("/stocks/999999/factors").status_code == 404


@pytest.mark.parametrize("interval", ["day", "week", "month"])
def test_money_is_integers_raw_and_decimal_strings_adjusted_in_every_interval(client, interval):
    params = {"start": "2024-01-01", "end": "2024-06-30", "interval": interval}
    raw = client.get(f"/stocks/{SAMSUNG}/prices", params=params).json()["items"]
    adjusted = client.get(f"/stocks/{SAMSUNG}/prices", params={**params, "adjusted": "true"}).json()["items"]
    assert raw and adjusted
    # raw: JSON integers (9070, never 9070.0), also for summed week/month values
    text = json.dumps(raw)
    assert all(type(i[k]) is int for i in raw for k in ("open", "high", "low", "close", "volume", "trading_value"))
    assert not re.search(r'"(open|high|low|close|trading_value|market_cap)": -?\d+\.\d', text)
    # adjusted: exact decimal strings with four places; volumes stay integers
    assert all(isinstance(i[k], str) and re.fullmatch(r"\d+\.\d{4}", i[k])
               for i in adjusted for k in ("open", "high", "low", "close"))
    assert all(type(i["volume"]) is int for i in adjusted)


def test_openapi_schema_documents_the_money_representation(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    raw, adjusted = schemas["RawPrice"]["properties"], schemas["AdjustedPrice"]["properties"]
    assert raw["close"]["type"] == "integer"
    assert [a["type"] for a in raw["open"]["anyOf"]] == ["integer", "null"]
    assert adjusted["close"]["type"] == "string" and adjusted["close"]["pattern"] == r"^\d+\.\d{4}$"
    assert "decimal" in adjusted["close"]["description"]
    items = schemas["PricesPage"]["properties"]["items"]
    assert {a["items"]["$ref"].rsplit("/", 1)[1] for a in items["anyOf"]} == {"RawPrice", "AdjustedPrice"}
    offset = next(p for p in spec["paths"]["/stocks"]["get"]["parameters"] if p["name"] == "offset")
    assert offset["schema"]["maximum"] == 1_000_000
    assert "Money" in spec["info"]["description"]


def test_the_api_description_is_written_for_readers_not_sphinx(client):
    description = client.get("/openapi.json").json()["info"]["description"]
    assert not re.search(r":[a-z]+:`", description)  # no :mod:`…` / :class:`…` roles
    assert "``" not in description  # no reStructuredText literals
    assert "Airflow login" in description and "POST /auth/token" in description


def test_docs_pages_load_everything_from_the_api_itself(anonymous):
    """/docs and /redoc reference no other host: each script, stylesheet and icon is served here."""
    for page in ("/docs", "/redoc"):
        response = anonymous.get(page)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        urls = re.findall(r'(?:src|href)="([^"]+)"', response.text) + re.findall(r"url: '([^']+)'", response.text)
        assert urls and not [u for u in urls if "://" in u or u.startswith("//")], urls
        for url in urls:
            asset = anonymous.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
