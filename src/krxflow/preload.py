"""What krxflow's tasks import, imported once so that every task process starts with it.

Every Airflow 3 task instance runs in a fresh process forked from an executor worker. A
per-ticker backfill runs ~2,800 of them; if each one imported pandas, pyarrow and psycopg on its
own (~0.5 s of CPU), that alone would cost more than the ticker's load itself (~0.1 s).

Airflow 3.3 lets the scheduler's LocalExecutor start its workers from a ``forkserver`` that
imports a list of modules first; workers and the task processes they fork then share these
modules copy-on-write:

    AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
    AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=airflow.executors.local_executor,krxflow.preload

``make run``, the ``airflow backfill`` integration test and ``bench/backfill.py`` set exactly
this (:data:`krxflow.environment.LOCAL_EXECUTOR_PRELOAD`). Celery workers import it the same
way, once per worker before the pool forks (:mod:`krxflow.celery_config`). Importing this module
opens no connection; besides importing, it only applies :mod:`krxflow.task_exit` (Airflow's task
supervisor would otherwise hold each task's executor slot up to 5 s after the task ended), which
belongs here because these are exactly the processes that fork the supervisors. It applies it
last, after every import, and :func:`krxflow.task_exit.apply` never raises: a patch that does not
fit the installed Airflow logs a warning and costs nothing else (an exception here would abort a
Celery worker's start-up, and the forkserver would silently drop the rest of the preload).
"""

from __future__ import annotations

# The task runner (parses the DAG file, talks to the Execution API), then what the tasks use.
import airflow.dag_processing.dagbag  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401  (@task)
import airflow.sdk.definitions.asset.metadata  # noqa: F401  (Assets emitted by a task)
import airflow.sdk.definitions.decorators  # noqa: F401  (what `from airflow.sdk import task` pulls in a DAG file)
import airflow.sdk.execution_time.cache  # noqa: F401
import airflow.sdk.execution_time.task_runner  # noqa: F401
import jinja2.debug  # noqa: F401  (rendering map_index_template)
import numpy.rec  # noqa: F401
import pandas  # noqa: F401
import psycopg  # noqa: F401
import pyarrow  # noqa: F401
import pyarrow.csv  # noqa: F401
import pyarrow.pandas_compat  # noqa: F401
import redis  # noqa: F401

# krxflow itself: without these, each task would import them again (and, where bytecode is not
# cached, e.g. read-only mounts or PYTHONDONTWRITEBYTECODE, compile them from source first).
import krxflow.api.mount  # noqa: F401  (the plugin)
import krxflow.assets  # noqa: F401
import krxflow.calendar  # noqa: F401
import krxflow.hooks  # noqa: F401
import krxflow.krx.adjusting  # noqa: F401
import krxflow.krx.loading  # noqa: F401
import krxflow.krx.source  # noqa: F401  (pykrx itself is imported in tasks, with KRX_ID/KRX_PW hidden)
import krxflow.sample.market  # noqa: F401
import krxflow.timetables  # noqa: F401
from krxflow import task_exit

task_exit.apply()
