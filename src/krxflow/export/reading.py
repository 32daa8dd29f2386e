"""PostgreSQL rows to Arrow tables, typed from the catalog, read by parallel connections in one snapshot.

**How rows are read.** ``SELECT <columns> FROM <relation>`` through the ADBC PostgreSQL driver
(``adbc-driver-postgresql``), which fetches with binary ``COPY`` and decodes it into Arrow arrays
in C++: no Python per row, no text to parse. (psycopg's ``COPY`` yields one Python object per row
— measured at ~0.15 M rows/s of CSV on the bench machine, slower than the server sends them.)
Each column is then given the type the catalog says
(:class:`krxflow.hooks.table_spec.TableSpec`): ``numeric(p, s)`` an exact ``decimal128(p, s)``
(the driver hands numerics over as text), ``timestamptz`` UTC. Rows are sorted by the primary
key, so the same rows always give the same Parquet bytes (the checksum the incremental export
compares).

**One snapshot, several readers.** The export's own transaction (REPEATABLE READ) exports its
snapshot (``pg_export_snapshot()``); every reader connection imports it before its first read
(``SET TRANSACTION SNAPSHOT``), as ``pg_dump --jobs`` does: every reader sees exactly the rows the
export's transaction sees, however many there are. Each reader is one PostgreSQL backend encoding
``COPY`` and one thread decoding it (the driver and Arrow release the GIL):
:data:`READERS` of them use both cores of a small machine.
"""

from __future__ import annotations

import contextlib
import queue
import re
from collections.abc import Iterator

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.conninfo import make_conninfo

from krxflow.hooks.table_spec import ColumnSpec, TableSpec
from krxflow.sqlfiles import identifiers, template

#: Reader connections of an export (threads, each with its own PostgreSQL backend).
READERS = 2
#: A reader's transaction: the snapshot it imports needs REPEATABLE READ; it writes nothing.
READ_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"

_NUMERIC = re.compile(r"^numeric\((\d+),\s*(\d+)\)$")
_SIMPLE_TYPES = {
    "smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(), "real": pa.float32(),
    "double precision": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(), "text": pa.string(),
    "json": pa.string(), "jsonb": pa.string(), "timestamp without time zone": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
}


def arrow_type(column: ColumnSpec) -> pa.DataType:
    """The Arrow type a column is exported as."""
    numeric = _NUMERIC.match(column.pg_type)
    if numeric:
        return pa.decimal128(int(numeric[1]), int(numeric[2]))
    if column.pg_type.startswith(("character varying", "character(")):
        return pa.string()
    return _SIMPLE_TYPES.get(column.pg_type, pa.string())


def schema(spec: TableSpec) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c), nullable=not c.not_null) for c in spec.columns.values()])


def _typed(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """``column`` as the driver gave it, as ``target`` (numeric and json arrive as text extension types)."""
    if isinstance(column.type, pa.BaseExtensionType):
        column = pa.chunked_array([chunk.storage for chunk in column.chunks], type=column.type.storage_type)
    return column if column.type == target else column.cast(target)


class Readers:
    """Reader connections that all see the snapshot of one transaction; each used by one thread at a time."""

    def __init__(self, conn: psycopg.Connection, idle: "queue.Queue"):
        self.conn = conn  # the exporting transaction's connection: composes the queries
        self._idle = idle

    def read(self, spec: TableSpec, relation: str) -> pa.Table:
        """Every row of ``relation`` (``spec``'s table or one of its partitions), sorted by primary key."""
        target = schema(spec)
        query = template("queries/export/select_rows.sql", relation=sql.Identifier(relation),
                         columns=identifiers(target.names))
        text = query.as_string(self.conn)
        reader = self._idle.get()
        try:
            with reader.cursor() as cur:
                cur.execute(text)
                table = cur.fetch_arrow_table()
        finally:
            self._idle.put(reader)
        if table.num_rows == 0:
            return target.empty_table()
        columns = [_typed(table.column(i), field.type) for i, field in enumerate(target)]
        table = pa.Table.from_arrays(columns, schema=target)
        if spec.primary_key:
            table = table.sort_by([(name, "ascending") for name in spec.primary_key])
        return table


class ReaderPool:
    """Reader connections kept open across snapshots: each :meth:`snapshot` re-imports one.

    Opening an ADBC connection costs a catalog load (the driver reads ``pg_type`` and
    ``pg_attribute`` whole), which grows with the number of relations: ~0.3 s in a database with
    5,700 relations and ~3,100 partitions, more on a loaded machine. ``db_retention`` archives many
    partitions one transaction each, so it opens its readers once (:class:`~krxflow.export.exporter.PartitionArchiver`).
    """

    def __init__(self, conn: psycopg.Connection, count: int = READERS):
        self._conninfo = make_conninfo("", **conn.info.get_parameters(), password=conn.info.password or "")
        self._count = count
        self._opened: list = []

    def __enter__(self) -> "ReaderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for reader in self._opened:
            with contextlib.suppress(Exception):
                reader.rollback()
            with contextlib.suppress(Exception):
                reader.close()
        self._opened.clear()

    @contextlib.contextmanager
    def snapshot(self, conn: psycopg.Connection) -> Iterator[Readers]:
        """The pool's readers, each in a transaction that imported ``conn``'s snapshot; rolled back on exit.

        ``conn`` must be inside a transaction (the export's REPEATABLE READ one, or the transaction
        of ``db_retention`` that archives and drops a locked partition).
        """
        import adbc_driver_postgresql.dbapi as adbc

        snapshot = conn.execute(template("queries/export/export_snapshot.sql")).fetchone()[0]
        importing = template("queries/export/import_snapshot.sql", snapshot=sql.Literal(snapshot)).as_string(conn)
        while len(self._opened) < self._count:
            self._opened.append(adbc.connect(self._conninfo))  # autocommit off: its reads share one transaction
        idle: queue.Queue = queue.Queue()
        try:
            for reader in self._opened:
                with reader.cursor() as cur:
                    cur.execute(READ_SNAPSHOT)
                    cur.execute(importing)
                idle.put(reader)
            yield Readers(conn, idle)
        finally:
            for reader in list(self._opened):
                try:
                    reader.rollback()
                except Exception:  # a reader that cannot end its transaction is not reused
                    with contextlib.suppress(Exception):
                        reader.close()
                    self._opened.remove(reader)


@contextlib.contextmanager
def snapshot_readers(conn: psycopg.Connection, count: int = READERS) -> Iterator[Readers]:
    """``count`` reader connections that see exactly what ``conn``'s open transaction sees.

    ``conn`` must be inside a transaction; the readers are closed on exit (one snapshot: the
    export's; :class:`ReaderPool` keeps them for several).
    """
    with ReaderPool(conn, count) as pool, pool.snapshot(conn) as readers:
        yield readers


def count_rows(conn: psycopg.Connection, relation: str) -> int:
    return conn.execute(template("queries/export/count_rows.sql", relation=sql.Identifier(relation))).fetchone()[0]
