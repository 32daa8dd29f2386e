"""The one Airflow environment (krxflow.environment) and its users."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from krxflow import environment
from krxflow.settings import MARKET_TZ
from krxflow.stack import env as stack_env
from krxflow.stack.servers import celery_broker_url

ROOT = Path(__file__).resolve().parents[1]
INSTALLATION = dict(home="/srv/airflow", metadata_db="postgresql://u@db:5432/airflow",
                    market_db="postgresql://u@db:5432/krxflow", redis_url="redis://cache:6379/0",
                    dags_folder="/srv/dags", sql_dir="/srv/sql", redis_prefix="p:")


def test_local_executor_environment():
    env = environment.airflow_environment(**INSTALLATION, api_port=8090, parallelism=12)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == MARKET_TZ
    assert env["AIRFLOW__CORE__PARALLELISM"] == env["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] == "12"
    assert int(env["AIRFLOW__CORE__MAX_MAP_LENGTH"]) >= 3000
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg://u@db:5432/airflow"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8090/execution/"
    bundle, = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert (bundle["name"], bundle["kwargs"]["path"]) == ("krxflow", "/srv/dags")
    assert env.items() >= environment.LOCAL_EXECUTOR_PRELOAD.items()
    assert not any(key.startswith("AIRFLOW__CELERY") for key in env)


def test_celery_executor_environment_and_its_preload():
    env = environment.airflow_environment(**INSTALLATION, executor=environment.CELERY_EXECUTOR,
                                          celery_broker_url="redis://cache:6379/1", celery_concurrency=3)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://cache:6379/1"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "redis://cache:6379/1", "results beside the queue"
    assert env["AIRFLOW__CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "p:celery-results:"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "p:celery:"
    assert "AIRFLOW__SCHEDULER__MP_START_METHOD" not in env
    module, _, name = env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
    config = getattr(__import__(module, fromlist=[name]), name)
    assert "krxflow.preload" in config["imports"]
    assert config["broker_url"], "Airflow's own Celery configuration underneath"


_CELERY_APP_PROBE = """
import json
from airflow.providers.celery.executors.celery_executor_utils import app
print(json.dumps({"backend": type(app.backend).__name__, "key": app.backend.get_key_for_task("t1").decode(),
                  "imports": list(app.conf.imports)}))
"""


def test_airflows_celery_app_keeps_results_beside_the_queue_under_the_prefix(tmp_path):
    """Airflow's own Celery app, under the builder's environment: a Redis result backend whose keys
    carry the installation's prefix (one Redis may serve several stacks), and the preload. Building
    the app connects to nothing."""
    env = environment.airflow_environment(**{**INSTALLATION, "home": tmp_path}, executor=environment.CELERY_EXECUTOR,
                                          celery_broker_url="redis://127.0.0.1:1/1")
    run = subprocess.run([sys.executable, "-c", _CELERY_APP_PROBE], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert run.returncode == 0, run.stderr[-3000:]
    app = json.loads(run.stdout.strip().splitlines()[-1])
    assert app["backend"] == "RedisBackend"
    assert app["key"] == "p:celery-results:celery-task-meta-t1"
    assert "krxflow.preload" in app["imports"]


def test_celery_broker_is_required_and_never_krxflows_cache():
    with pytest.raises(ValueError, match="celery_broker_url"):
        environment.airflow_environment(**INSTALLATION, executor=environment.CELERY_EXECUTOR)
    with pytest.raises(ValueError, match="of its own"):
        environment.airflow_environment(**INSTALLATION, executor=environment.CELERY_EXECUTOR,
                                        celery_broker_url=INSTALLATION["redis_url"])
    with pytest.raises(ValueError, match="executor"):
        environment.airflow_environment(**INSTALLATION, executor="SequentialExecutor")
    assert celery_broker_url("redis://cache:6379/0") == "redis://cache:6379/1"
    assert celery_broker_url("redis://cache:6379") == "redis://cache:6379/1"


def test_sizing_for_the_machine():
    assert environment.default_parallelism(2) == 16 and environment.default_parallelism(64) == 32
    assert environment.celery_workers_for(2) == (2, 8)
    assert environment.celery_workers_for(1) == (2, 4), "never fewer than two workers"


def test_make_run_with_celery(tmp_path):
    settings = stack_env.Settings.from_env({"KRXFLOW_RUN_DIR": str(tmp_path), "KRXFLOW_EXECUTOR": "celery",
                                            "KRXFLOW_CELERY_WORKERS": "3"})
    assert (settings.executor, settings.celery_workers) == ("CeleryExecutor", 3)
    state = {"api_port": 18099, "pg_server": "postgresql://postgres@127.0.0.1:5432",
             "redis_url": "redis://127.0.0.1:6379/0", "celery_broker_url": "redis://127.0.0.1:6379/1"}
    env = stack_env.airflow_env(settings, state)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/1"
    assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == MARKET_TZ
    with pytest.raises(ValueError, match="KRXFLOW_EXECUTOR"):
        stack_env.Settings.from_env({"KRXFLOW_EXECUTOR": "kubernetes"})


def test_no_second_copy_of_the_environment():
    """Only the builder spells the executor, map-length, timezone and preload settings (compose's YAML
    is compared with it in test_compose.py)."""
    spelled = re.compile(r'"AIRFLOW__(CORE__(EXECUTOR|MAX_MAP_LENGTH|DEFAULT_TIMEZONE|PARALLELISM|DAGS_FOLDER)'
                         r'|SCHEDULER__MP_\w+|DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST)"\s*:')
    files = [*ROOT.glob("src/**/*.py"), *ROOT.glob("scripts/**/*.py"), *ROOT.glob("bench/*.py"),
             ROOT / "tests" / "conftest.py", *ROOT.glob("tests/fakes/*.py")]
    offenders = [str(f.relative_to(ROOT)) for f in files
                 if f.name != "environment.py" and spelled.search(f.read_text())]
    assert not offenders, offenders


@pytest.mark.integration
@pytest.mark.fresh_machine
def test_celery_worker_preloads_what_tasks_import(airflow_db, airflow_components_env, tmp_path):
    """A real ``airflow celery worker`` with the builder's environment: its main process has imported
    krxflow.preload (pyarrow's and pandas' libraries mapped) before forking its pool, and the pool
    processes (where each task's supervisor forks the task) inherit them."""
    import time

    import psutil

    from tests.fakes.airflow_processes import start_airflow, stop_process
    from krxflow.sample.kis_server import free_port

    env = airflow_components_env(free_port(), executor=environment.CELERY_EXECUTOR, celery_concurrency=2,
                                 celery_broker_url=celery_broker_url(os.environ["AIRFLOW_CONN_REDIS_DEFAULT"]))
    worker = start_airflow(env, tmp_path, "celery-worker", "celery", "worker", "--celery-hostname",
                           f"preload-{os.getpid()}@%h", "--skip-serve-logs")
    try:
        deadline = time.monotonic() + 120
        pool: list[psutil.Process] = []
        while time.monotonic() < deadline and len(pool) < 2:
            assert worker.poll() is None, (tmp_path / "celery-worker.log").read_text()[-3000:]
            pool = [p for p in psutil.Process(worker.pid).children(recursive=True) if "ForkPoolWorker" in p.name()
                    or "ForkPoolWorker" in " ".join(p.cmdline())]
            time.sleep(1)
        assert len(pool) == 2, (tmp_path / "celery-worker.log").read_text()[-3000:]
        for process in pool:
            mapped = {Path(m.path).name for m in process.memory_maps(grouped=True)}
            assert any(name.startswith("libarrow") for name in mapped), f"pool process {process.pid} lacks pyarrow"
    finally:
        stop_process(worker)


def test_the_ui_zone_has_no_server_setting_in_this_airflow():
    """Issue 14 point 9: krxflow sets ``[core] default_timezone``; the UI's zone is the user's choice.

    Airflow 3.3's UI starts from the browser's zone (a Korean user's browser: KST) and keeps the
    user's choice in local storage; ``/ui/config`` passes it no zone. When an Airflow release adds
    one, this fails and the builder should set it to :data:`MARKET_TZ` too.
    """
    from airflow.api_fastapi.core_api.routes.ui import config as ui_config

    exposed = set(ui_config.API_CONFIG_KEYS)
    assert not {key for key in exposed if "zone" in key or key.endswith("_tz")}
    assert "timezone" not in Path(ui_config.__file__).read_text(encoding="utf-8")
