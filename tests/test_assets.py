"""Asset URIs come from one setting in the bundle, never from a process's environment.

A scheduler (dag-processor) and a worker that see different environments must still declare the same
URIs, or the worker's outlets raise no event and ``db_matviews`` is never triggered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from krxflow import assets

ROOT = Path(__file__).resolve().parents[1]

#: Parses every DAG file as the dag-processor does; prints, per DAG, the URIs of its outlets and schedule.
_PROBE = r"""
import json
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Asset

def uris(condition):
    if condition is None:
        return []
    if isinstance(condition, Asset):
        return [condition.uri]
    return [uri for part in getattr(condition, "objects", ()) for uri in uris(part)]

bag = DagBag(dag_folder="dags")
print(json.dumps({
    "import_errors": sorted(bag.import_errors),
    "dags": {dag_id: {"outlets": sorted({o.uri for t in dag.tasks for o in t.outlets if isinstance(o, Asset)}),
                      "schedule": sorted(set(uris(getattr(dag.timetable, "asset_condition", None))))}
             for dag_id, dag in sorted(bag.dags.items())},
}))
"""


def _declared_uris(env: dict[str, str]) -> dict:
    run = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_every_asset_is_a_table_of_the_one_configured_database():
    declared = [assets.STOCKS, assets.DAILY_PRICES, assets.DAILY_PRICES_ADJUSTED, assets.INTRADAY_QUOTES,
                assets.ORDER_BOOKS, assets.TRADES, assets.MINUTE_BARS, *assets.KRX_REPORT_ASSETS.values()]
    for asset in declared:
        database, _, table = asset.uri.rpartition("/")
        assert database == assets.MARKET_DATABASE and table, asset.uri
        assert asset.group == "krxflow"
    assert len({a.uri for a in declared}) == len(declared)
    assert assets.table_asset("daily_prices") == assets.DAILY_PRICES
    assert "MARKET_DATABASE" in (ROOT / "docs" / "reference" / "assets.md").read_text()


def test_the_dags_declare_the_same_uris_whatever_the_environment():
    """The test session's environment, one whose market Connection and every old asset variable point
    elsewhere, and one with no Connection in the environment at all (it lives in the metadata
    database or a secrets backend, as a dag-processor may see it): the same URIs in every DAG."""
    session = os.environ.copy()
    elsewhere = {**session,
                 "AIRFLOW_CONN_POSTGRES_DEFAULT": json.dumps({"conn_type": "postgres", "host": "db.elsewhere",
                                                              "port": 6543, "schema": "market_b", "login": "u"}),
                 "KRXFLOW_POSTGRES_CONN_ID": "market_elsewhere",
                 "AIRFLOW_CONN_MARKET_ELSEWHERE": "postgresql://u:p@other-host:5433/other_db",
                 "KRXFLOW_ASSET_DATABASE": "postgres://old-setting:5432/ignored/public"}
    no_connection = {k: v for k, v in session.items() if not k.startswith("AIRFLOW_CONN_")}
    seen = [_declared_uris(env) for env in (session, elsewhere, no_connection)]
    assert seen[0]["import_errors"] == []
    assert seen[0] == seen[1] == seen[2]

    dags = seen[0]["dags"]
    produced = {uri for dag in dags.values() for uri in dag["outlets"]}
    listened = set(dags["db_matviews"]["schedule"])
    assert listened == {assets.DAILY_PRICES.uri, assets.DAILY_PRICES_ADJUSTED.uri}
    assert listened <= produced  # what db_matviews waits for is what the loading DAGs emit
    assert all(uri.startswith(assets.MARKET_DATABASE + "/") for uri in produced | listened)
    database = session["AIRFLOW_CONN_POSTGRES_DEFAULT"].rsplit("/", 1)[1]
    assert not any(database in uri for uri in produced)  # the session's real database is not in them
