"""The operations journal: one ``load_stats`` row for everything krxflow does to the database.

Every write through :class:`~krxflow.hooks.BatchedPostgresHook` is journaled by the hook itself,
in the write's own transaction. Everything else that an operator wants to see on the pipeline
health dashboard — a quality check, a backfill's summary, a partition run, a retention pass, a
dump, a polling window — goes through :class:`Journal`:

* ``journal.record(table, operation, ...)`` writes one row now;
* ``with journal.operation(table, operation) as entry:`` times one unit of work, lets the code
  fill in its figures (``entry.rows_in``, ``entry.details[...]``, ``entry.status``), records it
  when the block ends — ``failed`` with the error when it raises, and re-raises.

The operation names are one enumeration (:class:`Operation`): the writers, the Grafana builder
and the queries that read the journal back (e.g. "was this polling window recorded already?")
all take them from here, so a renamed operation cannot silently empty a panel.

The journal writes through the market database's Connection (the hook's); it does not write any
other table.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from krxflow.sqlfiles import template

if TYPE_CHECKING:
    import psycopg

    from krxflow.hooks import BatchedPostgresHook

log = logging.getLogger(__name__)

#: The longest error text kept in a row (a traceback's last line is what a reader needs).
ERROR_MAX_CHARS = 2000


class Operation(enum.StrEnum):
    """What a ``load_stats`` row records (its ``operation`` column)."""

    # writes through BatchedPostgresHook (one row per call)
    UPSERT = "upsert"
    APPEND = "append"
    # KRX loads
    QUALITY_CHECK = "quality_check"
    HISTORY_TICKER = "history_ticker"
    HISTORY_BACKFILL = "history_backfill"
    COLD_START_SESSION = "cold_start_session"
    ADJUST_SESSION = "adjust_session"
    ADJUST_CROSS_CHECK = "adjust_cross_check"
    # OpenDART loads
    DART_DISCLOSURES_DAY = "dart_disclosures_day"
    DART_STATEMENTS_DAY = "dart_statements_day"
    DART_EVENTS_DAY = "dart_events_day"
    DART_EVENTS_CROSS_CHECK = "dart_events_cross_check"
    # upkeep
    ENSURE_PARTITIONS = "ensure_partitions"
    RETENTION = "retention"
    REFRESH = "refresh"
    PG_DUMP = "pg_dump"
    EXPORT = "export"  # krx_export: one row per run (table "export")
    RESTORE_CHECK = "restore_check"
    # KIS collectors
    KIS_POLL_WINDOW = "kis_poll_window"
    KIS_WS_STATS = "kis_ws_stats"


class Status(enum.StrEnum):
    """A row's ``status`` (the table's CHECK allows exactly these)."""

    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"


@dataclass
class Entry:
    """One journal row: a table (or a pseudo-table such as ``backup``), an operation, its figures."""

    table: str
    operation: Operation | str
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    status: Status | str = Status.OK
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def warn(self, problems: list[str]) -> None:
        """Mark the entry ``warning`` with ``problems`` as its error text (nothing when there are none)."""
        if problems:
            self.status = Status.WARNING
            self.error = "; ".join(problems)[:ERROR_MAX_CHARS]

    def fail(self, exc: BaseException) -> None:
        """Mark the entry failed with ``exc`` (type and message, cut to :data:`ERROR_MAX_CHARS`)."""
        self.status = Status.FAILED
        self.error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def task_context() -> dict[str, Any]:
    """``dag_id``/``run_id``/``task_id``/``map_index`` of the running Airflow task (or Nones).

    Inside a task the SDK's context answers; elsewhere (a subprocess of a task, a script) the
    ``AIRFLOW_CTX_*`` variables Airflow exports do.
    """
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id,
                "map_index": ti.map_index if ti.map_index is not None and ti.map_index >= 0 else None}
    except Exception:  # not inside a running task
        map_index = os.environ.get("AIRFLOW_CTX_MAP_INDEX")
        return {"dag_id": os.environ.get("AIRFLOW_CTX_DAG_ID"), "run_id": os.environ.get("AIRFLOW_CTX_DAG_RUN_ID"),
                "task_id": os.environ.get("AIRFLOW_CTX_TASK_ID"),
                "map_index": int(map_index) if map_index not in (None, "", "-1") else None}


def write_entry(conn: "psycopg.Connection", entry: Entry, context: dict[str, Any]) -> None:
    """Insert ``entry`` on ``conn`` (in the caller's transaction: the writer journals atomically)."""
    conn.execute(template("queries/journal/record_entry.sql"), {
        "dag_id": context.get("dag_id"), "run_id": context.get("run_id"), "task_id": context.get("task_id"),
        "map_index": context.get("map_index"), "table_name": entry.table, "operation": str(entry.operation),
        "rows_in": entry.rows_in, "inserted": entry.inserted, "updated": entry.updated,
        "unchanged": entry.unchanged, "duplicates": entry.duplicates, "rejected": entry.rejected,
        "seconds": entry.seconds, "status": str(entry.status), "error": entry.error,
        "details": Jsonb(entry.details),
    })


class Journal:
    """Records operations in ``load_stats`` through the market database's Connection.

    :param hook: the hook whose Connection (and ``stats_context``) to use
        (:meth:`BatchedPostgresHook.journal() <krxflow.hooks.BatchedPostgresHook.journal>` gives one of
        a hook; the journal does not build hooks itself, so it imports nothing of the writer).
    """

    def __init__(self, hook: "BatchedPostgresHook") -> None:
        self.hook = hook

    def record(self, table: str, operation: Operation | str, **figures: Any) -> Entry:
        """Write one row now, in its own transaction; ``figures`` are :class:`Entry` fields."""
        entry = Entry(table, operation, **figures)
        self.write(entry)
        return entry

    def write(self, entry: Entry) -> None:
        with self.hook.thread_connection() as conn, conn.transaction():
            write_entry(conn, entry, self.hook.journal_context())

    def recorded(self, operation: Operation | str, **details: str) -> bool:
        """Is there a row of ``operation`` whose details hold all of ``details`` (e.g. a window)?

        How a collector that died after journaling but before acknowledging its input finds out,
        on the retry, that the row is already there.
        """
        with self.hook.thread_connection() as conn:
            return conn.execute(template("queries/journal/recorded.sql"),
                                {"operation": str(operation), "details": Jsonb(details)}).fetchone()[0]

    @contextlib.contextmanager
    def operation(self, table: str, operation: Operation | str, **details: Any) -> Iterator[Entry]:
        """Time the block as one ``operation`` on ``table``; record it however the block ends.

        ``details`` start the entry's details (e.g. the file a dump goes to, so a failure says it
        too). An exception marks the entry failed with its message and propagates unchanged.
        """
        entry = Entry(table, operation, details=dict(details))
        started = time.perf_counter()
        try:
            yield entry
        except BaseException as exc:
            entry.fail(exc)
            entry.seconds = time.perf_counter() - started
            try:
                self.write(entry)
            except Exception:  # the database may be what failed; the original error is what matters
                log.exception("could not journal the failed %s of %s", entry.operation, entry.table)
            raise
        entry.seconds = time.perf_counter() - started
        self.write(entry)


@contextlib.contextmanager
def journaled(journal: Journal | None, table: str, operation: Operation | str, **details: Any) -> Iterator[Entry]:
    """``journal.operation(...)``, or an entry that goes nowhere when there is no journal.

    Lets an upkeep function journal each unit of its work when called from a task and stay
    side-effect free when a test or a script calls it bare.
    """
    if journal is None:
        yield Entry(table, operation, details=dict(details))
    else:
        with journal.operation(table, operation, **details) as entry:
            yield entry
