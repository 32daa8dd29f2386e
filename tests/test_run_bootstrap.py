"""``krxflow.bootstrap``: the Connections, Pools and Variables krxflow needs, in a real metadata database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from krxflow import bootstrap
from krxflow.krx.pacing import KRX_POOL, KRX_POOL_SLOTS

SAMPLE_ENV = {"AIRFLOW_CONN_POSTGRES_DEFAULT": "postgresql://postgres@127.0.0.1:5432/krxflow_x",
              "AIRFLOW_CONN_REDIS_DEFAULT": "redis://127.0.0.1:6379/3",
              "KRXFLOW_FAKE_KIS_URL": "http://127.0.0.1:40001", "KRXFLOW_FAKE_KIS_WS_URL": "ws://127.0.0.1:40003"}
REAL_ENV = {**SAMPLE_ENV, "KRX_ID": "me", "KRX_PW": "krx-secret", "KIS_APPKEY": "PSabc", "KIS_APPSECRET": "kis-secret",
            "KIS_ENV": "paper", "KIS_RATE": "2"}


def _by_id(plan):
    return {c.conn_id: c for c in plan.connections}


def test_sample_plan_without_credentials():
    plan = bootstrap.declare(SAMPLE_ENV)
    conns = _by_id(plan)
    assert plan.sample_mode
    assert set(conns) == {"postgres_default", "redis_default", "krx_default", "kis_default"}
    pg = conns["postgres_default"]
    assert (pg.conn_type, pg.host, pg.port, pg.schema, pg.login, pg.managed) == \
        ("postgres", "127.0.0.1", 5432, "krxflow_x", "postgres", True)
    assert conns["redis_default"].schema == "3"
    assert conns["krx_default"].login is None and not conns["krx_default"].managed
    kis = conns["kis_default"]
    assert kis.host == "http://127.0.0.1:40001" and kis.extra["sample"] is True
    from krxflow.kis.config import KisConfig

    config = KisConfig.from_parts(kis.host, kis.port, kis.login, kis.password, kis.extra, {})
    assert config.base_url == "http://127.0.0.1:40001" and config.rate == 18
    variables = {v.key: v for v in plan.variables}
    assert variables["KRXFLOW_SOURCE"].value == "sample"
    assert variables["kis_watchlist_size"].value == 50 and not variables["kis_watchlist_size"].managed
    assert "kis_watchlist" not in variables, "unset means the top N by market cap"
    assert [(p.name, p.slots, p.include_deferred) for p in plan.pools] == [(KRX_POOL, KRX_POOL_SLOTS, False)]


def test_krx_pool_is_as_wide_as_the_executor_only_in_sample_mode():
    def slots(env):
        (pool,) = bootstrap.declare(env).pools
        assert pool.name == KRX_POOL
        return pool.slots

    wide = {"AIRFLOW__CORE__PARALLELISM": "16"}
    assert slots({**SAMPLE_ENV, **wide}) == 16
    assert slots({**REAL_ENV, **wide}) == KRX_POOL_SLOTS, "real KRX: the pool bounds who talks to it"
    assert slots({**SAMPLE_ENV, **wide, "KRXFLOW_KRX_POOL_SLOTS": "3"}) == 3
    assert slots({**REAL_ENV, "KRXFLOW_KRX_POOL_SLOTS": "1"}) == 1


def test_real_credentials_plan():
    plan = bootstrap.declare(REAL_ENV)
    conns = _by_id(plan)
    assert not plan.sample_mode
    assert (conns["krx_default"].login, conns["krx_default"].password, conns["krx_default"].managed) == \
        ("me", "krx-secret", True)
    kis = conns["kis_default"]
    assert (kis.host, kis.login, kis.password, kis.extra) == \
        (bootstrap.KIS_PAPER_URL, "PSabc", "kis-secret", {"env": "paper", "rate": 2.0})
    assert {v.key: v.value for v in plan.variables}["KRXFLOW_SOURCE"] == "pykrx"
    shown = json.dumps(plan.as_dict(), default=str)
    assert "krx-secret" not in shown and "kis-secret" not in shown, "--show masks secrets"


@pytest.mark.parametrize("env, message", [
    ({"KRXFLOW_SOURCE": "naver"}, "KRXFLOW_SOURCE must be"),
    ({"KIS_APPKEY": "k", "KIS_APPSECRET": "s", "KIS_ENV": "prod"}, "KIS_ENV must be"),
])
def test_bad_settings_get_a_clear_error(env, message):
    with pytest.raises(ValueError, match=message):
        bootstrap.declare({**SAMPLE_ENV, **env})


def test_apply_creates_then_keeps_what_operators_edited(airflow_db):
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def conn(session, conn_id):
        return session.scalar(select(Connection).where(Connection.conn_id == conn_id))

    def var(session, key):
        return session.scalar(select(Variable).where(Variable.key == key)).val

    with create_session() as session:  # "creates": no KRX pool, whatever an earlier test of the session made
        if Pool.get_pool(KRX_POOL, session=session) is not None:
            Pool.delete_pool(KRX_POOL, session=session)
    first = bootstrap.apply(bootstrap.declare(SAMPLE_ENV))
    assert first["connections"]["kis_default"] in ("created", "updated")
    with create_session() as session:
        assert conn(session, "postgres_default").schema == "krxflow_x"
        assert Pool.get_pool(KRX_POOL, session=session).slots == KRX_POOL_SLOTS
        assert var(session, "KRXFLOW_SOURCE") == "sample"
        # an operator types real KRX credentials and resizes the pool in the UI
        krx = conn(session, "krx_default")
        krx.login = "typed-in-ui"
        krx.set_password("ui-secret")
        Pool.create_or_update_pool(KRX_POOL, 1, "resized", False, session=session)
        Variable.set("kis_watchlist_size", 7, session=session)

    moved = {**SAMPLE_ENV, "KRXFLOW_FAKE_KIS_URL": "http://127.0.0.1:40002"}
    second = bootstrap.apply(bootstrap.declare(moved))
    assert second["connections"]["krx_default"] == "kept"
    assert second["pools"][KRX_POOL] == "kept"
    assert second["variables"]["kis_watchlist_size"] == "kept"
    assert second["connections"]["kis_default"] == "updated", "a sample kis_default follows the fake server"
    with create_session() as session:
        krx = conn(session, "krx_default")
        assert (krx.login, krx.password) == ("typed-in-ui", "ui-secret")
        assert Pool.get_pool(KRX_POOL, session=session).slots == 1
        assert conn(session, "kis_default").host == "http://127.0.0.1:40002"
        assert conn(session, "kis_default").extra_dejson["ws_url"] == "ws://127.0.0.1:40003"
        assert conn(session, "kis_default").conn_type == "kis"
        assert var(session, "kis_watchlist_size") == "7"

    # credentials from the environment win (they are the deployment's decision)
    third = bootstrap.apply(bootstrap.declare(REAL_ENV))
    assert third["connections"]["krx_default"] == "updated"
    with create_session() as session:
        krx, kis = conn(session, "krx_default"), conn(session, "kis_default")
        assert (krx.login, krx.password) == ("me", "krx-secret")
        assert (kis.login, kis.host, kis.extra_dejson) == ("PSabc", bootstrap.KIS_PAPER_URL, {"env": "paper", "rate": 2.0})
        assert var(session, "KRXFLOW_SOURCE") == "pykrx"
    # a real kis_default is not turned back into the sample one by a later sample-mode run
    fourth = bootstrap.apply(bootstrap.declare(SAMPLE_ENV))
    assert fourth["connections"]["kis_default"] == "kept"


def test_cli_show_prints_the_plan_masked(airflow_db):
    env = {**os.environ, **REAL_ENV}
    out = subprocess.run([sys.executable, "-m", "krxflow.bootstrap", "--show"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout[out.stdout.index("{"):])
    assert {c["conn_id"] for c in plan["connections"]} >= {"krx_default", "kis_default"}
    assert "krx-secret" not in out.stdout and "kis-secret" not in out.stdout
    bad = subprocess.run([sys.executable, "-m", "krxflow.bootstrap"], env={**env, "KRXFLOW_SOURCE": "bogus"},
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "KRXFLOW_SOURCE must be" in bad.stderr
