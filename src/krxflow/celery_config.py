"""The Celery workers' preload: Airflow's Celery configuration plus ``imports = krxflow.preload``.

A Celery worker (prefork pool) imports the modules named in ``imports`` once, in its main process,
before it forks its pool processes; each task then runs in a process forked from a pool process
(Airflow 3's supervisor), so tasks start with pandas, pyarrow, psycopg and the task runner already
imported, the way LocalExecutor workers do with the forkserver preload. Selected with
``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=krxflow.celery_config.CELERY_CONFIG`` by
:func:`krxflow.environment.airflow_environment`.

A module in ``imports`` that raises aborts the worker's start-up; the preload's one piece of logic,
:func:`krxflow.task_exit.apply`, never raises (it logs a warning and leaves Airflow alone instead).
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

PRELOAD_MODULES = ("krxflow.preload",)

CELERY_CONFIG = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOAD_MODULES),
}
