"""Free a task's executor slot when its process exits, not up to five seconds later.

Airflow 3.3's task supervisor (:mod:`airflow.sdk.execution_time.supervisor`, the process an executor
worker runs per task) waits for its task process in ``select`` on the process's four sockets
(requests, stdout, stderr, logs), with a timeout of ``[workers] min_heartbeat_interval`` (5 s), and
checks after each wake-up whether the process has exited. A finishing task process closes its
request and log sockets itself, then exits; the kernel closes stdout and stderr while tearing the
process down, a fraction of a millisecond before the process can be reaped. When the supervisor
handles the last of these hang-ups inside that window, the process is not reapable yet, no socket is
left to wake ``select``, and the supervisor sleeps out the whole timeout. Only then does
``supervise()`` return, and only then does the executor hear that the task is done: the executor
slot, and under Celery the pool process and the result the scheduler polls for, stay taken ~5 s after
the task ended.

Measured on the 2,800-ticker backfill under the CeleryExecutor (``bench/backfill.py``), from the task
instances' ``end_date`` to Celery's ``date_done``: median 5.04 s, 90th percentile 5.11 s, 10th
0.05 s — the race was lost by most tasks, and 9 of the 16 executor slots were on average held by
tasks that had already ended. ``strace`` of a pool process shows the sequence: the four hang-ups, a
``wait`` that finds the process still exiting, then ``epoll_wait`` on no socket for 5,000 ms.

:func:`apply` changes only that wait: once every socket of the task process has closed and the
process has not been reaped, the supervisor polls for its exit every :data:`EXIT_POLL_SECONDS`
instead of sleeping the heartbeat interval. Heartbeats, timeouts, signal escalation and log
handling are unchanged. (Lowering ``min_heartbeat_interval`` instead would shorten the sleep only
to the new interval, and make every running task heartbeat the API server that much more often.)
:mod:`krxflow.preload` applies it in the processes that run supervisors: the LocalExecutor's
forkserver and the Celery workers' main process, before they fork.

It patches a private method of Airflow's, so it is built never to break a worker: it applies only
to the task-SDK versions it was verified on (:data:`VERIFIED_TASK_SDK`, checked when the preload
applies it), ``KRXFLOW_TASK_EXIT_PATCH=0`` turns it off (:data:`SWITCH`), and whatever it does not
recognise — the module, the class, the method's signature, the attrs state it reads — makes it log
one warning and leave Airflow as it is; :func:`apply` never raises. Users' documentation:
``docs/operations/task-exit-patch.md``; the report for Apache Airflow:
``docs/upstream/task-supervisor-exit-race.md``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os

log = logging.getLogger(__name__)

EXIT_POLL_SECONDS = 0.02
"""How often the supervisor checks for the exit of a task process that has closed all its sockets."""

VERIFIED_TASK_SDK = "==1.3.2"
"""The ``apache-airflow-task-sdk`` versions this patch was verified on (a PEP 440 specifier).

On any other version :func:`apply` leaves Airflow alone. To widen it after an upgrade, run
``tests/test_task_exit.py`` against the new version with the new range: the test of the unpatched
supervisor shows whether the race is still there (if it no longer sleeps, delete this module), the
test of the patched one that the patch still ends the wait."""

SWITCH = "KRXFLOW_TASK_EXIT_PATCH"
"""Environment variable: ``0`` (or ``false``, ``off``, ``no``) turns the patch off; unset or anything
else leaves it on. Read by :func:`apply`, in the process that applies the patch."""

_OFF = frozenset({"0", "false", "off", "no"})
_MARK = "__krxflow_task_exit__"
_TASK_SDK = "apache-airflow-task-sdk"
_SUPERVISOR = "airflow.sdk.execution_time.supervisor"


class _NotApplicable(Exception):
    """Why the patch is not applied, said in the one warning :func:`apply` logs."""


def apply() -> bool:
    """Make Airflow's task supervisor notice at once that its task process exited.

    Idempotent, and never raises: it runs while a Celery worker starts and inside the LocalExecutor's
    forkserver preload, where an exception would abort the worker or silently drop the whole preload.
    Returns True when the patch is in effect. Otherwise it logs exactly one warning, leaves Airflow's
    supervisor untouched and returns False — when :data:`SWITCH` turns it off, when the installed task
    SDK is not one of :data:`VERIFIED_TASK_SDK`, or when the supervisor no longer has the module, class,
    method and state this relies on (``WatchedSubprocess._service_subprocess(self, max_wait_time, ...)``,
    attrs fields ``_exit_code`` and ``_open_sockets``): a supervisor that waits differently needs a fresh
    look, not this patch."""
    try:
        _apply()
    except _NotApplicable as reason:
        log.warning("krxflow.task_exit: %s; Airflow's task supervisor is left as it is", reason)
        return False
    except Exception as exc:  # whatever else a changed Airflow raises, the worker must still start
        log.warning("krxflow.task_exit: could not patch Airflow's task supervisor (%s: %s); it is left as it is",
                    type(exc).__name__, exc)
        return False
    return True


def _apply() -> None:
    """Patch the supervisor, or raise :class:`_NotApplicable` (or anything else) before touching it."""
    switch = os.environ.get(SWITCH, "").strip().lower()
    if switch in _OFF:
        raise _NotApplicable(f"turned off by {SWITCH}={switch}")
    version = task_sdk_version()
    from packaging.specifiers import SpecifierSet

    if version is None or version not in SpecifierSet(VERIFIED_TASK_SDK):
        raise _NotApplicable(f"{_TASK_SDK} {version or '(not installed)'} is not a version this patch was verified "
                             f"on ({VERIFIED_TASK_SDK})")
    try:
        from airflow.sdk.execution_time.supervisor import WatchedSubprocess
    except ImportError as exc:
        raise _NotApplicable(f"cannot import WatchedSubprocess from {_SUPERVISOR} ({exc})") from exc
    service = getattr(WatchedSubprocess, "_service_subprocess", None)
    if service is None:
        raise _NotApplicable("WatchedSubprocess has no _service_subprocess method")
    if getattr(service, _MARK, False):
        return  # applied already
    if list(inspect.signature(service).parameters)[:2] != ["self", "max_wait_time"]:
        raise _NotApplicable(f"WatchedSubprocess._service_subprocess{inspect.signature(service)} no longer takes "
                             "(self, max_wait_time, ...)")
    fields = {field.name for field in getattr(WatchedSubprocess, "__attrs_attrs__", ())}
    missing = sorted({"_exit_code", "_open_sockets"} - fields)
    if missing:
        raise _NotApplicable(f"WatchedSubprocess has no attrs field {', '.join(missing)}")

    @functools.wraps(service)
    def _service_subprocess(self, max_wait_time: float, *args, **kwargs):
        if self._exit_code is None and not self._open_sockets:
            max_wait_time = min(max_wait_time, EXIT_POLL_SECONDS)
        return service(self, max_wait_time, *args, **kwargs)

    setattr(_service_subprocess, _MARK, True)
    WatchedSubprocess._service_subprocess = _service_subprocess


def applied() -> bool:
    """Whether :func:`apply` is in effect in this process (False also when the supervisor cannot be imported)."""
    try:
        from airflow.sdk.execution_time.supervisor import WatchedSubprocess
    except ImportError:
        return False
    return getattr(getattr(WatchedSubprocess, "_service_subprocess", None), _MARK, False)


def task_sdk_version() -> str | None:
    """The installed ``apache-airflow-task-sdk``'s version (None when its metadata cannot be found)."""
    from importlib import metadata

    try:
        return metadata.version(_TASK_SDK)
    except metadata.PackageNotFoundError:
        return None
