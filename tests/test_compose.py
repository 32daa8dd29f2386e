"""docker-compose.yaml and .env.example, checked by structure (no Docker engine runs here).

What would break a `docker compose up` silently is checked against the repository itself: every
bind mount exists, every env name the compose file gives krxflow is one the code reads, every
``${VAR}`` the file interpolates is listed in ``.env.example``, each service has a healthcheck.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                    "airflow-triggerer", "airflow-init"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _code_text(services: dict) -> str:
    """The code that can read env names: the package, the DAGs, and airflow-init's own shell script."""
    files = [*ROOT.glob("src/**/*.py"), *ROOT.glob("dags/*.py")]
    init_script = " ".join(services["airflow-init"]["command"])
    shell_reads = " ".join(f'"{name}"' for name in re.findall(r"\$\$\{(\w+)", init_script))
    return "\n".join(p.read_text() for p in files) + shell_reads


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_compose_has_every_service_with_a_healthcheck(services):
    expected = AIRFLOW_SERVICES | {"postgres", "redis", "grafana"}
    assert expected <= set(services), f"missing services: {expected - set(services)}"
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"


def test_airflow_services_share_one_anchor(services):
    text = COMPOSE.read_text()
    assert text.count("&airflow-common\n") == 1, "exactly one x-airflow-common anchor"
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1, f"Airflow services run different images: {images}"
    envs = [_env(services[name]) for name in AIRFLOW_SERVICES]
    for key in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY",
                "AIRFLOW__CORE__MAX_MAP_LENGTH", "AIRFLOW_CONN_POSTGRES_DEFAULT", "AIRFLOW_CONN_REDIS_DEFAULT"):
        assert len({env.get(key) for env in envs}) == 1, f"{key} differs between Airflow services"


def test_airflow_configuration(services):
    env = _env(services["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert int(env["AIRFLOW__CORE__MAX_MAP_LENGTH"]) >= 3000, "krx_history_backfill maps ~2,800 tickers"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")
    bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert bundles[0]["name"] == "krxflow"
    assert bundles[0]["kwargs"]["path"] == env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"
    assert "PYTHONPATH" not in env and "AIRFLOW__CORE__PLUGINS_FOLDER" not in env, \
        "krxflow is installed in the image (provider and plugin entry points), not put on a path"
    # Celery broker (db 0) and krxflow's cache (db 1) are separate Redis databases.
    assert env["AIRFLOW_CONN_REDIS_DEFAULT"].rsplit("/", 1)[1] != env["AIRFLOW__CELERY__BROKER_URL"].rsplit("/", 1)[1]
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                        "airflow-dag-processor": "dag-processor", "airflow-worker": "celery worker",
                        "airflow-triggerer": "triggerer"}


def test_separate_databases_for_metadata_and_market_data(services):
    env = _env(services["airflow-scheduler"])
    metadata_db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[1]
    market_db = env["AIRFLOW_CONN_POSTGRES_DEFAULT"].rsplit("/", 1)[1]
    assert metadata_db != market_db
    init_mounts = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init_mounts, "postgres needs an init script creating both databases"
    script = (ROOT / init_mounts[0].split(":")[0]).read_text()
    assert f"CREATE DATABASE {metadata_db}" in script and f"CREATE DATABASE {market_db}" in script


def test_every_bind_mount_exists_in_the_repo(services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source.startswith(("./", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repo"
    grafana = services["grafana"]["volumes"]
    assert any(v.startswith("./grafana/provisioning:/etc/grafana/provisioning") for v in grafana)
    assert any(v.startswith("./grafana/dashboards:") for v in grafana)
    # the dashboards provider reads the folder grafana/dashboards is mounted at
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/krxflow.yaml").read_text())
    mounted_at = next(v.split(":")[1] for v in grafana if v.startswith("./grafana/dashboards:"))
    assert provider["providers"][0]["options"]["path"] == mounted_at


def test_grafana_gets_every_variable_its_datasource_reads(services):
    lines = (ROOT / "grafana/provisioning/datasources/krxflow.yaml").read_text().splitlines()
    datasource = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    needed = set(re.findall(r"\$\{(\w+)\}", datasource))
    assert needed, "the datasource reads its connection from the environment"
    assert needed <= set(_env(services["grafana"])), needed - set(_env(services["grafana"]))


def test_krxflow_env_names_are_read_by_the_code(services):
    code = _code_text(services)
    names = set()
    for name in AIRFLOW_SERVICES:
        names |= {k for k in _env(services[name]) if k.startswith(("KRXFLOW_", "KRX_", "KIS_"))}
    assert names
    unread = sorted(n for n in names if f'"{n}"' not in code and f"'{n}'" not in code)
    assert not unread, f"compose sets env names no code reads: {unread}"


def test_credentials_reach_only_airflow_init(services):
    for name, service in services.items():
        env = _env(service)
        has_secrets = {k for k in ("KRX_ID", "KRX_PW", "KIS_APPKEY", "KIS_APPSECRET") if k in env}
        if name == "airflow-init":
            assert has_secrets == {"KRX_ID", "KRX_PW", "KIS_APPKEY", "KIS_APPSECRET"}
        else:
            assert not has_secrets, f"{name} should get credentials from the Connections, not env: {has_secrets}"
    init = " ".join(services["airflow-init"]["command"])
    for step in ("airflow db migrate", "python -m krxflow.db migrate", "python -m krxflow.bootstrap"):
        assert step in init


def test_env_example_lists_every_interpolated_variable():
    used = set(re.findall(r"(?<!\$)\$\{(\w+)(?::?-[^}]*)?\}", COMPOSE.read_text()))
    listed = _env_example()
    missing = sorted(used - set(listed))
    assert not missing, f".env.example does not list: {missing}"
    for key in ("KRX_ID", "KRX_PW", "KIS_APPKEY", "KIS_APPSECRET", "POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD",
                "KRXFLOW_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "AIRFLOW_FERNET_KEY"):
        assert key in listed, key
    assert not listed["KRX_PW"] and not listed["KIS_APPSECRET"], ".env.example must not carry real secrets"


def test_env_example_names_the_stack_settings_make_run_reads():
    stack = (ROOT / "src/krxflow/stack/env.py").read_text()
    read = set(re.findall(r'env\.get\("(KRXFLOW_\w+)"', stack))
    assert read, "krxflow.stack.env reads its settings from the environment"
    assert read <= set(_env_example()), read - set(_env_example())


def test_dockerfile_installs_the_pinned_requirements(services):
    build = services["airflow-scheduler"]["build"]
    dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
    pinned = next(line for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("apache-airflow=="))
    assert f"apache/airflow:{pinned.split('==')[1]}" in dockerfile
    assert "requirements.txt" in dockerfile and "postgresql-client" in dockerfile
    assert "--no-deps --no-build-isolation /opt/krxflow/src" in dockerfile, "the image installs krxflow itself"
    hatchling = next(line for line in (ROOT / "requirements-test.txt").read_text().splitlines()
                     if line.startswith("hatchling=="))
    assert hatchling in dockerfile and hatchling in (ROOT / "pyproject.toml").read_text(), "one build backend pin"


#: Variables whose value depends on the deployment (hosts, passwords, sizes, prefixes): compose sets
#: them its own way (with ${…} defaults); every other variable of the builder has compose's value.
_PER_DEPLOYMENT = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__BROKER_URL",
                   "AIRFLOW_CONN_POSTGRES_DEFAULT", "AIRFLOW_CONN_REDIS_DEFAULT", "AIRFLOW__CORE__PARALLELISM",
                   "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "AIRFLOW__CELERY__WORKER_CONCURRENCY",
                   "AIRFLOW__LOGGING__LOGGING_LEVEL", "KRXFLOW_REDIS_PREFIX",
                   "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX",
                   "AIRFLOW__CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"}


def test_compose_environment_is_the_builders(services):
    """docker-compose keeps its YAML; its Airflow environment is krxflow.environment's for the image's paths."""
    from krxflow import environment

    built = environment.airflow_environment(
        home="/opt/airflow", metadata_db="postgresql://airflow@postgres:5432/airflow",
        market_db="postgresql://krxflow@postgres:5432/krxflow", redis_url="redis://redis:6379/1",
        dags_folder="/opt/airflow/dags", redis_prefix="krxflow:", executor=environment.CELERY_EXECUTOR, celery_broker_url="redis://redis:6379/0")
    built.pop("AIRFLOW_HOME")  # the official image's own
    compose_env = _env(services["airflow-scheduler"])
    missing = set(built) - set(compose_env)
    assert not missing, f"docker-compose lacks {sorted(missing)}"
    bundles = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"
    assert json.loads(compose_env[bundles]) == json.loads(built.pop(bundles))
    differing = {key: (compose_env[key], value) for key, value in built.items()
                 if key not in _PER_DEPLOYMENT and compose_env[key] != value}
    assert not differing, f"docker-compose differs from krxflow.environment: {differing}"
    from krxflow.settings import MARKET_TZ

    assert compose_env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == MARKET_TZ
