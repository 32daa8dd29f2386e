"""The read-only role Grafana connects through (migration 0400 + grafana/provisioning/create_login_role.sql).

krxflow_readonly may SELECT every table, view and materialized view of the market schema —
including objects created after the migration — and nothing else. The login role a deployment
creates from its environment inherits exactly that and runs read-only transactions.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "grafana" / "provisioning" / "create_login_role.sql"
ROLE = "krxflow_readonly"
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def _relations(pg):
    return [r[0] for r in pg.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition")]


def test_role_cannot_log_in_and_has_no_special_powers(pg):
    row = pg.execute("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
                     "FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
    assert row == (False, False, False, False, False, False)


def test_role_can_select_every_relation_and_write_none(pg):
    relations = _relations(pg)
    assert {"stocks", "daily_prices", "load_stats", "daily_market_summary", "weekly_candles", "monthly_candles",
            "daily_indicators", "kospi_stocks"} <= set(relations)
    for relation in relations:
        assert pg.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (ROLE, relation)).fetchone()[0], relation
        for privilege in WRITES:
            assert not pg.execute("SELECT has_table_privilege(%s, %s, %s)",
                                  (ROLE, relation, privilege)).fetchone()[0], (relation, privilege)
    assert not pg.execute("SELECT has_schema_privilege(%s, current_schema(), 'CREATE')", (ROLE,)).fetchone()[0]


def test_objects_created_later_are_readable_too(pg):
    pg.execute("CREATE TABLE grafana_role_probe (id int)")
    try:
        assert pg.execute("SELECT has_table_privilege(%s, 'grafana_role_probe', 'SELECT')", (ROLE,)).fetchone()[0]
        assert not pg.execute("SELECT has_table_privilege(%s, 'grafana_role_probe', 'INSERT')", (ROLE,)).fetchone()[0]
    finally:
        pg.execute("DROP TABLE grafana_role_probe")


def test_role_reads_through_partitions_created_by_the_writer(pg, clean_db):
    import datetime as dt

    from krxflow.hooks import BatchedPostgresHook

    BatchedPostgresHook().upsert("daily_prices", [{"ticker": "005930", "trade_date": dt.date(2015, 6, 3),
                                                    "close": 70000, "volume": 1}])
    pg.execute("SET ROLE krxflow_readonly")
    try:
        assert pg.execute("SELECT count(*) FROM daily_prices WHERE trade_date = '2015-06-03'").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("DELETE FROM daily_prices")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("CREATE TABLE grafana_sneaky (id int)")
    finally:
        pg.execute("RESET ROLE")


@pytest.fixture
def login_role(pg):
    name = f"krxflow_grafana_test_{os.getpid()}_{secrets.token_hex(3)}"
    yield name
    pg.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _psql(*variables: str) -> subprocess.CompletedProcess:
    args = ["psql", os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"], "-X", "-q"]
    for variable in variables:
        args += ["-v", variable]
    return subprocess.run([*args, "-f", str(SCRIPT)], capture_output=True, text=True, timeout=60)


def test_login_role_script_creates_a_read_only_member(pg, login_role):
    password = secrets.token_urlsafe(16) + "'\"$"
    done = _psql(f"grafana_user={login_role}", f"grafana_password={password}")
    assert done.returncode == 0, done.stderr
    again = _psql(f"grafana_user={login_role}", f"grafana_password={password}x")  # rerunnable: rotates the password
    assert again.returncode == 0, again.stderr
    assert password not in SCRIPT.read_text()
    row = pg.execute("SELECT a.rolcanlogin, a.rolsuper, a.rolpassword IS NOT NULL, r.rolconfig "
                     "FROM pg_authid a JOIN pg_roles r USING (oid) WHERE a.rolname = %s", (login_role,)).fetchone()
    assert row[:3] == (True, False, True)
    assert "default_transaction_read_only=on" in row[3]
    assert pg.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (login_role, ROLE)).fetchone()[0]

    dsn = psycopg.conninfo.make_conninfo(os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"], user=login_role,
                                         password=password + "x")
    with psycopg.connect(dsn, autocommit=True) as grafana:
        assert grafana.execute("SELECT count(*) >= 0 FROM stocks").fetchone()[0]
        assert grafana.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            grafana.execute("INSERT INTO stocks (ticker, name, market) VALUES ('999999', 'x', 'KOSPI')")
        grafana.execute("SET default_transaction_read_only = off")  # even then: no privilege
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            grafana.execute("INSERT INTO stocks (ticker, name, market) VALUES ('999999', 'x', 'KOSPI')")


def test_login_role_script_runs_for_two_deployments_at_once(pg, login_role):
    """Roles are cluster-wide: two stacks creating the same login at the same moment both succeed."""
    args = [f"grafana_user={login_role}", f"grafana_password={secrets.token_urlsafe(16)}"]
    for _ in range(5):
        pg.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login_role)))
        runs = [subprocess.Popen(["psql", os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"], "-X", "-q",
                                  *[x for a in args for x in ("-v", a)], "-f", str(SCRIPT)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outcomes = [(run.wait(timeout=60), run.stderr.read()) for run in runs]
        assert all(code == 0 for code, _ in outcomes), outcomes
        assert pg.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (login_role, ROLE)).fetchone()[0]


def test_login_role_script_refuses_to_run_without_its_variables(pg):
    done = _psql("grafana_user=nobody_here")
    assert done.returncode != 0
    assert "grafana_password" in done.stderr


POINT_IN_TIME = ("industry_on(text, date)", "industries_on(date)", "universe_on(text, date)",
                 "industry_returns_on(date)")


def test_role_runs_the_point_in_time_functions_even_without_public_execute(pg):
    """Grafana's sector heat map and index-membership panel call the universe's functions as the
    role: granted to it by name (migration 1410), not only through PUBLIC's default EXECUTE."""
    grants = {r[0] for r in pg.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(p.proacl) a "
        "WHERE a.grantee = %s::regrole AND a.privilege_type = 'EXECUTE'", (ROLE,))}
    assert {f.replace(" ", "") for f in POINT_IN_TIME} <= grants, grants
    for table in ("krx_industry_history", "krx_index_members", "krx_delistings", "krx_universe_checks"):
        assert pg.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (ROLE, table)).fetchone()[0], table
    pg.execute("SET ROLE krxflow_readonly")
    try:
        assert pg.execute("SELECT count(*) >= 0 FROM industry_returns_on(current_date)").fetchone()[0]
        assert pg.execute("SELECT count(*) >= 0 FROM universe_on('1028', current_date)").fetchone()[0]
        assert pg.execute("SELECT industry_on('005930', current_date) IS NULL OR true").fetchone()[0]
        assert pg.execute("SELECT count(*) >= 0 FROM industries_on(current_date)").fetchone()[0]
    finally:
        pg.execute("RESET ROLE")
