"""The read API's ``/krx/stocks/{ticker}/disclosures`` (issue 28) against the real market database.

The filings go in through the normal load path (the fake OpenDART on loopback -> load_disclosures ->
BatchedPostgresHook); requests carry real Airflow JWTs, as in tests/test_api_read.py.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections import Counter

import pandas as pd
import pytest

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))

DAYS = (dt.date(2024, 3, 14), dt.date(2024, 3, 15))


@pytest.fixture
def filings(clean_db, redis_client):
    from krxflow.dart.client import DartClient
    from krxflow.dart.config import DartConfig
    from krxflow.dart.gate import DartGate
    from krxflow.dart.loading import load_disclosures
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.sample.dart_server import DEMO_KEY, FakeDart, FakeDartThread

    clean_db.execute("TRUNCATE dart_corp_codes, disclosures")
    fake = FakeDart(60, filings_per_company=3.0)
    hook = BatchedPostgresHook()
    market = fake.market
    hook.upsert("stocks", pd.DataFrame([(t, market.profile(t).name, market.profile(t).market) for t in market.tickers],
                                       columns=["ticker", "name", "market"]))
    with FakeDartThread(fake) as server:
        client = DartClient(DartConfig(api_key=DEMO_KEY, base_url=server.url), DartGate(redis_client, per_minute=6000))
        for day in DAYS:
            load_disclosures(client, day, hook=hook)
    return [r for day in DAYS for r in fake.filings(day) if r["corp_cls"] in ("Y", "K")]


@pytest.fixture
def client(viewer_token, filings):
    from fastapi.testclient import TestClient

    from krxflow.api.app import app

    with TestClient(app, headers={"Authorization": f"Bearer {viewer_token}"}) as c:
        yield c


def test_a_tickers_filings_page_by_receipt_number_with_the_viewer_url(client, filings):
    ticker, count = Counter(r["stock_code"] for r in filings).most_common(1)[0]
    assert count >= 3
    expected = sorted((r for r in filings if r["stock_code"] == ticker), key=lambda r: r["rcept_no"])
    params = {"start": DAYS[0].isoformat(), "end": DAYS[-1].isoformat(), "limit": 2}
    seen, after = [], None
    while True:
        body = client.get(f"/stocks/{ticker}/disclosures", params={**params, **({"after": after} if after else {})})
        assert body.status_code == 200, body.text
        page = body.json()
        seen += page["items"]
        after = page["next_after"]
        if after is None:
            break
    assert [i["rcept_no"] for i in seen] == [r["rcept_no"] for r in expected]
    first, truth = seen[0], expected[0]
    assert (first["report"], first["filer"], first["remarks"], first["date"]) == \
        (truth["report_nm"], truth["flr_nm"], truth["rm"], f"{truth['rcept_dt'][:4]}-{truth['rcept_dt'][4:6]}-"
                                                            f"{truth['rcept_dt'][6:]}")
    assert first["url"] == f"https://dart.fss.or.kr/dsaf001/main.do?rcpNo={truth['rcept_no']}"


def test_bad_input_is_a_clear_4xx(client):
    assert client.get("/stocks/999999/disclosures", params={"end": "2024-03-15"}).status_code == 404
    assert client.get("/stocks/005930/disclosures", params={"after": "123"}).status_code == 422
    assert client.get("/stocks/005930/disclosures", params={"start": "2024-03-16", "end": "2024-03-15"}).status_code == 400


def test_the_read_only_role_may_read_the_dart_tables(clean_db):
    for table in ("disclosures", "dart_corp_codes"):
        assert clean_db.execute("SELECT has_table_privilege('krxflow_readonly', %s, 'SELECT')", (table,)).fetchone()[0]
