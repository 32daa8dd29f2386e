"""``krxflow.task_exit``: Airflow's task supervisor returns when its task process exits, not up to 5 s later.

The supervisor is Airflow's own (``ActivitySubprocess``), forking a real child; only the Execution API
client it reports to is a stand-in (no server is needed to watch a process end). The child closes
every socket it shares with the supervisor and lingers a moment before exiting — what a finishing task
process does for a fraction of a millisecond, stretched so the race is lost every time.

It patches a private method, so every way it can fail to fit is tried here: the switch off, a task SDK
it was not verified on, the supervisor module gone, the class or method renamed, the method's
parameters or the attrs state it reads changed, anything else unforeseen. Each time ``apply()``
returns False, logs one warning and leaves Airflow's method in place (tests/test_preload.py: the
preload still imports everything).
"""

from __future__ import annotations

import datetime as dt
import logging
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


# ------------------------------------------------------------------ every way it can fail: one warning, Airflow as it was
def _apply_and_expect_one_warning(caplog, *words: str) -> str:
    """Run ``apply()``: it must return False (not raise) and log exactly one warning; that warning's text."""
    with caplog.at_level(logging.WARNING, logger=task_exit.__name__):
        assert task_exit.apply() is False
    warnings = [r for r in caplog.records if r.name == task_exit.__name__ and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    for word in words:
        assert word in message, message
    return message


def _assert_untouched(original) -> None:
    """Airflow's own method is still the class's (checked after the sabotage was undone)."""
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    assert WatchedSubprocess.__dict__["_service_subprocess"] is original
    assert not task_exit.applied()


@pytest.fixture
def original(unpatched_supervisor):
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    return WatchedSubprocess.__dict__["_service_subprocess"]


def test_turned_off_by_the_environment_switch(monkeypatch, caplog, original):
    monkeypatch.setenv(task_exit.SWITCH, "0")
    _apply_and_expect_one_warning(caplog, "turned off", "KRXFLOW_TASK_EXIT_PATCH=0")
    _assert_untouched(original)
    monkeypatch.setenv(task_exit.SWITCH, "1")  # anything but an "off" word leaves it on
    assert task_exit.apply() is True


def test_a_task_sdk_it_was_not_verified_on_is_left_alone(monkeypatch, caplog, original):
    assert task_exit.task_sdk_version() == "1.3.2"  # the pinned one, inside VERIFIED_TASK_SDK
    monkeypatch.setattr(task_exit, "task_sdk_version", lambda: "1.4.0")
    _apply_and_expect_one_warning(caplog, "apache-airflow-task-sdk 1.4.0", task_exit.VERIFIED_TASK_SDK)
    _assert_untouched(original)
    monkeypatch.setattr(task_exit, "task_sdk_version", lambda: None)  # no metadata: not verified either
    caplog.clear()
    _apply_and_expect_one_warning(caplog, "not installed")
    _assert_untouched(original)


def test_a_supervisor_module_that_cannot_be_imported(monkeypatch, caplog, original):
    with monkeypatch.context() as sabotage:
        sabotage.setitem(sys.modules, "airflow.sdk.execution_time.supervisor", None)  # moved or removed
        _apply_and_expect_one_warning(caplog, "cannot import WatchedSubprocess")
        assert not task_exit.applied()  # says so instead of raising
    _assert_untouched(original)


def test_a_renamed_supervisor_class(monkeypatch, caplog, original):
    import airflow.sdk.execution_time.supervisor as supervisor

    with monkeypatch.context() as sabotage:
        sabotage.delattr(supervisor, "WatchedSubprocess")
        _apply_and_expect_one_warning(caplog, "cannot import WatchedSubprocess")
    _assert_untouched(original)


def test_a_renamed_or_missing_method(monkeypatch, caplog, original):
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    with monkeypatch.context() as sabotage:
        sabotage.delattr(WatchedSubprocess, "_service_subprocess")
        _apply_and_expect_one_warning(caplog, "no _service_subprocess method")
        assert "_service_subprocess" not in WatchedSubprocess.__dict__  # not put back by the patch either
    _assert_untouched(original)


def test_a_method_whose_parameters_changed(monkeypatch, caplog, original):
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    def _service_subprocess(self, timeout, raise_on_timeout=False, expect_signal=None):  # renamed parameter
        return None

    with monkeypatch.context() as sabotage:
        sabotage.setattr(WatchedSubprocess, "_service_subprocess", _service_subprocess)
        _apply_and_expect_one_warning(caplog, "no longer takes (self, max_wait_time")
        assert WatchedSubprocess._service_subprocess is _service_subprocess
    _assert_untouched(original)


@pytest.mark.parametrize("fields", [
    pytest.param(lambda fields: tuple(f for f in fields if f.name != "_open_sockets"), id="a-field-renamed"),
    pytest.param(None, id="no-longer-an-attrs-class"),
])
def test_changed_internal_state_the_patch_reads(monkeypatch, caplog, original, fields):
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    with monkeypatch.context() as sabotage:
        if fields is None:
            sabotage.delattr(WatchedSubprocess, "__attrs_attrs__")
            expected = "no attrs field _exit_code, _open_sockets"
        else:
            sabotage.setattr(WatchedSubprocess, "__attrs_attrs__", fields(WatchedSubprocess.__attrs_attrs__))
            expected = "no attrs field _open_sockets"
        _apply_and_expect_one_warning(caplog, expected)
    _assert_untouched(original)


def test_anything_else_it_did_not_foresee_is_a_warning_too(monkeypatch, caplog, original):
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    with monkeypatch.context() as sabotage:
        sabotage.setattr(WatchedSubprocess, "_service_subprocess", 42)  # inspect.signature raises TypeError
        _apply_and_expect_one_warning(caplog, "could not patch", "TypeError")
    _assert_untouched(original)


def test_the_preload_applies_it_where_supervisors_are_forked():
    probe = "import krxflow.preload, krxflow.task_exit as t; print(t.applied())"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "True"
