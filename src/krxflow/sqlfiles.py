"""Load the statements kept in ``include/sql/`` as ``psycopg.sql.SQL`` templates.

Statements are written once, as files, with ``{name}`` placeholders for identifiers (filled with
``psycopg.sql.Identifier``) and ``%(name)s`` parameters for values. No SQL is built by string
formatting anywhere in krxflow.
"""

from __future__ import annotations

from functools import lru_cache

from psycopg import sql

from krxflow.settings import sql_dir


@lru_cache(maxsize=None)
def read_text(relative_path: str) -> str:
    """The text of ``include/sql/<relative_path>``, with ``--`` comment lines removed."""
    path = sql_dir() / relative_path
    if not path.is_file():
        raise FileNotFoundError(f"krxflow SQL file not found: {path}")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def template(relative_path: str, **parts: sql.Composable) -> sql.Composed | sql.SQL:
    """The statement in ``include/sql/<relative_path>``, its ``{placeholders}`` filled with ``parts``."""
    statement = sql.SQL(read_text(relative_path))
    return statement.format(**parts) if parts else statement


def identifiers(names) -> sql.Composed:
    """A comma-separated list of quoted identifiers."""
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)
