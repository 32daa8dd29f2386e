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
CODE_FOLDERS = ("plugins", "dags", "bench", "scripts", "grafana", "tests")


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
