"""Every DAG in dags/: loads through DagBag, follows the house rules, and parses light.

Parsing happens in the dag-processor every few minutes for every file, so a DAG file must not
import heavy libraries, open connections or read Variables at the top level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
# Modules that DAG files must leave to task time (the SDK itself already brings httpx and SQLAlchemy).
HEAVY = ["pandas", "pyarrow", "numpy", "pykrx", "matplotlib", "exchange_calendars", "psycopg", "psycopg2",
         "aiohttp", "websockets", "redis", "krxflow.hooks"]

#: Parses each DAG file given in a process of its own, forked after ``airflow.sdk`` is imported (the
#: SDK's own import cost is not the DAG file's): the same start as a fresh interpreter per file, but
#: the SDK is imported once for all files. Prints, per path, the child's exit code, its stdout (the
#: parse time and the heavy modules it loaded, as JSON) and its stderr.
_PROBE = r"""
import importlib.util, json, os, sys, tempfile, time, traceback
from airflow.sdk import dag, task
heavy = json.loads(sys.argv[1])
results = {}
with tempfile.TemporaryDirectory() as folder:
    for n, path in enumerate(sys.argv[2:]):
        out, err = os.path.join(folder, f"{n}.out"), os.path.join(folder, f"{n}.err")
        sys.stdout.flush(), sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            with open(out, "w") as o, open(err, "w") as e:
                os.dup2(o.fileno(), 1), os.dup2(e.fileno(), 2)
                try:
                    before = set(sys.modules)
                    spec = importlib.util.spec_from_file_location("probe_dag_module", path)
                    module = importlib.util.module_from_spec(spec)
                    started = time.perf_counter()
                    spec.loader.exec_module(module)
                    seconds = time.perf_counter() - started
                    loaded = sorted({m for m in set(sys.modules) - before
                                     if any(m == h or m.startswith(h + ".") for h in heavy)})
                    print(json.dumps({"seconds": seconds, "heavy": loaded}))
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush(), sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        with open(out) as o, open(err) as e:
            results[path] = {"returncode": os.waitstatus_to_exitcode(status), "stdout": o.read(), "stderr": e.read()}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def parse_runs() -> dict[str, dict]:
    """Every DAG file parsed by :data:`_PROBE` with the connections pointed at closed ports (any
    connection attempt at parse time would fail against them): per path, the run's exit code and output."""
    env = os.environ.copy()
    env["AIRFLOW_CONN_POSTGRES_DEFAULT"] = "postgresql://nobody@127.0.0.1:1/nothing"
    env["AIRFLOW_CONN_REDIS_DEFAULT"] = "redis://127.0.0.1:1/0"
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"
    run = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(HEAVY), *map(str, DAG_FILES)], capture_output=True,
                         text=True, env=env, timeout=120 + 30 * len(DAG_FILES))
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_dags_folder_has_dags():
    assert DAG_FILES, "no DAG files found"


def test_every_dag_file_loads_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) >= len(DAG_FILES)


def test_every_dag_follows_the_house_rules(dagbag):
    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not dag.doc_md:
            problems.append(f"{dag_id}: no doc_md")
        if "krxflow" not in dag.tags:
            problems.append(f"{dag_id}: not tagged krxflow")
        for task in dag.tasks:
            if task.retries < 2:
                problems.append(f"{dag_id}.{task.task_id}: retries={task.retries} (< 2)")
    assert problems == []


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_file_parses_light_and_touches_no_connection(path, parse_runs):
    run = parse_runs[str(path)]
    assert run["returncode"] == 0, run["stderr"][-3000:]
    report = json.loads(run["stdout"].strip().splitlines()[-1])
    print(f"{path.name}: parsed in {report['seconds']:.3f}s")
    assert report["heavy"] == [], f"{path.name} imports {report['heavy']} at parse time"
