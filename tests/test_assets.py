"""Asset URIs name the market database krxflow is configured to use, not a fixed host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from krxflow import assets

ROOT = Path(__file__).resolve().parents[1]


def test_uri_from_the_postgres_connection_in_the_environment():
    env = {"AIRFLOW_CONN_POSTGRES_DEFAULT": "postgresql://krx:secret@db.internal:6543/market_b"}
    assert assets.database_uri(env) == "postgres://db.internal:6543/market_b/public"
    asset = assets.table_asset("daily_prices", env)
    assert asset.uri == "postgres://db.internal:6543/market_b/public/daily_prices"
    assert "secret" not in asset.uri and "krx" not in asset.uri.split("@")[0].replace("postgres://", "")


def test_uri_from_a_json_connection_defaults_the_port():
    env = {"AIRFLOW_CONN_POSTGRES_DEFAULT": json.dumps({"conn_type": "postgres", "host": "pg", "schema": "krxflow",
                                                        "login": "u", "password": "p"})}
    assert assets.database_uri(env) == "postgres://pg:5432/krxflow/public"


def test_explicit_setting_wins_and_the_fallback_is_documented():
    env = {"KRXFLOW_ASSET_DATABASE": "postgres://market:5432/krxflow/public/",
           "AIRFLOW_CONN_POSTGRES_DEFAULT": "postgresql://u@h:1/db"}
    assert assets.database_uri(env) == "postgres://market:5432/krxflow/public"
    assert assets.database_uri({}) == assets.FALLBACK_DATABASE
    assert "FALLBACK_DATABASE" in assets.__doc__


def test_the_dags_emit_the_configured_database_uris():
    """In a fresh process (as the dag-processor parses), the DAGs' outlets name the test database."""
    probe = ("from airflow.dag_processing.dagbag import DagBag; "
             "bag = DagBag(dag_folder='dags/krx_daily_prices.py'); "
             "print([o.uri for t in bag.dags['krx_daily_prices'].tasks for o in t.outlets])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=os.environ.copy(), capture_output=True,
                         text=True, check=True).stdout
    server = urlsplit(os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"])  # the session's server: 5432 or a private one
    assert f"postgres://{server.hostname}:{server.port or 5432}{server.path}/public/daily_prices" in out
    assert "krxflow-market" not in out
