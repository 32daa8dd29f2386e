"""The read API as Airflow serves it: the krxflow plugin mounts it in the real api-server app under
``/krx``, and a user logs in through Airflow's own ``POST /auth/token`` to use it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))


@pytest.fixture(scope="module")
def api_server(airflow_db):
    """Airflow's api-server FastAPI app (core API + plugins + auth manager), as `airflow api-server` builds it."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    purge_cached_app()
    app = create_app(apps="core")
    with TestClient(app) as client:
        yield client
    purge_cached_app()


def test_the_plugin_registers_the_read_api_under_krx():
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    ours = [a for a in apps if a.get("url_prefix") == "/krx"]
    assert len(ours) == 1 and ours[0]["name"] == "krxflow read API"
    assert {r.path for r in ours[0]["app"].routes} >= {"/stocks", "/stocks/{ticker}/prices"}


def test_loading_the_plugin_imports_neither_fastapi_nor_the_api():
    """Every task process loads plugins: the read API must cost it nothing until the api-server serves it."""
    import subprocess
    import sys

    probe = ("import sys, airflow.plugins_manager, krxflow.plugin; "
             "print(sorted(m for m in ('fastapi', 'krxflow.api.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_app_needs_a_module_and_an_attribute():
    from krxflow.api.mount import LazyApp

    with pytest.raises(ValueError, match="package.module:attribute"):
        LazyApp("krxflow.api.app")
    lazy = LazyApp("krxflow.api.app:app")
    assert "LazyApp('krxflow.api.app:app')" == repr(lazy)
    from krxflow.api.app import app

    assert lazy.app is app and lazy.title == "krxflow read API"


def test_mounted_api_refuses_anonymous_callers(api_server):
    response = api_server.get("/krx/stocks")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_mounted_api_serves_a_user_logged_in_through_airflow(api_server, clean_db):
    from krxflow.hooks import BatchedPostgresHook

    BatchedPostgresHook().upsert("stocks", [{"ticker": "005930", "name": "삼성전자", "market": "KOSPI"}])
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    username, password = next(iter(json.loads(passwords.read_text()).items()))
    login = api_server.post("/auth/token", json={"username": username, "password": password})
    assert login.status_code in (200, 201), login.text
    token = login.json()["access_token"]

    response = api_server.get("/krx/stocks", params={"market": "KOSPI"},
                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert [item["ticker"] for item in response.json()["items"]] == ["005930"]
    bad = api_server.get("/krx/stocks/005930/prices", params={"interval": "year"},
                         headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 422


def test_docs_page_under_krx_is_served_with_no_network(api_server):
    """/krx/docs as the api-server serves it: Swagger UI's script, stylesheet and icon come from
    /krx/docs-assets (the pinned fastapi-offline wheel), not from a CDN, and openapi.json from /krx."""
    import re

    page = api_server.get("/krx/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert sorted(urls) == ["/krx/docs-assets/favicon.png", "/krx/docs-assets/swagger-ui-bundle.js",
                            "/krx/docs-assets/swagger-ui.css", "/krx/openapi.json"]
    for url, kind in zip(sorted(urls), ("image/png", "javascript", "text/css", "application/json")):
        response = api_server.get(url)
        assert response.status_code == 200 and kind in response.headers["content-type"], url
    assert "SwaggerUIBundle" in api_server.get("/krx/docs-assets/swagger-ui-bundle.js").text
    assert api_server.get("/krx/openapi.json").json()["info"]["title"] == "krxflow read API"
