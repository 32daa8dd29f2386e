"""The one Airflow environment krxflow runs in: ``make run``, the tests, the benches, docker-compose.

:func:`airflow_environment` returns the ``AIRFLOW__…`` / ``AIRFLOW_CONN_…`` / ``KRXFLOW_…``
variables of one installation; every place that starts Airflow components uses it (``make run``
through :mod:`krxflow.stack.env`, ``tests/conftest.py``, the integration tests that start a
scheduler, ``bench/backfill.py``), and ``tests/test_compose.py`` checks docker-compose.yaml's
YAML against it. What it settles:

* executor (``LocalExecutor`` or ``CeleryExecutor``), parallelism, and the executor's task
  start-up: LocalExecutor workers forked from a forkserver that has already imported what tasks
  use (:mod:`krxflow.preload`); Celery workers with the broker on a Redis database of their own;
* ``max_map_length`` (``krx_history_backfill`` maps one task per ticker, ~2,800, and the check
  runs in the api-server, so every component needs it), examples off;
* the DAGs folder and the ``krxflow`` DAG bundle (the package and its plugin are installed, not a folder);
* the market's clock: ``[core] default_timezone`` = :data:`krxflow.settings.MARKET_TZ`, so naive
  datetimes given to Airflow (CLI dates, ``backfill create``) are KST. Stored timestamps stay
  timezone-aware (Airflow stores UTC); the Airflow 3 UI shows the zone picked in its user menu
  (it starts from the browser's zone; Airflow 3.3 has no server-side UI default);
* the market database, Redis and (only when given) a SQL folder other than the package's own.

Plain strings only: importing this module imports no Airflow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from krxflow.settings import MARKET_TZ

LOCAL_EXECUTOR = "LocalExecutor"
CELERY_EXECUTOR = "CeleryExecutor"
EXECUTORS = {"local": LOCAL_EXECUTOR, "celery": CELERY_EXECUTOR}

#: ``krx_history_backfill`` maps one task per ticker (~2,800 listed, more with delisted ones).
MAX_MAP_LENGTH = 5000
DAG_BUNDLE_NAME = "krxflow"
CELERY_CONFIG_OPTIONS = "krxflow.celery_config.CELERY_CONFIG"
DAG_BUNDLE_CLASS = "airflow.dag_processing.bundles.local.LocalDagBundle"
DAG_BUNDLE_REFRESH_SECONDS = 30
#: How long the scheduler sleeps after a loop that queued nothing and heard of no finished task
#: (Airflow's default: 1 s). A task finishing during that sleep holds its executor slot until the
#: scheduler wakes; per-ticker backfill tasks last 1–3 s, so a second is a large share of each.
SCHEDULER_IDLE_SLEEP_SECONDS = 0.25

#: Scheduler settings that start LocalExecutor workers from a forkserver which has already
#: imported what krxflow's tasks need (see :mod:`krxflow.preload`): each task process then
#: starts in ~0.1 s instead of re-importing pandas/pyarrow/psycopg.
LOCAL_EXECUTOR_PRELOAD = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "airflow.executors.local_executor,krxflow.preload",
}


def default_parallelism(cpus: int | None = None) -> int:
    """8 task processes per core (8..32): a task mostly waits on PostgreSQL and the Execution API,
    and workers forked from the preloaded forkserver share their memory (bench/backfill.py)."""
    return min(32, max(8, 8 * (cpus or os.cpu_count() or 2)))


def celery_workers_for(cpus: int | None = None) -> tuple[int, int]:
    """(workers, concurrency per worker) for ``make run`` with the CeleryExecutor on this machine:
    one worker per core (at least two, so one worker dying never stops the queue), the whole
    installation's :func:`default_parallelism` shared between them."""
    cpus = cpus or os.cpu_count() or 2
    workers = max(2, cpus)
    return workers, max(1, default_parallelism(cpus) // workers)


def sqlalchemy_url(postgres_url: str) -> str:
    """Airflow's metadata-database URL (psycopg 3 driver) for a ``postgresql://…/db`` URL."""
    return postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)


def dag_bundles(dags_folder: Path | str) -> str:
    """``[dag_processor] dag_bundle_config_list``: the krxflow bundle over ``dags_folder``."""
    return json.dumps([{"name": DAG_BUNDLE_NAME, "classpath": DAG_BUNDLE_CLASS,
                        "kwargs": {"path": str(dags_folder), "refresh_interval": DAG_BUNDLE_REFRESH_SECONDS}}])


def airflow_environment(*, home: Path | str, metadata_db: str, market_db: str, redis_url: str,
                        dags_folder: Path | str, redis_prefix: str, sql_dir: Path | str | None = None,
                        executor: str = LOCAL_EXECUTOR, parallelism: int | None = None,
                        api_port: int | None = None, celery_broker_url: str | None = None,
                        celery_concurrency: int | None = None, logging_level: str = "INFO") -> dict[str, str]:
    """Every variable one krxflow installation's Airflow components (and its CLI) run with.

    ``metadata_db`` and ``market_db`` are ``postgresql://…/<database>`` URLs; ``api_port`` the local
    api-server's port (its Execution API is what task processes talk to); ``celery_broker_url`` is
    required for the CeleryExecutor and must not be krxflow's own Redis database.
    """
    if executor not in EXECUTORS.values():
        raise ValueError(f"executor must be one of {sorted(EXECUTORS.values())}, not {executor!r}")
    parallelism = parallelism or default_parallelism()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(parallelism),
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(MAX_MAP_LENGTH),
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": MARKET_TZ,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(metadata_db),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": dag_bundles(dags_folder),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(DAG_BUNDLE_REFRESH_SECONDS),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": str(SCHEDULER_IDLE_SLEEP_SECONDS),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": logging_level,
        "AIRFLOW_CONN_POSTGRES_DEFAULT": market_db,
        "AIRFLOW_CONN_REDIS_DEFAULT": redis_url,
        "KRXFLOW_REDIS_PREFIX": redis_prefix,
    }
    if sql_dir is not None:  # else the installed package's own (krxflow.settings.sql_dir)
        env["KRXFLOW_SQL_DIR"] = str(sql_dir)
    if api_port is not None:
        env.update({
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        })
    if executor == LOCAL_EXECUTOR:
        env.update(LOCAL_EXECUTOR_PRELOAD)
    else:
        if not celery_broker_url:
            raise ValueError("the CeleryExecutor needs celery_broker_url")
        if celery_broker_url.rstrip("/") == redis_url.rstrip("/"):
            raise ValueError("the Celery broker must be a Redis database of its own, not krxflow's cache")
        env.update({
            "AIRFLOW__CELERY__BROKER_URL": celery_broker_url,
            # results beside the queue, not in the metadata database: the scheduler reads every
            # running task's state on every loop, one MGET here instead of a SQL query against the
            # database the scheduler itself is busiest with; their keys under the prefix below
            "AIRFLOW__CELERY__RESULT_BACKEND": celery_broker_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(celery_concurrency or celery_workers_for()[1]),
            # the Celery workers' preload (krxflow.celery_config)
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
            # one broker database may serve several stacks: each one's keys under its own prefix
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{redis_prefix}celery:",
            "AIRFLOW__CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{redis_prefix}celery-results:",
        })
    return env
