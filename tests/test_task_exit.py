"""``krxflow.task_exit``: Airflow's task supervisor returns when its task process exits, not up to 5 s later.

The supervisor is Airflow's own (``ActivitySubprocess``), forking a real child; only the Execution API
client it reports to is a stand-in (no server is needed to watch a process end). The child closes
every socket it shares with the supervisor and lingers a moment before exiting — what a finishing task
process does for a fraction of a millisecond, stretched so the race is lost every time.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from unittest import mock

import pytest

from krxflow import task_exit

LINGER_SECONDS = 0.5  # between closing its last socket and exiting


def _close_every_socket_then_exit():
    time.sleep(0.3)  # the supervisor sends the start-up message meanwhile
    os.closerange(0, 65536)
    time.sleep(LINGER_SECONDS)
    os._exit(0)


def _supervise_one_child() -> tuple[int, float]:
    """Start the child under Airflow's task supervisor; its exit code and how long ``wait()`` took."""
    from airflow.sdk.api.datamodels._generated import BundleInfo, DagRun, TaskInstance, TIRunContext
    from airflow.sdk.execution_time.supervisor import ActivitySubprocess

    now = dt.datetime.now(dt.timezone.utc)
    client = mock.MagicMock()
    client.task_instances.start.return_value = TIRunContext(
        max_tries=0, dag_run=DagRun(dag_id="d", run_id="r", logical_date=now, data_interval_start=now,
                                    data_interval_end=now, run_after=now, start_date=now, end_date=None,
                                    run_type="manual", state="running", consumed_asset_events=[],
                                    partition_key=None))
    ti = TaskInstance(id=uuid.uuid4(), task_id="t", dag_id="d", run_id="r", try_number=1,
                      dag_version_id=uuid.uuid4())
    started = time.monotonic()
    process = ActivitySubprocess.start(what=ti, dag_rel_path=os.devnull, bundle_info=BundleInfo(name="b", version="1"),
                                       client=client, target=_close_every_socket_then_exit)
    exit_code = process.wait()
    return exit_code, time.monotonic() - started


@pytest.fixture
def unpatched_supervisor(monkeypatch):
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    service = WatchedSubprocess._service_subprocess
    monkeypatch.setattr(WatchedSubprocess, "_service_subprocess", getattr(service, "__wrapped__", service))
    assert not task_exit.applied()


def test_without_it_the_supervisor_sleeps_out_its_heartbeat_interval_after_the_task_ended(unpatched_supervisor):
    from airflow.sdk.execution_time.supervisor import MIN_HEARTBEAT_INTERVAL

    exit_code, seconds = _supervise_one_child()
    assert exit_code == 0
    # The race this module fixes, reproduced: the child was gone ~0.8 s after the start.
    assert seconds >= MIN_HEARTBEAT_INTERVAL - 0.5


def test_with_it_the_supervisor_returns_as_soon_as_the_task_process_exits(unpatched_supervisor):
    assert task_exit.apply() is True
    assert task_exit.apply() is True  # idempotent: wraps once
    assert task_exit.applied()
    exit_code, seconds = _supervise_one_child()
    assert exit_code == 0
    # The child exits 0.3 + LINGER_SECONDS after the start; a wide margin for a busy machine, far under
    # the 5 s heartbeat interval the unpatched supervisor sleeps.
    assert seconds < 0.3 + LINGER_SECONDS + 2.0


def test_a_supervisor_it_does_not_recognise_is_left_alone(monkeypatch, caplog):
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    def _service_subprocess(self, timeout, raise_on_timeout=False, expect_signal=None):  # renamed parameter
        return None

    monkeypatch.setattr(WatchedSubprocess, "_service_subprocess", _service_subprocess)
    assert task_exit.apply() is False
    assert WatchedSubprocess._service_subprocess is _service_subprocess
    assert "not patched" in caplog.text


def test_the_preload_applies_it_where_supervisors_are_forked():
    probe = "import krxflow.preload, krxflow.task_exit as t; print(t.applied())"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "True"
