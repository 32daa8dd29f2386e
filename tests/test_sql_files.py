"""The SQL-file policy: every statement file a module names exists, and every file is named.

Queries live in ``include/sql/queries`` (migrations in ``include/sql/migrations`` are found by the
migration runner, not by name). A module names a file with a string literal; an f-string such as
``f"queries/reports/quality_{report.method}.sql"`` names every file its pattern matches.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "include" / "sql"
NAMED = re.compile(r"""["'](queries/[^"'\s]+?\.sql)["']""")
CODE_FOLDERS = ("src", "dags", "bench", "scripts", "grafana", "tests")


def _named_files() -> dict[str, str]:
    """``pattern -> the module that names it`` (placeholders of f-strings become ``*``)."""
    named = {}
    for folder in CODE_FOLDERS:
        for module in (ROOT / folder).rglob("*.py"):
            for match in NAMED.finditer(module.read_text(encoding="utf-8")):
                named[re.sub(r"\{[^}]*\}", "*", match.group(1))] = str(module.relative_to(ROOT))
    return named


def _query_files() -> set[str]:
    return {str(path.relative_to(QUERIES)) for path in (QUERIES / "queries").rglob("*.sql")}


def test_every_named_sql_file_exists():
    files = _query_files()
    missing = {pattern: module for pattern, module in _named_files().items()
               if not any(fnmatch.fnmatch(name, pattern) for name in files)}
    assert not missing, f"named but not in include/sql: {missing}"


def test_every_sql_file_is_named_somewhere():
    patterns = list(_named_files())
    orphans = sorted(name for name in _query_files() if not any(fnmatch.fnmatch(name, p) for p in patterns))
    assert not orphans, f"SQL files no module uses (delete them or use them): {orphans}"


def test_the_reference_scan_sees_the_forms_modules_use():
    """The scan itself finds plain names and f-string patterns (so the two tests above can fail)."""
    named = _named_files()
    assert "queries/journal/record_entry.sql" in named
    assert "queries/reports/quality_*.sql" in named


def _sql_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.lstrip().startswith("--"))


def test_the_writers_short_fragments_are_named_constants_not_files():
    """The writer keeps files only for real queries; its ≤ 3-line fragments are psycopg.sql constants."""
    from psycopg import sql

    from krxflow.hooks import batched_postgres

    short = sorted(str(p.relative_to(QUERIES)) for p in (QUERIES / "queries" / "writer").glob("*.sql")
                   if _sql_lines(p) <= 3)
    assert not short, f"fragments of the writer kept as files: {short}"
    fragments = {name: value for name, value in vars(batched_postgres).items()
                 if name.isupper() and isinstance(value, sql.SQL)}
    assert {"TRANSACTION_SETTINGS", "CREATE_STAGING", "UPDATE_FROM_STAGING", "COPY_IN_BINARY"} <= set(fragments)
    # each fragment is at most three lines and fills its placeholders through psycopg.sql
    assert all(value.as_string(None).count("\n") < 3 for value in fragments.values())
    filled = batched_postgres.CREATE_STAGING.format(staging=sql.Identifier("s x"), target=sql.Identifier("t"))
    assert filled.as_string(None) == 'CREATE TEMP TABLE "s x" (LIKE "t" INCLUDING DEFAULTS) ON COMMIT DROP'
