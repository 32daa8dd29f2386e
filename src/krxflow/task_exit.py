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
"""

from __future__ import annotations

import functools
import inspect
import logging

log = logging.getLogger(__name__)

EXIT_POLL_SECONDS = 0.02
"""How often the supervisor checks for the exit of a task process that has closed all its sockets."""

_MARK = "__krxflow_task_exit__"


def apply() -> bool:
    """Make Airflow's task supervisor notice at once that its task process exited.

    Idempotent. Returns False, and leaves Airflow untouched with a warning, when the installed Airflow's
    supervisor no longer has the method and state this relies on (``_service_subprocess(self,
    max_wait_time, ...)``, ``_exit_code``, ``_open_sockets``): a newer supervisor that waits differently
    needs a fresh look, not this patch."""
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    if applied():
        return True
    service = WatchedSubprocess._service_subprocess
    fields = {field.name for field in WatchedSubprocess.__attrs_attrs__}
    if list(inspect.signature(service).parameters)[:2] != ["self", "max_wait_time"] or not {
            "_exit_code", "_open_sockets"} <= fields:
        log.warning("krxflow.task_exit: Airflow's task supervisor has changed; not patched")
        return False

    @functools.wraps(service)
    def _service_subprocess(self, max_wait_time: float, *args, **kwargs):
        if self._exit_code is None and not self._open_sockets:
            max_wait_time = min(max_wait_time, EXIT_POLL_SECONDS)
        return service(self, max_wait_time, *args, **kwargs)

    setattr(_service_subprocess, _MARK, True)
    WatchedSubprocess._service_subprocess = _service_subprocess
    return True


def applied() -> bool:
    """Whether :func:`apply` is in effect in this process."""
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    return getattr(WatchedSubprocess._service_subprocess, _MARK, False)
