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
* With pytest-xdist (``make test`` runs ``-n 2 --dist loadfile``) every worker process imports this
  file and is a session of its own: its own databases, Redis prefix and Airflow home (the token
  below holds the worker's pid). Private servers are started once, by the controlling process,
  whose environment the workers inherit; the controller runs no test and creates no database.
  A test module is one work unit (:func:`work_unit`), the longest units first
  (docs/development/tests.md).

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

#: Set by pytest-xdist in its worker processes before they import this file (``gw0``, ``gw1``, ...),
#: and inherited by their subprocesses (a test that runs ``make test`` itself): hooks ask the config
#: (:func:`_is_worker`), this is only for what happens at import time.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
_TOKEN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
MARKET_DB = f"krxflow_test_{_TOKEN}"
AIRFLOW_DB = f"krxflow_test_{_TOKEN}_af"
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="krxflow-airflow-home-")


#: Said in the session's first lines of output (pytest captures what conftest prints at import).
_SESSION_NOTES: list[str] = []


def _test_servers() -> tuple[str, str, dict]:
    """PostgreSQL and Redis for the session: ``KRXFLOW_TEST_PG`` / ``KRXFLOW_TEST_REDIS`` when reachable,
    else private ones started by the same code as ``make run`` (:func:`krxflow.stack.servers.ensure_servers`),
    under ``KRXFLOW_TEST_RUN_DIR`` (default ``.run/test-servers``), stopped at the end of the session.

    An xdist worker starts nothing: the controller has made the servers reachable before it started
    the workers and exported the private ones' URLs (``KRXFLOW_TEST_PG`` / ``KRXFLOW_TEST_REDIS``),
    which the workers inherit; one run dir, one pair of servers for the whole run."""
    if XDIST_WORKER:
        return (os.environ.get("KRXFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/"),
                os.environ.get("KRXFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0"), {"processes": {}})
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


#: Modules whose tests are each a work unit of their own under ``make test``'s ``--dist loadfile``
#: (every other module goes to one worker whole, its module-scoped fixtures set up once): the two
#: executors' end-to-end drives are the longest tests, and two workers may run them side by side.
ONE_UNIT_PER_TEST = ("tests/test_e2e_stack.py",)
#: Modules that go to one worker together, as one unit: they drive one shared stack (``local_airflow_stack``).
SAME_UNIT = {"tests/test_krx_reports_backfill.py": "tests/test_krx_backfill_cli.py",
             "tests/test_etf_dag.py": "tests/test_krx_backfill_cli.py"}

#: The work units that take longest, handed out first so that the workers finish together (longest
#: processing time first; a worker also holds the next unit in reserve); every other one follows in
#: collection order. Measured durations: docs/development/tests.md. A stale entry costs time only.
LONGEST_FIRST = ("tests/test_e2e_stack.py::test_make_run_stack_end_to_end[celery]",
                 "tests/test_e2e_stack.py::test_make_run_stack_end_to_end[local]",
                 "tests/test_celery_krx_pacing.py", "tests/test_kis_polling.py",
                 "tests/test_krx_backfill_cli.py")


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its module (or the one of :data:`SAME_UNIT`), or the test itself
    in :data:`ONE_UNIT_PER_TEST`."""
    module = nodeid.split("::", 1)[0]
    return nodeid if module in ONE_UNIT_PER_TEST else SAME_UNIT.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` by :func:`work_unit`, the units in :data:`LONGEST_FIRST` order (the workers
    collect them in that order, :func:`pytest_collection_modifyitems`), not by number of tests."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_collection_modifyitems(config, items):
    """In an xdist worker: the tests of :data:`LONGEST_FIRST` first, the rest in collection order
    (every worker collects the same order, as xdist requires)."""
    if _is_worker(config):
        def rank(item) -> int:
            unit = work_unit(item.nodeid)
            return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

        items[:] = sorted(items, key=rank)  # stable


def pytest_deselected(items):
    """In an xdist worker: keep what ``-k`` / ``-m`` deselected for the controller's summary line."""
    if items and isinstance(items[0], pytest.Item) and _is_worker(items[0].config):
        items[0].config.workeroutput.setdefault("deselected", []).extend(item.nodeid for item in items)


#: In the xdist controller: whether a worker's deselected tests were reported (each worker deselects the same).
_DESELECTED_REPORTED: list[bool] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """In the xdist controller: the deselected tests in the summary line, as a run without workers
    says them (xdist itself does not); the first worker to finish reports them."""
    deselected = getattr(node, "workeroutput", {}).get("deselected")
    if deselected and not _DESELECTED_REPORTED:
        _DESELECTED_REPORTED.append(True)
        node.config.hook.pytest_deselected(items=deselected)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for note in _SESSION_NOTES:
        if reporter is not None:
            reporter.write_line(note)
        else:
            print(note, flush=True)


def _distributes(config) -> bool:
    """Whether this process is pytest-xdist's controller: it hands the tests to workers and runs none."""
    return not _is_worker(config) and config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


#: Key of the advisory lock (on the server's ``postgres`` database) that lets one session at a time
#: migrate: the first migration creates the server-wide ``krxflow_readonly`` role, which two xdist
#: workers starting together on a fresh server would both try to create.
_MIGRATION_LOCK = 0x6B7278666C6F77


def pytest_configure(config):
    if _distributes(config):
        return
    from psycopg import sql

    for name in (MARKET_DB, AIRFLOW_DB):
        _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)).as_string())
    from krxflow.db import migrations
    from krxflow.db.connection import connection

    with psycopg.connect(f"{_PG_SERVER}/postgres", autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        with connection() as conn:
            migrations.migrate(conn)


def pytest_unconfigure(config):
    if _LOCAL_STACK is not None:  # a run interrupted while the shared stack ran
        _LOCAL_STACK.stop()
    if _distributes(config):  # no database, no key of its own; the private servers are its to stop
        for name, how in servers.stop_servers(_SERVERS_STATE).items():
            print(f"[krxflow] tests: private {name} {how}", file=sys.stderr)
        return
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
        from krxflow import redis_client

        client = redis_client.client()
        for key in client.scan_iter(match=redis_client.prefix() + "*", count=1000):
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
    from krxflow import redis_client

    client = redis_client.client()
    for key in client.scan_iter(match=redis_client.prefix() + "*", count=1000):
        client.delete(key)
    yield client
    client.close()


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database, migrated once per session (needed by dag.test() and the CLI)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env=os.environ.copy(), timeout=600)
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def _components_env(api_port: int, **options) -> dict[str, str]:
    """The environment of Airflow components on the session's databases: the one builder's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}  # the builder's only
    env = {**base, **environment.airflow_environment(**_INSTALLATION, api_port=api_port,
                                                     **{"logging_level": "INFO", **options})}
    for leaked in ("KRX_ID", "KRX_PW"):
        env.pop(leaked, None)
    return env


@pytest.fixture
def airflow_components_env():
    """A factory of the environment for Airflow components a test starts itself (scheduler, api-server,
    Celery workers) on the session's databases: the one builder's, for ``api_port`` and the executor."""
    return _components_env


def _start_local_stack(logs: Path) -> dict:
    """An api-server (Execution API) and a scheduler (LocalExecutor with the preloaded forkserver, as
    ``make run``) on the session's databases: the sample source with 20 tickers, no scheduled runs
    (only the runs a test creates), the DAGs serialized, the KRX pool made."""
    from krxflow.krx.pacing import KRX_POOL, KRX_POOL_DESCRIPTION, KRX_POOL_SLOTS
    from krxflow.sample.kis_server import free_port
    from tests.fakes.airflow_processes import CLI_TIMEOUT, airflow_cli, start_airflow, stop_process

    port = free_port()
    env = {**_components_env(port, parallelism=2), "KRXFLOW_SOURCE": "sample", "KRXFLOW_SAMPLE_TICKERS": "20",
           "AIRFLOW__API_AUTH__JWT_SECRET": "krxflow-integration-test-secret",
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2"}
    airflow_cli(env, "dags", "reserialize", timeout=CLI_TIMEOUT)
    airflow_cli(env, "pools", "set", KRX_POOL, str(KRX_POOL_SLOTS), KRX_POOL_DESCRIPTION, timeout=CLI_TIMEOUT)
    api = start_airflow(env, logs, "api-server", "api-server", "--apps", "execution", "--port", str(port),
                        "--workers", "1")
    try:
        return {"env": env, "processes": [api, start_airflow(env, logs, "scheduler", "scheduler")]}
    except BaseException:
        stop_process(api)
        raise


#: The session's (each xdist worker's) shared api-server + scheduler, see ``local_airflow_stack``.
_LOCAL_STACK = None


@pytest.fixture
def local_airflow_stack(airflow_db):
    """The api-server and scheduler of :func:`_start_local_stack`, shared by consecutive tests that only
    drive them through the ``airflow`` CLI (tests/test_krx_backfill_cli.py and
    tests/test_krx_reports_backfill.py, one work unit under ``make test``, so one worker runs both,
    one after the other): started for the first, stopped after the last (:func:`pytest_runtest_teardown`).
    A dict: ``env`` (for the CLI), ``logs`` (the components' logs), ``processes``."""
    global _LOCAL_STACK
    from tests.fakes.airflow_processes import SharedComponents

    if _LOCAL_STACK is None:
        _LOCAL_STACK = SharedComponents("local-stack", _start_local_stack)
    return _LOCAL_STACK.started()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Stop the shared stack once the next test does not use it (none runs beside a live scheduler)."""
    if _LOCAL_STACK is not None and (nextitem is None or "local_airflow_stack" not in nextitem.fixturenames):
        _LOCAL_STACK.stop()


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    """Every DAG in ``dags/``, parsed once per test module (tests may adjust a DAG's tasks)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags"))


@pytest.fixture(scope="module")
def scratch_database():
    """A factory of empty databases on the test server, dropped after the test module (a module-scoped
    fixture may keep one for several tests); returns each one's URL."""
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


@pytest.fixture
def logged_in_krx(monkeypatch, redis_client):
    """A pykrx source with the krx_default Connection's login (shared through Redis), no pacing delay."""
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.krx.source import PykrxSource

    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    reset_pykrx_state()
    yield PykrxSource(min_interval=0)
    reset_pykrx_state()


@pytest.fixture(scope="module")
def viewer_token(airflow_db):
    """A bearer token of a viewer from Airflow's auth manager, as the read API's callers log in."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return init_auth_manager().generate_jwt(SimpleAuthManagerUser(username="reader", role="viewer"))
