"""``krxflow.preload``: what LocalExecutor workers import up front (see :mod:`krxflow.preload`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from krxflow.environment import LOCAL_EXECUTOR_PRELOAD

_PROBE = """
import json, socket, sys
def refuse(self, *args, **kwargs):
    raise AssertionError(f"krxflow.preload opened a connection to {args}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
for name in sys.argv[1].split(","):
    __import__(name)
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def test_the_scheduler_preload_imports_what_tasks_use_and_connects_to_nothing():
    modules = LOCAL_EXECUTOR_PRELOAD["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"]
    assert LOCAL_EXECUTOR_PRELOAD["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    wanted = ["pandas", "pyarrow", "psycopg", "redis", "krxflow.hooks", "krxflow.krx.loading",
              "krxflow.sample.market", "krxflow.krx.adjusting", "airflow.sdk.execution_time.task_runner",
              "airflow.dag_processing.dagbag", "airflow.sdk.definitions.decorators", "pyarrow.pandas_compat"]
    env = {**os.environ, "AIRFLOW_CONN_POSTGRES_DEFAULT": "postgresql://nobody@127.0.0.1:1/nothing",
           "AIRFLOW_CONN_REDIS_DEFAULT": "redis://127.0.0.1:1/0"}
    unwanted = ["pykrx"]  # reads KRX_ID/KRX_PW when imported: only tasks import it, after setting them
    run = subprocess.run([sys.executable, "-c", _PROBE, modules, json.dumps(wanted + unwanted)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == sorted(wanted)


def test_airflow_reads_the_preload_settings_for_the_scheduler(monkeypatch):
    for key, value in LOCAL_EXECUTOR_PRELOAD.items():
        monkeypatch.setenv(key, value)
    from airflow.utils.process_utils import resolve_mp_start_method

    assert resolve_mp_start_method("scheduler") == "forkserver"


_SABOTAGED_PROBE = """
import ast, json, os, sys
sabotage = sys.argv[1]
if sabotage == "supervisor-moved":
    sys.modules["airflow.sdk.execution_time.supervisor"] = None  # the patch's import raises ImportError
elif sabotage == "method-renamed":
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess
    WatchedSubprocess._renamed = WatchedSubprocess._service_subprocess
    del WatchedSubprocess._service_subprocess
__import__("krxflow.preload")  # as the forkserver and Celery's `imports` do
import krxflow.preload as preload
tree = ast.parse(open(preload.__file__).read())
named = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
named += [f"{node.module}.{alias.name}" for node in tree.body if isinstance(node, ast.ImportFrom)
          and node.module != "__future__" for alias in node.names]
print(json.dumps({"missing": [name for name in named if name not in sys.modules], "count": len(named)}))
"""


@pytest.mark.parametrize("sabotage, env", [
    ("supervisor-moved", {}),
    ("method-renamed", {}),
    ("none", {"KRXFLOW_TASK_EXIT_PATCH": "0"}),
])
def test_a_supervisor_patch_that_cannot_apply_never_aborts_the_preload(sabotage, env):
    """Whatever stops :mod:`krxflow.task_exit`, importing the preload succeeds, imports every module it names
    and says why in one warning (an exception would abort a Celery worker and, under the forkserver,
    silently drop the preload)."""
    run = subprocess.run([sys.executable, "-c", _SABOTAGED_PROBE, sabotage], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    imported = json.loads(run.stdout.strip().splitlines()[-1])
    assert imported["count"] > 20 and imported["missing"] == [], imported
    output = run.stdout + run.stderr  # Airflow's logging writes to stdout
    warnings = [line for line in output.splitlines() if "krxflow.task_exit:" in line]
    assert len(warnings) == 1, output[-3000:]
    assert "left as it is" in warnings[0]
