"""Versioned schema migrations from ``include/sql/migrations``.

Each file ``NNNN_description.sql`` is applied once, in order of its number, inside its own
transaction, and recorded in ``schema_migrations`` with a checksum. Running ``migrate`` again
applies nothing; a file edited after it was applied is an error (write a new migration instead).
A session-level advisory lock keeps two processes (say, the init container and a test) from
migrating at the same time.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from krxflow.settings import sql_dir

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6B7278666C6F77  # "krxflow"

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration file is malformed, was changed after it was applied, or failed to apply."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def discover(folder: Path | None = None) -> list[Migration]:
    """The migration files in version order; a badly named or duplicated version is an error."""
    folder = folder or sql_dir() / "migrations"
    found: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake_case.sql")
        version = match["version"]
        if version in found:
            raise MigrationError(f"two migrations share version {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, match["name"], path)
    return [found[v] for v in sorted(found)]


def applied(conn: psycopg.Connection) -> dict[str, str]:
    """version -> checksum of every migration recorded in the database."""
    with conn.transaction():
        conn.execute(_BOOKKEEPING)
    return dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())


def migrate(conn: psycopg.Connection, folder: Path | None = None) -> list[str]:
    """Apply every pending migration; returns the versions applied (empty when up to date)."""
    migrations = discover(folder)
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        done = applied(conn)
        newly_applied = []
        for migration in migrations:
            recorded = done.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.path.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            log.info("applying migration %s", migration.path.name)
            try:
                with conn.transaction():
                    conn.execute(migration.text)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"migration {migration.path.name} failed: {exc}") from exc
            newly_applied.append(migration.version)
        return newly_applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
