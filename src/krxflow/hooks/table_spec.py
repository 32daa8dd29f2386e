"""What the writer needs to know about a target table, read once from the catalog.

The schema in ``include/sql/migrations`` is the single source of truth for what a valid row is:
column types, NOT NULL, numeric precision, primary key, CHECK constraints and the partitioning
policy all come from PostgreSQL itself, so a migration that tightens a column tightens the
writer's validation with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg

from krxflow.db.partitions import Policy, get_policy
from krxflow.sqlfiles import template

# CHECK (col >= n), CHECK (col <= n) and their conjunctions on one column, as pg_get_constraintdef
# prints them — ((volume >= 0)), ((close >= (0)::numeric)), ((delta > '-5'::integer)),
# (((rsi14 >= (0)::double precision) AND (rsi14 <= (100)::double precision))) from BETWEEN — are
# enforced row by row in Python, before COPY (so the writer's fast path stays open); any other
# CHECK is evaluated by PostgreSQL itself on the staged rows.
_BOUND = re.compile(r"^\(?(?P<column>[a-z_][a-z0-9_]*) (?P<op>>=|>|<=|<) \(?'?(?P<bound>-?\d+)'?\)?"
                    r"(?:::(?:numeric|integer|bigint|smallint|double precision|real))?\)?$")


def _simple_bounds(definition: str) -> tuple[str, dict] | None:
    """(column, ColumnSpec bound fields) of a CHECK made of integer bounds on one column, else None."""
    body = definition[len("CHECK "):] if definition.startswith("CHECK ") else definition
    while body.startswith("((") and body.endswith("))"):
        body = body[1:-1]
    column, fields = None, {}
    for part in body.split(" AND "):
        match = _BOUND.match(part.strip())
        if match is None or column not in (None, match["column"]):
            return None
        column, bound, op = match["column"], int(match["bound"]), match["op"]
        side = "lower" if op.startswith(">") else "upper"
        if f"{side}_bound" in fields:
            return None
        fields[f"{side}_bound"], fields[f"{side}_inclusive"] = bound, op.endswith("=")
    return column, fields


class UnknownTableError(LookupError):
    """The target table does not exist in the connection's schema."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    pg_type: str
    not_null: bool
    generated: bool
    numeric_precision: int | None
    numeric_scale: int | None
    has_default: bool
    lower_bound: int | None = None  # from CHECK (col >= n), or (col > n) with lower_inclusive False
    lower_inclusive: bool = True
    upper_bound: int | None = None  # from CHECK (col <= n), or (col < n) with upper_inclusive False
    upper_inclusive: bool = True

    @property
    def kind(self) -> str:
        """A coarse type family the validator converts to."""
        t = self.pg_type
        if t in ("smallint", "integer", "bigint"):
            return "integer"
        if t.startswith("numeric") or t in ("real", "double precision"):
            return "numeric"
        if t == "date":
            return "date"
        if t.startswith("timestamp"):
            return "timestamp"
        if t == "boolean":
            return "boolean"
        if t in ("json", "jsonb"):
            return "json"
        return "text"

    @property
    def integer_range(self) -> tuple[int, int]:
        return {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1)}.get(
            self.pg_type, (-(2**63), 2**63 - 1)
        )


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: dict[str, ColumnSpec]
    primary_key: tuple[str, ...]
    sql_checks: tuple[str, ...] = field(default_factory=tuple)
    policy: Policy | None = None

    @property
    def writable_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if not c.generated]

    @classmethod
    def load(cls, conn: psycopg.Connection, table: str) -> "TableSpec":
        rows = conn.execute(template("queries/writer/table_columns.sql"), {"table": table}).fetchall()
        if not rows:
            raise UnknownTableError(f"table {table!r} does not exist (did you run `python -m krxflow.db migrate`?)")
        columns = {r[0]: ColumnSpec(*r) for r in rows}
        primary_key = tuple(r[0] for r in conn.execute(template("queries/writer/primary_key.sql"),
                                                        {"table": table}).fetchall())
        sql_checks = []
        for _, definition in conn.execute(template("queries/writer/check_constraints.sql"), {"table": table}):
            simple = _simple_bounds(definition)
            if simple and simple[0] in columns:
                col = columns[simple[0]]
                columns[col.name] = ColumnSpec(**{**col.__dict__, **simple[1]})
            else:
                sql_checks.append(definition[len("CHECK "):] if definition.startswith("CHECK ") else definition)
        return cls(table, columns, primary_key, tuple(sql_checks), get_policy(conn, table))
