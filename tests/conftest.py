"""Test session setup: a throwaway market database, a private Redis namespace, a private Airflow home.

Everything runs against the real PostgreSQL and Redis on this machine (never mocks):

* ``KRXFLOW_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``) is the server; when it (or
  ``KRXFLOW_TEST_REDIS``) is not reachable, the session starts a private one with ``make run``'s code
  and says so in its first lines of output; each
  session creates ``krxflow_test_<pid>`` for market data and ``krxflow_test_<pid>_af`` for
  Airflow's metadata, migrates them and drops them at the end (``KRXFLOW_KEEP_TEST_DB=1`` keeps them).
* The Airflow environment is :func:`krxflow.environment.airflow_environment`'s, the one of every
  installation: ``AIRFLOW_CONN_POSTGRES_DEFAULT`` / ``AIRFLOW_CONN_REDIS_DEFAULT`` point at them.
* Redis keys get a per-session prefix, so parallel runs never see each other's keys.

The environment is set at import time, before anything imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from krxflow import environment  # noqa: E402  (plain strings, no Airflow import)
from krxflow.stack import env as stack_env, servers  # noqa: E402

_TOKEN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
MARKET_DB = f"krxflow_test_{_TOKEN}"
AIRFLOW_DB = f"krxflow_test_{_TOKEN}_af"
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="krxflow-airflow-home-")


#: Said in the session's first lines of output (pytest captures what conftest prints at import).
_SESSION_NOTES: list[str] = []


def _test_servers() -> tuple[str, str, dict]:
    """PostgreSQL and Redis for the session: ``KRXFLOW_TEST_PG`` / ``KRXFLOW_TEST_REDIS`` when reachable,
    else private ones started by the same code as ``make run`` (:func:`krxflow.stack.servers.ensure_servers`),
    under ``KRXFLOW_TEST_RUN_DIR`` (default ``.run/test-servers``), stopped at the end of the session."""
    settings = stack_env.Settings.from_env({
        "KRXFLOW_RUN_DIR": os.environ.get("KRXFLOW_TEST_RUN_DIR") or str(ROOT / ".run" / "test-servers"),
        "KRXFLOW_PG_SERVER": os.environ.get("KRXFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432"),
        "KRXFLOW_REDIS_URL": os.environ.get("KRXFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0"),
    })
    state = {"processes": {}}
    servers.ensure_servers(settings, state)
    started = [name for name in ("postgres", "redis") if name in state["processes"]]
    if started:
        unreachable = {"postgres": settings.pg_server, "redis": settings.redis_url}
        _SESSION_NOTES.extend(f"[krxflow] tests: no {name} at {unreachable[name]}: started a private one with "
                              f"`make run`'s code at {state['pg_server' if name == 'postgres' else 'redis_url']} "
                              f"(run dir {settings.run_dir})" for name in started)
        # the tests that start `make run`'s stack or Airflow components use the same servers
        os.environ["KRXFLOW_TEST_PG"], os.environ["KRXFLOW_TEST_REDIS"] = state["pg_server"], state["redis_url"]
    if state.get("pg_bin"):  # its pg_dump / pg_restore, for db_backup, on PATH as `make run` puts them
        os.environ["PATH"] = os.pathsep.join([state["pg_bin"], os.environ.get("PATH", "")])
    return state["pg_server"].rstrip("/"), state["redis_url"], state


_PG_SERVER, _REDIS_URL, _SERVERS_STATE = _test_servers()

#: The session's installation, as :func:`krxflow.environment.airflow_environment` takes it.
_INSTALLATION = dict(
    home=_AIRFLOW_HOME, metadata_db=f"{_PG_SERVER}/{AIRFLOW_DB}", market_db=f"{_PG_SERVER}/{MARKET_DB}",
    redis_url=_REDIS_URL, dags_folder=ROOT / "dags", redis_prefix=f"krxflow-test-{_TOKEN}:")

os.environ.update({
    **environment.airflow_environment(**_INSTALLATION, logging_level="WARNING"),
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "MPLCONFIGDIR": tempfile.mkdtemp(prefix="krxflow-mpl-"),
})
for leaked in ("KRX_ID", "KRX_PW"):  # pykrx logs in at import time when these are set
    os.environ.pop(leaked, None)
# Subprocesses (the krxflow CLI, airflow commands) import this checkout's package (the venv has it
# installed from here: `make venv`), and the test fakes (``tests.fakes``) from the checkout's root.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import psycopg  # noqa: E402
import pytest  # noqa: E402


def _admin(sql_text: str) -> None:
    with psycopg.connect(f"{_PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql_text)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for note in _SESSION_NOTES:
        if reporter is not None:
            reporter.write_line(note)
        else:
            print(note, flush=True)


def pytest_configure(config):
    # Worker-safe: only the controlling process creates the databases.
    from psycopg import sql

    for name in (MARKET_DB, AIRFLOW_DB):
        _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)).as_string())
    from krxflow.db import migrations
    from krxflow.db.connection import connection

    with connection() as conn:
        migrations.migrate(conn)


def pytest_unconfigure(config):
    if os.environ.get("KRXFLOW_KEEP_TEST_DB"):
        return
    from psycopg import sql

    if "airflow.settings" in sys.modules:  # close Airflow's pooled connections before the drop
        try:
            sys.modules["airflow.settings"].dispose_orm()
        except Exception as exc:
            print(f"could not close Airflow's connections: {exc}", file=sys.stderr)
    for name in (MARKET_DB, AIRFLOW_DB):
        try:
            _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)).as_string())
        except psycopg.Error as exc:  # never hide the test result behind a cleanup error
            print(f"could not drop {name}: {exc}", file=sys.stderr)
    try:
        from krxflow import cache

        client = cache.client()
        for key in client.scan_iter(match=cache.prefix() + "*", count=1000):
            client.delete(key)
    except Exception as exc:  # Redis may be down for a test that stopped it
        print(f"could not clean Redis keys: {exc}", file=sys.stderr)
    for name, how in servers.stop_servers(_SERVERS_STATE).items():
        print(f"[krxflow] tests: private {name} {how}", file=sys.stderr)


@pytest.fixture
def pg():
    """An autocommit psycopg 3 connection to the session's market database."""
    from krxflow.db.connection import connection

    with connection() as conn:
        yield conn


_DATA_TABLES = ("stocks", "daily_prices", "daily_prices_adjusted", "adjustment_factors", "intraday_quotes", "order_books",
                "market_data", "load_stats")


@pytest.fixture
def clean_db(pg):
    """The market database with every data table emptied (schema and partitions kept)."""
    from psycopg import sql

    existing = {r[0] for r in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    tables = [t for t in _DATA_TABLES if t in existing]
    pg.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
    return pg


@pytest.fixture
def redis_client():
    """A Redis client on the session's namespace; the namespace is emptied before the test."""
    from krxflow import cache

    client = cache.client()
    for key in client.scan_iter(match=cache.prefix() + "*", count=1000):
        client.delete(key)
    yield client
    client.close()


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database, migrated once per session (needed by dag.test() and the CLI)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env=os.environ.copy(), timeout=600)
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture
def airflow_components_env():
    """A factory of the environment for Airflow components a test starts itself (scheduler, api-server,
    Celery workers) on the session's databases: the one builder's, for ``api_port`` and the executor."""

    def make(api_port: int, **options) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}  # the builder's only
        env = {**base, **environment.airflow_environment(**_INSTALLATION, api_port=api_port,
                                                         **{"logging_level": "INFO", **options})}
        for leaked in ("KRX_ID", "KRX_PW"):
            env.pop(leaked, None)
        return env

    return make


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    """Every DAG in ``dags/``, parsed once per test module (tests may adjust a DAG's tasks)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags"))


@pytest.fixture
def scratch_database():
    """A factory of empty databases on the test server, dropped after the test; returns each one's URL."""
    from psycopg import sql

    made = []

    def make(suffix: str = "scratch") -> str:
        name = f"krxflow_test_{_TOKEN}_{suffix}_{len(made)}"
        _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)).as_string())
        made.append(name)
        return f"{_PG_SERVER}/{name}"

    yield make
    for name in made:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)).as_string())
