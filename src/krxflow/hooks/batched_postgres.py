"""``BatchedPostgresHook``: the one writer every krxflow load goes through.

A thin subclass of the provider's :class:`~airflow.providers.postgres.hooks.postgres.PostgresHook`
(same Connection, same ``postgres_conn_id``), adding the one thing the provider lacks: fast,
atomic, validated bulk upserts into partitioned tables.

How a call works (``upsert`` or ``append``)
  1. The target's columns, key, CHECKs and partition policy are read from the catalog.
  2. The input (pandas DataFrame, pyarrow Table/RecordBatch, or an iterable of tuples or dicts)
     is cut into batches; duplicate keys are resolved first (the *last* row of a key wins, as
     ``ON CONFLICT`` cannot touch a row twice in one command); every batch is validated and
     converted (:mod:`krxflow.hooks.validation`). Bad rows are rejected, counted and reported.
  3. Partitions for the incoming key range are created in their own short transaction.
  4. One transaction writes everything, with JIT off (it compiles every partition's plan, ~1 s a
     statement, which no write here wins back):
     * **fast path** — the incoming range of a partitioned table holds no rows yet (no rows of
       the incoming key prefixes, e.g. tickers or (ticker, adjusted), when there are few of them):
       ``COPY`` straight into the table (inside a savepoint; if a concurrent writer got there
       first the savepoint is rolled back and the staged path runs instead);
     * **staged path** — ``COPY`` into a temporary table, drop rows that fail the target's other
       CHECK constraints, then ``INSERT … ON CONFLICT (key) DO UPDATE`` (``DO NOTHING`` for
       ``append``) that skips rows whose values did not change.
  5. The write is journaled (:mod:`krxflow.journal`: a ``load_stats`` row) in the same transaction
     (or, when the write fails, in its own transaction with the error) so the health dashboard
     sees every write.

Calls on one hook share one connection per thread (:meth:`BatchedPostgresHook.thread_connection`).

All or nothing: an error anywhere leaves the table exactly as it was.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import select
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from airflow.providers.postgres.hooks.postgres import PostgresHook
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.pq import TransactionStatus

from krxflow import journal
from krxflow.db import partitions
from krxflow.hooks.binary_copy import HEADER as BINARY_HEADER, TRAILER as BINARY_TRAILER, binary_fields, encode_rows
from krxflow.hooks.table_spec import TableSpec
from krxflow.hooks.validation import validate, writable_key_range
from krxflow.settings import POSTGRES_CONN_ID
from krxflow.sqlfiles import identifiers, template

log = logging.getLogger(__name__)

#: Rows per validation/COPY batch. Large batches amortise per-batch overhead; memory stays
#: bounded by the caller's data, which is already in memory.
DEFAULT_BATCH_SIZE = 50_000
#: A kept connection idle longer than this is replaced, not reused (BatchedPostgresHook.thread_connection).
KEEP_IDLE_SECONDS = 60.0
#: Rejected rows kept per call for the report (all are counted).
REJECT_SAMPLE_SIZE = 10
#: Staged writes up to this many rows join the target through its key index, not a hash of the table.
INDEX_JOIN_MAX_ROWS = 20_000
#: The fast-path check narrows to the key's leading values (tickers, or (ticker, adjusted) pairs)
#: when there are at most this many.
FAST_PATH_MAX_LEADING_VALUES = 1_000
#: Buffers (up to 128 kB each) the COPY writer thread may hold back: ~8 MB.
COPY_QUEUE_BUFFERS = 64

_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=8192)
# Errors a concurrent writer (or a constraint only PostgreSQL checks) can raise on the fast path.
_FAST_PATH_FALLBACK_ERRORS = (psycopg.errors.UniqueViolation, psycopg.errors.CheckViolation,
                              psycopg.errors.NotNullViolation)


# ---------------------------------------------------------------------- the writer's short statements
# Named beside the code that fills them: ``{name}`` placeholders take identifiers or composed
# fragments (psycopg.sql), ``%(name)s`` placeholders take values. The writer's longer queries stay
# files in include/sql/queries/writer/ (the SQL-file policy, tests/test_sql_files.py).

#: Every write transaction. JIT compiles one expression set per partition of the target (~500
#: functions, ~1 s for a 61-partition table) as soon as a statement's estimated cost passes
#: jit_above_cost, which a staged UPDATE against a grown table does; a writer statement never runs
#: long enough to win that back (measured: 1.28 s with, 15 ms without). LOCAL: this transaction only.
TRANSACTION_SETTINGS = sql.SQL("SET LOCAL jit = off")
#: Few staged rows against a large (partitioned) target: join by probing the target's key index
#: instead of hashing the whole target, whose cost grows with the table rather than with the write
#: (per-ticker history loads: 0.07 s -> 0.4 s per call at 400k rows and rising).
PREFER_INDEX_JOINS = sql.SQL("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
#: {staging}, {target}: identifiers. A constraint-free copy of the target's columns, gone at commit.
CREATE_STAGING = sql.SQL("CREATE TEMP TABLE {staging} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
#: {staging}: identifier, {columns}: identifier list; {passes}: the target's CHECK expressions ANDed,
#: NULL counting as a pass (as PostgreSQL does). Removes the rows the target would refuse, returning them.
REJECT_FAILING_CHECKS = sql.SQL("DELETE FROM {staging} WHERE NOT ({passes}) RETURNING {columns}")
#: {table}: identifier. Temporary tables are never auto-analysed; the join plans need row counts.
ANALYZE = sql.SQL("ANALYZE {table}")
#: {target}, {staging}: identifiers; {assignments}: col = s.col; {key_match}: t.k = s.k AND …;
#: {target_values}/{staged_values}: the non-key columns of each side. Only rows whose values
#: changed are rewritten: an unchanged row costs a read, not a new tuple.
UPDATE_FROM_STAGING = sql.SQL(
    "UPDATE {target} AS t SET {assignments} FROM {staging} AS s "
    "WHERE {key_match} AND ({target_values}) IS DISTINCT FROM ({staged_values})")
#: {table}, {key}: identifiers. Does the target already hold any row in the incoming key range?
RANGE_HAS_ROWS = sql.SQL("SELECT EXISTS (SELECT 1 FROM {table} WHERE {key} BETWEEN %(low)s AND %(high)s)")
#: {table}: identifier, {columns}: identifier list. Rows in PostgreSQL's binary COPY format
#: (krxflow.hooks.binary_copy: the server parses no text), or as CSV when a column's type has no encoder.
COPY_IN_BINARY = sql.SQL("COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary)")
COPY_IN_CSV = sql.SQL("COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)")


class BadInputError(ValueError):
    """The call itself is wrong (unknown table or columns, no key): nothing was written."""


@dataclass
class WriteResult(journal.Entry):
    """What one ``upsert``/``append`` call did: the journal entry it leaves, plus how it wrote."""

    fast_path: bool = False
    partitions_created: list[str] = field(default_factory=list)
    reject_sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return self.inserted + self.updated

    def summary(self) -> str:
        return (f"{self.operation} {self.table}: {self.rows_in} in, {self.inserted} inserted, "
                f"{self.updated} updated, {self.unchanged} unchanged, {self.duplicates} duplicate keys, "
                f"{self.rejected} rejected in {self.seconds:.2f}s" + (" (fast path)" if self.fast_path else ""))


class BatchedPostgresHook(PostgresHook):
    """Batched, validated, atomic writes into krxflow's (partitioned) tables.

    :param postgres_conn_id: the Airflow Connection of the market database.
    :param batch_size: rows per validation and COPY batch.
    :param record_stats: write a ``load_stats`` row per call (on by default).
    :param stats_context: ``dag_id``/``run_id``/``task_id``/``map_index`` for ``load_stats``;
        taken from the running Airflow task when not given.
    """

    hook_name = "Batched Postgres (krxflow)"

    def __init__(self, *args, postgres_conn_id: str = POSTGRES_CONN_ID, batch_size: int = DEFAULT_BATCH_SIZE,
                 record_stats: bool = True, stats_context: dict[str, Any] | None = None, **kwargs) -> None:
        super().__init__(*args, postgres_conn_id=postgres_conn_id, **kwargs)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.record_stats = record_stats
        self.stats_context = stats_context
        self._specs: dict[str, TableSpec] = {}
        self._held = threading.local()  # this thread's .conn, the .pid it was opened in, .last_used, .depth

    # ------------------------------------------------------------------ public API
    def upsert(self, table: str, data, key: Sequence[str] | None = None, columns: Sequence[str] | None = None,
               *, batch_size: int | None = None) -> WriteResult:
        """Insert new rows and update changed ones (by ``key``, default: the primary key)."""
        return self._write("upsert", table, data, key, columns, batch_size)

    def append(self, table: str, data, columns: Sequence[str] | None = None,
               *, batch_size: int | None = None) -> WriteResult:
        """Insert rows whose key is new; rows already present are left alone (insert-only tables)."""
        return self._write("append", table, data, None, columns, batch_size)

    def ensure_partitions(self, table: str, first, last) -> list[str]:
        """Create the partitions of ``table`` covering ``first``..``last`` (KST); returns those created."""
        with self.thread_connection() as conn:
            return partitions.ensure_partitions(conn, table, first, last)

    @contextlib.contextmanager
    def thread_connection(self) -> Iterator[psycopg.Connection]:
        """This thread's connection to the market database (autocommit: explicit transactions only),
        opened on first use and kept for the hook's next calls.

        A per-ticker backfill task makes six calls (two reads, three writes, its journal row); each on
        a new connection cost PostgreSQL a backend start and a cold catalog cache for the partitioned
        tables (~20 ms each on 2 cores against ~4 ms for the same query on an open connection). A
        connection is never shared between threads nor used across a fork, and is replaced when it
        is closed, broken, left in a transaction, has something to read while idle (the server ended
        it) or sat idle longer than :data:`KEEP_IDLE_SECONDS` (a long-lived process's firewall may
        have dropped it). Nested calls (a write inside ``with hook.thread_connection()``) get the
        same connection, as it is.
        """
        held, pid = self._held, os.getpid()
        if getattr(held, "pid", None) != pid:  # first use in this thread, or a fork's child
            held.pid, held.conn, held.depth = pid, None, 0
        if held.depth:
            held.depth += 1
            try:
                yield held.conn
            finally:
                held.depth -= 1
            return
        conn = held.conn
        if conn is not None and (time.monotonic() - held.last_used > KEEP_IDLE_SECONDS or not _reusable(conn)):
            conn.close()
            conn = None
        if conn is None:
            conn = self.get_conn()
            conn.autocommit = True
        held.conn, held.depth = conn, 1
        try:
            yield conn
        finally:
            held.depth = 0
            if _reusable(conn):
                held.last_used = time.monotonic()
            else:
                conn.close()
                held.conn = None

    def close(self) -> None:
        """Close this thread's kept connection (the next call opens another)."""
        held = self._held
        if getattr(held, "pid", None) == os.getpid() and held.conn is not None:
            held.conn.close()
            held.conn = None

    # ------------------------------------------------------------------ internals

    def _spec(self, conn: psycopg.Connection, table: str) -> TableSpec:
        if table not in self._specs:
            self._specs[table] = TableSpec.load(conn, table)
        return self._specs[table]

    def _write(self, operation: str, table: str, data, key, columns, batch_size) -> WriteResult:
        started = time.perf_counter()
        result = WriteResult(table, operation)
        with self.thread_connection() as conn:
            try:
                spec = self._spec(conn, table)
                source = _Source.of(data, columns, batch_size or self.batch_size)
                columns = _resolve_columns(spec, source.columns, columns)
                key = _resolve_key(spec, key, columns)
                result.rows_in = source.rows
                batches = _ValidatedBatches(source, spec, columns, key, result)
                key_range = batches.partition_key_range()
                if key_range is not None:
                    result.partitions_created = partitions.ensure_partitions(conn, table, *key_range)
                with conn.transaction():
                    conn.execute(TRANSACTION_SETTINGS)
                    self._write_batches(conn, operation, spec, columns, key, batches, key_range, result)
                    result.seconds = time.perf_counter() - started
                    self._record(conn, result, status="warning" if result.rejected else "ok")
            except Exception as exc:
                result.seconds = time.perf_counter() - started
                self._record_failure(conn, result, exc)
                raise
        log_level = logging.WARNING if result.rejected else logging.INFO
        log.log(log_level, result.summary())
        if result.rejected:
            log.warning("rejected rows of %s (sample of %d): %s", table, len(result.reject_sample),
                        result.reject_sample)
        return result

    def _write_batches(self, conn, operation, spec, columns, key, batches: "_ValidatedBatches", key_range,
                       result: WriteResult) -> None:
        target = sql.Identifier(spec.name)
        if key_range is not None and not spec.sql_checks and self._range_is_empty(conn, spec, key_range,
                                                                                 batches.key_prefix_values()):
            try:
                with conn.transaction():  # a savepoint: the fallback below starts from a clean slate
                    result.inserted = _copy(conn, target, columns, batches)
                result.fast_path = True
                return
            except _FAST_PATH_FALLBACK_ERRORS as exc:
                log.info("fast path into %s not possible (%s); using the staged upsert", spec.name,
                         type(exc).__name__)
                result.inserted = 0
        staging = sql.Identifier(f"krxflow_stage_{uuid.uuid4().hex[:12]}")
        conn.execute(CREATE_STAGING.format(staging=staging, target=target))
        staged = _copy(conn, staging, columns, batches)
        if spec.sql_checks:
            failing = conn.execute(REJECT_FAILING_CHECKS.format(
                staging=staging, columns=identifiers(columns),
                passes=sql.SQL(" AND ").join(sql.SQL("COALESCE({}, true)").format(sql.SQL(c))
                                             for c in spec.sql_checks),
            )).fetchall()
            if failing:
                batches.note_rejects(pd.DataFrame(failing, columns=columns).assign(
                    reason=f"violates a CHECK constraint of {spec.name}"))
                staged -= len(failing)
        if staged == 0:
            return
        conn.execute(ANALYZE.format(table=staging))
        if staged <= INDEX_JOIN_MAX_ROWS:
            conn.execute(PREFER_INDEX_JOINS)
        key_match = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in key)
        update_columns = [c for c in columns if c not in key]
        if operation == "upsert" and update_columns:
            with conn.cursor() as cur:
                cur.execute(UPDATE_FROM_STAGING.format(
                    target=target, staging=staging, key_match=key_match,
                    assignments=sql.SQL(", ").join(sql.SQL("{0} = s.{0}").format(sql.Identifier(c))
                                                   for c in update_columns),
                    target_values=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in update_columns),
                    staged_values=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in update_columns),
                ))
                result.updated = cur.rowcount
        with conn.cursor() as cur:
            cur.execute(template("queries/writer/insert_new_from_staging.sql", target=target, staging=staging,
                                 columns=identifiers(columns), key=identifiers(key), key_match=key_match))
            result.inserted = cur.rowcount
        result.unchanged = staged - result.inserted - result.updated

    @staticmethod
    def _range_is_empty(conn, spec: TableSpec, key_range, prefix: tuple[list[str], list[list]] | None) -> bool:
        """Whether the target holds no row in the incoming partition-key range (of these key prefixes)."""
        names = {"table": sql.Identifier(spec.name), "key": sql.Identifier(spec.policy.key_column)}
        params = {"low": key_range[0], "high": key_range[1]}
        if prefix is None:
            statement = RANGE_HAS_ROWS.format(**names)
        else:
            columns, values = prefix
            statement = template("queries/writer/key_range_has_rows.sql", **names, prefix=identifiers(columns),
                                 prefix_match=sql.SQL(" AND ").join(sql.SQL("t.{0} = p.{0}").format(sql.Identifier(c))
                                                                    for c in columns),
                                 arrays=sql.SQL(", ").join(  # typed as their columns (format_type, from the catalog)
                                     sql.SQL("{}::{}[]").format(sql.Placeholder(f"prefix_{i}"),
                                                                sql.SQL(spec.columns[c].pg_type))
                                     for i, c in enumerate(columns)))
            params.update({f"prefix_{i}": column_values for i, column_values in enumerate(values)})
        return not conn.execute(statement, params).fetchone()[0]

    # ------------------------------------------------------------------ the journal
    def journal(self) -> journal.Journal:
        """The operations journal (``load_stats``) on this hook's Connection and task context."""
        return journal.Journal(self)

    def journal_context(self) -> dict[str, Any]:
        """The task a journal row of this hook names: ``stats_context``, or the running task's."""
        return self.stats_context if self.stats_context is not None else journal.task_context()

    def _record(self, conn, result: WriteResult, status: str, exc: Exception | None = None) -> None:
        """Journal this write on ``conn`` (inside the write's transaction)."""
        if not self.record_stats:
            return
        result.status = status
        result.details = {"fast_path": result.fast_path, "partitions_created": result.partitions_created}
        if result.reject_sample:
            result.details["reject_sample"] = result.reject_sample
        if exc is not None:
            result.fail(exc)
        journal.write_entry(conn, result, self.journal_context())

    def _record_failure(self, conn, result: WriteResult, exc: Exception) -> None:
        if not self.record_stats or conn.closed:
            return
        try:
            with conn.transaction():
                result.inserted = result.updated = result.unchanged = 0
                self._record(conn, result, status=journal.Status.FAILED, exc=exc)
        except (psycopg.Error, BadInputError):  # the table itself may be missing; the original error matters
            log.exception("could not record the failed write of %s in load_stats", result.table)


# ---------------------------------------------------------------------- helpers
def _reusable(conn: psycopg.Connection) -> bool:
    """Open, idle outside a transaction, and nothing waiting on its socket (an idle connection is
    sent nothing unless the server is ending it)."""
    if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return not readable


def _copy(conn: psycopg.Connection, target: sql.Identifier, columns: list[str],
          batches: "_ValidatedBatches") -> int:
    """Stream every validated batch into ``target`` with one COPY; returns the rows sent.

    Binary COPY (:mod:`krxflow.hooks.binary_copy`) when every column has a type it encodes, so the
    server parses nothing; else CSV. Each batch is encoded while the server ingests the previous
    one, so Python and PostgreSQL work side by side, and only one batch is held in memory at a time.
    """
    fields = binary_fields([batches.spec.columns[c] for c in columns])
    statement = (COPY_IN_BINARY if fields else COPY_IN_CSV).format(table=target, columns=identifiers(columns))
    sent = 0
    with conn.cursor() as cur, cur.copy(statement, writer=_BoundedQueueWriter(cur)) as copy:
        if fields:
            copy.write(BINARY_HEADER)
        for table in batches:
            if fields:
                for block in encode_rows(table, fields):
                    copy.write(block)
            else:
                buffer = io.BytesIO()
                pacsv.write_csv(table, buffer, _CSV_OPTIONS)
                copy.write(buffer.getbuffer())
            sent += table.num_rows
        if fields:
            copy.write(BINARY_TRAILER)
    return sent


class _BoundedQueueWriter(QueuedLibpqWriter):
    """psycopg's queued COPY writer (a thread sends while the caller encodes the next batch) with a
    queue of :data:`COPY_QUEUE_BUFFERS` buffers instead of 1,024: a server slower than the encoding
    otherwise let up to ~128 MB of encoded rows pile up in the task (psycopg 3.3's queue, pinned)."""

    def __init__(self, cursor):
        super().__init__(cursor)
        self._queue = Queue(maxsize=COPY_QUEUE_BUFFERS)


class _ValidatedBatches:
    """The input's rows, deduplicated (last key wins) and validated batch by batch, as Arrow tables.

    Each iteration validates afresh and restarts the reject tally, so the fast path's fallback
    (a second pass) counts nothing twice.
    """

    def __init__(self, source: "_Source", spec: TableSpec, columns: list[str], key: list[str],
                 result: WriteResult):
        self.source, self.spec, self.columns, self.key, self.result = source, spec, columns, key, result
        self.keep_last = source.last_of_each_key(key)
        result.duplicates = int((~self.keep_last).sum()) if self.keep_last is not None else 0

    def partition_key_range(self):
        """(low, high) of the partition key over the rows that can be written; None if not partitioned."""
        policy = self.spec.policy
        if policy is None or self.source.rows == 0 or policy.key_column not in self.columns:
            return None
        return writable_key_range(self._kept(policy.key_column), self.spec.columns[policy.key_column], policy)

    def key_prefix_values(self) -> tuple[list[str], list[list]] | None:
        """(columns, values of each column per distinct prefix) of the key columns before the partition
        key, e.g. the tickers of a history load, or (ticker, adjusted) of an indicator load.

        None when the key starts with the partition key or its first column is not text, or when
        there are more than :data:`FAST_PATH_MAX_LEADING_VALUES` distinct prefixes. A later prefix
        column is used only when the input already holds it as booleans or integers (then its values
        need no conversion to be compared); otherwise the prefix stops before it.
        """
        policy = self.spec.policy
        if policy is None or self.key[0] == policy.key_column or self.spec.columns[self.key[0]].kind != "text":
            return None
        end = self.key.index(policy.key_column) if policy.key_column in self.key else len(self.key)
        columns, values = [self.key[0]], {self.key[0]: self._kept(self.key[0]).astype(object)}
        for name in self.key[1:end]:
            kept = self._kept(name)
            if not (pd.api.types.is_bool_dtype(kept) or pd.api.types.is_integer_dtype(kept)):
                break
            columns.append(name)
            values[name] = kept
        prefixes = pd.DataFrame(values).dropna().drop_duplicates()
        if len(prefixes) > FAST_PATH_MAX_LEADING_VALUES:
            return None
        prefixes = prefixes.assign(**{columns[0]: prefixes[columns[0]].astype(str)}).sort_values(columns)
        return columns, [prefixes[c].tolist() for c in columns]

    def _kept(self, column: str) -> pd.Series:
        """One whole column of the rows that will be written (the last of each duplicate key)."""
        values = self.source.column(column)
        return values[self.keep_last] if self.keep_last is not None else values

    def __iter__(self) -> Iterator[pa.Table]:
        self.result.rejected, self.result.reject_sample = 0, []
        for offset, frame in self.source.frames():
            if self.keep_last is not None:
                frame = frame[self.keep_last[offset:offset + len(frame)]]
            checked = validate(frame, self.spec, self.columns, self.key)
            if len(checked.rejected):
                self.note_rejects(checked.rejected)
            if checked.table.num_rows:
                yield checked.table

    def note_rejects(self, rejected: pd.DataFrame) -> None:
        self.result.rejected += len(rejected)
        room = REJECT_SAMPLE_SIZE - len(self.result.reject_sample)
        for row in rejected.head(max(room, 0)).to_dict("records"):
            self.result.reject_sample.append(
                {k: v if isinstance(v, str) else None if pd.isna(v) else str(v) for k, v in row.items()})


def _resolve_columns(spec: TableSpec, given: list[str] | None, requested: Sequence[str] | None) -> list[str]:
    columns = list(requested or given or [])
    if not columns:
        raise BadInputError(f"no columns to write into {spec.name}: pass columns= for tuple rows")
    unknown = [c for c in columns if c not in spec.columns]
    if unknown:
        raise BadInputError(f"{spec.name} has no column(s) {unknown}; it has {spec.writable_columns}")
    generated = [c for c in columns if spec.columns[c].generated]
    if generated:
        raise BadInputError(f"{spec.name}: {generated} are generated and cannot be written")
    if given is not None:
        missing = [c for c in columns if c not in given]
        if missing:
            raise BadInputError(f"the data has no column(s) {missing}")
    return columns


def _resolve_key(spec: TableSpec, key: Sequence[str] | None, columns: list[str]) -> list[str]:
    key = list(key or spec.primary_key)
    if not key:
        raise BadInputError(f"{spec.name} has no primary key: pass key=")
    absent = [k for k in key if k not in columns]
    if absent:
        raise BadInputError(f"key column(s) {absent} are not among the columns written into {spec.name}")
    return key


class _Source:
    """The caller's data as DataFrame batches, whatever form it came in."""

    def __init__(self, rows: int, columns: list[str] | None, frames, keys):
        self.rows, self.columns, self._frames, self._keys = rows, columns, frames, keys

    def column(self, name: str) -> pd.Series:
        """One whole column (for the partition-key range, read before any batch is written)."""
        return self._keys([name])[name]

    @classmethod
    def of(cls, data, columns: Sequence[str] | None, batch_size: int) -> "_Source":
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if isinstance(data, pd.DataFrame):
            frame = data.reset_index(drop=True) if not isinstance(data.index, pd.RangeIndex) else data
            return cls(len(frame), [str(c) for c in frame.columns],
                       lambda: ((i, frame.iloc[i:i + batch_size]) for i in range(0, len(frame), batch_size)),
                       lambda key: frame[key])
        if isinstance(data, pa.Table):
            def arrow_frames() -> Iterator[tuple[int, pd.DataFrame]]:
                for i in range(0, data.num_rows, batch_size):
                    frame = data.slice(i, batch_size).to_pandas(date_as_object=False)
                    frame.index = pd.RangeIndex(i, i + len(frame))
                    yield i, frame
            return cls(data.num_rows, list(data.column_names), arrow_frames,
                       lambda key: data.select(key).to_pandas(date_as_object=False))
        if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
            raise BadInputError(f"cannot write {type(data).__name__}: pass a DataFrame, an Arrow table or rows")
        frame = _rows_to_frame(data, columns)
        return cls.of(frame, columns, batch_size)

    def frames(self) -> Iterator[tuple[int, pd.DataFrame]]:
        return self._frames()

    def last_of_each_key(self, key: list[str]):
        """A boolean array, True for the last row of every key (None when there are no rows)."""
        if self.rows == 0:
            return None
        return (~self._keys(key).duplicated(keep="last")).to_numpy()


def _rows_to_frame(rows: Iterable, columns: Sequence[str] | None) -> pd.DataFrame:
    rows = list(rows)
    if not rows:
        return pd.DataFrame(columns=list(columns or []))
    if isinstance(rows[0], dict):
        frame = pd.DataFrame.from_records(rows)
        return frame[list(columns)] if columns else frame
    if not columns:
        raise BadInputError("tuple rows need columns=[...] to say what each position holds")
    widths = {len(r) for r in rows}
    if widths != {len(columns)}:
        raise BadInputError(f"rows have {sorted(widths)} values but {len(columns)} columns were named")
    return pd.DataFrame.from_records(rows, columns=list(columns))
