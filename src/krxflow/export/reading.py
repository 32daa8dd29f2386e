"""PostgreSQL rows to Arrow tables, typed from the catalog.

One ``COPY (SELECT …) TO STDOUT (FORMAT csv)`` per relation (PostgreSQL's fastest way out, libpq
buffers, no Python per row), parsed by pyarrow's multi-threaded CSV reader with each column's type
given — never guessed — from the table's catalog (:class:`krxflow.hooks.table_spec.TableSpec`):
``numeric(p, s)`` stays an exact ``decimal128(p, s)``, ``timestamptz`` is read as UTC. Rows are
sorted by the primary key, so the same rows always give the same Parquet bytes (the checksum the
incremental export compares).
"""

from __future__ import annotations

import re

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from krxflow.hooks.table_spec import ColumnSpec, TableSpec
from krxflow.sqlfiles import template

_NUMERIC = re.compile(r"^numeric\((\d+),\s*(\d+)\)$")
_SIMPLE_TYPES = {
    "smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(), "real": pa.float32(),
    "double precision": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(), "text": pa.string(),
    "json": pa.string(), "jsonb": pa.string(), "timestamp without time zone": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
}
_CSV_READ = pacsv.ReadOptions(autogenerate_column_names=True, block_size=1 << 24)
_CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)


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


def _select_list(spec: TableSpec) -> sql.Composed:
    parts = []
    for column in spec.columns.values():
        name = sql.Identifier(column.name)
        if column.pg_type == "timestamp with time zone":  # UTC, without an offset pyarrow would have to parse
            parts.append(sql.SQL("({} AT TIME ZONE 'UTC')").format(name))
        else:
            parts.append(name)
    return sql.SQL(", ").join(parts)


def read_relation(conn: psycopg.Connection, spec: TableSpec, relation: str) -> pa.Table:
    """Every row of ``relation`` (``spec``'s table or one of its partitions), sorted by primary key."""
    target = schema(spec)
    chunks = []
    with conn.cursor() as cur:
        with cur.copy(template("queries/export/copy_rows.sql", columns=_select_list(spec),
                               relation=sql.Identifier(relation))) as copy:
            for chunk in copy:
                chunks.append(bytes(chunk))
    data = b"".join(chunks)
    if not data:
        return target.empty_table()
    convert = pacsv.ConvertOptions(
        column_types={f"f{i}": (pa.timestamp("us") if f.type == pa.timestamp("us", tz="UTC") else f.type)
                      for i, f in enumerate(target)},
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
        true_values=["t"], false_values=["f"])
    table = pacsv.read_csv(pa.py_buffer(data), read_options=_CSV_READ, parse_options=_CSV_PARSE,
                           convert_options=convert)
    del data, chunks
    columns = [table.column(i).cast(field.type) if table.column(i).type != field.type else table.column(i)
               for i, field in enumerate(target)]
    table = pa.Table.from_arrays(columns, schema=target)
    if spec.primary_key:
        table = table.sort_by([(name, "ascending") for name in spec.primary_key])
    return table


def count_rows(conn: psycopg.Connection, relation: str) -> int:
    return conn.execute(template("queries/export/count_rows.sql", relation=sql.Identifier(relation))).fetchone()[0]
