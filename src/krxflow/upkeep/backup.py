"""Backups of the market database: ``pg_dump -Fc``, checked, rotated, and proven to restore.

* :func:`dump` writes ``krxflow-market-<KST timestamp>.dump`` into the backup directory (first as
  ``.partial``, renamed only once ``pg_restore --list`` reads it back), so a directory listing never
  shows a half-written or unreadable dump as a backup.
* :func:`rotate` deletes dumps older than the retention (30 days), never the newest one.
* :func:`restore_check` restores a dump into a scratch database on the same server and compares
  the row count of every table and materialized view with the counts taken from the very snapshot
  the dump was made from (``pg_export_snapshot`` + ``pg_dump --snapshot``), so writes that happen
  while the dump runs cannot cause false alarms. A materialized view is expected to hold what its
  definition yields in that snapshot, not the rows it stored: pg_dump carries a view's definition
  and a ``REFRESH``, never its rows, so a restore rebuilds it from the restored tables, and the
  stored rows may lag the tables (a load committed since the last refresh, or db_matviews'
  refresh committing while the dump runs). See docs/operations/backups.md.
* pg_dump and pg_restore must be of the server's major version (pg_dump refuses a newer server,
  and a newer pg_dump's output need not restore into an older one): :func:`client_tools` picks
  them from ``$KRXFLOW_PG_BIN``, every ``PATH`` directory (``make run`` and the test session put a
  private server's own bin directory there) and the Debian/RHEL per-version directories, by the
  version they report, or fails naming the server's version and what it found.

Credentials come from the Airflow Connection (``postgres_default``). The password reaches the
client tools only through the ``PGPASSWORD`` environment variable: never argv (visible in ``ps``),
never a file name, never a log line. Failures raise :class:`BackupError` with the tool's message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from krxflow.market_time import KST
from krxflow.journal import Journal, Operation, journaled
from krxflow.settings import POSTGRES_CONN_ID
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

#: Where dumps go unless the Variable / environment variable ``KRXFLOW_BACKUP_DIR`` says otherwise.
BACKUP_DIR_VARIABLE = "KRXFLOW_BACKUP_DIR"
DEFAULT_KEEP_DAYS = 30
FILE_PREFIX = "krxflow-market-"
_FILE_NAME = re.compile(r"^krxflow-market-(?P<stamp>\d{8}T\d{6})\.dump$")
_STAMP = "%Y%m%dT%H%M%S"
#: A directory holding pg_dump and pg_restore for the server, searched before ``PATH``.
PG_BIN_VARIABLE = "KRXFLOW_PG_BIN"
#: Per-version client directories of the Debian/Ubuntu and PGDG RPM packages ({major} filled in).
_VERSIONED_BIN_DIRS = ("/usr/lib/postgresql/{major}/bin", "/usr/pgsql-{major}/bin")
_TOOL_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")
#: Tables every dump must contain (checked in ``pg_restore --list``).
REQUIRED_TABLES = ("stocks", "daily_prices", "daily_prices_adjusted", "load_stats", "schema_migrations")
_TOOL_TIMEOUT = 6 * 3600


class BackupError(RuntimeError):
    """A dump, its check, or a restore check failed."""


@dataclass(frozen=True)
class Target:
    """Where the market database is, from an Airflow Connection. ``repr`` hides the password."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_connection(cls, conn_id: str = POSTGRES_CONN_ID) -> "Target":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        conn = PostgresHook.get_connection(conn_id)
        return cls(host=conn.host or "localhost", port=int(conn.port or 5432), user=conn.login or "postgres",
                   dbname=conn.schema or "postgres", password=conn.password or None)

    def with_database(self, dbname: str) -> "Target":
        return dataclasses.replace(self, dbname=dbname)

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname=self.dbname,
                               password=self.password, autocommit=True, **kwargs)

    def tool_args(self) -> list[str]:
        """Connection arguments for pg_dump/pg_restore: everything but the password."""
        return ["--host", self.host, "--port", str(self.port), "--username", self.user, "--no-password"]

    def tool_env(self) -> dict[str, str]:
        """The environment for the client tools: the password only here."""
        env = dict(os.environ)
        env.pop("PGPASSWORD", None)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


@dataclass
class DumpResult:
    path: Path
    bytes: int
    seconds: float
    toc_entries: int
    #: Row counts in the dump's snapshot, when asked for (materialized views: as a restore rebuilds them).
    counts: dict[str, int] | None = None

    def summary(self) -> str:
        return (f"dumped to {self.path.name}: {self.bytes:,} bytes, {self.toc_entries} catalog entries "
                f"in {self.seconds:.1f}s" + (f", {len(self.counts)} tables counted" if self.counts else ""))


def backup_dir(configured: str | os.PathLike | None = None) -> Path:
    """The backup directory: ``configured`` (a Variable's value), else ``$KRXFLOW_BACKUP_DIR``,
    else ``$AIRFLOW_HOME/backups``."""
    chosen = configured or os.environ.get(BACKUP_DIR_VARIABLE)
    if not chosen:
        chosen = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "backups"
    return Path(chosen)


@dataclass(frozen=True)
class ClientTools:
    """pg_dump and pg_restore from one directory, of the server's major version."""

    pg_dump: str
    pg_restore: str
    major: int


def server_major(target: Target) -> int:
    """The major version of the server ``target`` names (``18`` for 18.6)."""
    try:
        with target.connect(connect_timeout=10) as conn:
            return conn.info.server_version // 10000
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to {target.host}:{target.port}/{target.dbname}: "
                          f"{_scrub(str(exc), target).strip()}") from exc


def _tool_major(path: str) -> int | None:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    match = _TOOL_VERSION.search(done.stdout)
    return int(match.group(1)) if done.returncode == 0 and match else None


def client_tools(major: int, environ: dict[str, str] | None = None) -> ClientTools:
    """pg_dump and pg_restore of PostgreSQL ``major``, from the first directory holding both.

    Searched in order: ``$KRXFLOW_PG_BIN``, every ``PATH`` directory, then the per-version
    directories of the Debian and PGDG packages. Each candidate is asked its version: the first
    directory whose pg_dump and pg_restore both report ``major`` wins. Raises :class:`BackupError`
    naming the server's version and every client found otherwise.
    """
    env = os.environ if environ is None else environ
    directories = [env.get(PG_BIN_VARIABLE, ""), *env.get("PATH", "").split(os.pathsep),
                   *(pattern.format(major=major) for pattern in _VERSIONED_BIN_DIRS)]
    seen, found = set(), []
    for directory in filter(None, directories):
        pg_dump, pg_restore = (shutil.which(name, path=directory) for name in ("pg_dump", "pg_restore"))
        if not (pg_dump and pg_restore) or os.path.realpath(pg_dump) in seen:
            continue
        seen.add(os.path.realpath(pg_dump))
        versions = _tool_major(pg_dump), _tool_major(pg_restore)
        if versions == (major, major):
            return ClientTools(pg_dump, pg_restore, major)
        found.append(f"{pg_dump} ({versions[0]}), {pg_restore} ({versions[1]})")
    what = "; ".join(found) if found else "none"
    raise BackupError(
        f"no pg_dump/pg_restore of PostgreSQL {major} (the server's major version) found; clients found: "
        f"{what}. Install PostgreSQL {major}'s client tools (e.g. the postgresql-client-{major} package) "
        f"or set {PG_BIN_VARIABLE} to their bin directory")


def tools_for(target: Target) -> ClientTools:
    """The client tools matching the server ``target`` names."""
    return client_tools(server_major(target))


def _run(args: list[str], target: Target, what: str) -> subprocess.CompletedProcess:
    """Run a client tool; a non-zero exit is a BackupError carrying its (password-free) stderr."""
    log.info("running %s", " ".join(args))
    done = subprocess.run(args, env=target.tool_env(), capture_output=True, text=True, timeout=_TOOL_TIMEOUT)
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {_said(_scrub(done.stderr, target))}")
    return done


#: A tool's stderr line in a BackupError is cut to this many characters: pg_dump 18 follows its
#: ``error:`` line with the failed query, one LOCK TABLE of every partition (tens of kilobytes).
_LINE_CHARS = 400


def _said(stderr: str) -> str:
    """A failed tool's stderr for its BackupError: every line (the ``error:`` one says why), each cut
    to ``_LINE_CHARS``, the whole to its last 2,000 characters."""
    lines = [line if len(line) <= _LINE_CHARS else line[:_LINE_CHARS] + " …" for line in stderr.strip().splitlines()]
    return "\n".join(lines)[-2000:]


def _scrub(text: str, target: Target) -> str:
    return text.replace(target.password, "***") if target.password else text


def count_rows(conn: psycopg.Connection, *, views_as_rebuilt: bool = False) -> dict[str, int]:
    """Exact row counts of every table, leaf partition and populated materialized view of the schema.

    :param views_as_rebuilt: count a materialized view as a restore rebuilds it (its definition over
        the tables this transaction sees) rather than the rows it stores: the expectation for a dump
        made in this transaction's snapshot. Unpopulated views are left out either way (pg_dump
        restores them unpopulated).
    """
    counts = {}
    relations = conn.execute(template("queries/upkeep/countable_relations.sql")).fetchall()
    for name, is_matview, populated, definition in relations:
        if is_matview and not populated:
            continue
        if is_matview and views_as_rebuilt:
            query = template("queries/upkeep/count_matview_rebuilt.sql", definition=sql.SQL(definition))
        else:
            query = template("queries/upkeep/count_rows.sql", table=sql.Identifier(name))
        counts[name] = conn.execute(query).fetchone()[0]
    return counts


def list_dump(path: Path, target: Target, tools: ClientTools | None = None) -> list[str]:
    """``pg_restore --list`` of a dump (its table of contents); fails unless it is a complete
    custom-format archive holding the core tables."""
    tools = tools or tools_for(target)
    listing = _run([tools.pg_restore, "--list", str(path)], target, f"pg_restore --list {path.name}").stdout
    if "Format: CUSTOM" not in listing:
        raise BackupError(f"{path.name} is not a custom-format dump")
    entries = [line for line in listing.splitlines() if line and not line.startswith(";")]
    tables = {m.group(1) for m in re.finditer(r"^\d+; \d+ \d+ TABLE \S+ (\S+) ", listing, re.MULTILINE)}
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise BackupError(f"{path.name} lacks table(s): {', '.join(missing)}")
    return entries


def dump(target: Target, directory: Path, *, now: dt.datetime | None = None, with_counts: bool = False,
         journal: Journal | None = None) -> DumpResult:
    """``pg_dump -Fc`` the market database into ``directory`` and check it with ``pg_restore --list``.

    :param with_counts: also count every table's rows in the dump's own snapshot (for a later
        :func:`restore_check`); costs a scan of each table.
    :param journal: journal the dump (table ``backup``, operation ``pg_dump``), failed or not.
    """
    with journaled(journal, "backup", Operation.PG_DUMP, directory=str(directory)) as entry:
        result = _dump(target, directory, now=now, with_counts=with_counts)
        entry.rows_in = sum((result.counts or {}).values())
        entry.details = {"file": str(result.path), "bytes": result.bytes, "toc_entries": result.toc_entries,
                         "restore_check_due": with_counts}
    return result


def _dump(target: Target, directory: Path, *, now: dt.datetime | None, with_counts: bool) -> DumpResult:
    tools = tools_for(target)
    started = time.perf_counter()
    now = (now or dt.datetime.now(KST)).astimezone(KST)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = directory / f"{FILE_PREFIX}{now.strftime(_STAMP)}.dump"
    if final.exists():
        raise BackupError(f"{final.name} already exists; refusing to overwrite a backup")
    partial = final.with_name(final.name + ".partial")
    args = [tools.pg_dump, "--format=custom", "--file", str(partial), *target.tool_args()]
    counts = None
    try:
        if with_counts:
            counts = _dump_with_snapshot_counts(args, target)
        else:
            _run([*args, "--dbname", target.dbname], target, "pg_dump")
        entries = list_dump(partial, target, tools)
        partial.rename(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    result = DumpResult(final, final.stat().st_size, time.perf_counter() - started, len(entries), counts)
    log.info(result.summary())
    return result


def _dump_with_snapshot_counts(args: list[str], target: Target) -> dict[str, int]:
    """Run pg_dump on a snapshot exported by a REPEATABLE READ transaction that counts the rows
    (materialized views as the restore will rebuild them, see :func:`count_rows`)."""
    with target.connect() as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute(template("queries/upkeep/export_snapshot.sql")).fetchone()[0]
        outcome: dict[str, object] = {}

        def run_dump() -> None:
            try:
                outcome["done"] = _run([*args, "--snapshot", snapshot, "--dbname", target.dbname], target, "pg_dump")
            except BaseException as exc:  # re-raised in the calling thread
                outcome["error"] = exc

        worker = threading.Thread(target=run_dump, name="pg_dump", daemon=True)
        worker.start()
        try:
            counts = count_rows(conn, views_as_rebuilt=True)
        finally:
            worker.join()  # the snapshot must outlive pg_dump's start: keep the transaction open
            conn.execute("COMMIT")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return counts


def rotate(directory: Path, *, keep_days: int = DEFAULT_KEEP_DAYS, now: dt.datetime | None = None) -> list[Path]:
    """Delete dumps (by the KST time in their name) older than ``keep_days``; the newest always stays.

    Only files named like krxflow's dumps are touched; stale ``.partial`` files of crashed runs
    older than a day are removed too. Returns the paths deleted.
    """
    if keep_days < 1:
        raise ValueError(f"keep_days must be >= 1, got {keep_days}")
    now = (now or dt.datetime.now(KST)).astimezone(KST)
    if not directory.is_dir():
        return []
    dumps = []
    for path in directory.iterdir():
        match = _FILE_NAME.match(path.name)
        if match:
            taken = dt.datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=KST)
            dumps.append((taken, path))
        elif path.name.startswith(FILE_PREFIX) and path.name.endswith(".partial"):
            if now.timestamp() - path.stat().st_mtime > 86400:
                path.unlink(missing_ok=True)
                log.info("deleted stale partial dump %s", path.name)
    dumps.sort()
    cutoff = now - dt.timedelta(days=keep_days)
    deleted = []
    for taken, path in dumps[:-1]:  # never the newest
        if taken < cutoff:
            path.unlink()
            deleted.append(path)
            log.info("deleted %s (older than %d days)", path.name, keep_days)
    return deleted


def newest_dump(directory: Path) -> Path | None:
    found = sorted(p for p in directory.glob(f"{FILE_PREFIX}*.dump") if _FILE_NAME.match(p.name)) \
        if directory.is_dir() else []
    return found[-1] if found else None


@dataclass
class RestoreResult:
    path: Path
    database: str
    tables: int
    rows: int
    seconds: float
    mismatches: dict[str, tuple[int | None, int | None]]

    def summary(self) -> str:
        state = "OK" if not self.mismatches else f"{len(self.mismatches)} MISMATCH(ES)"
        return (f"restore check of {self.path.name} into {self.database}: {self.tables} tables, "
                f"{self.rows:,} rows, {state} in {self.seconds:.1f}s")


def restore_check(target: Target, path: Path, expected: dict[str, int], *, keep_database: bool = False,
                  journal: Journal | None = None) -> RestoreResult:
    """Restore ``path`` into a new scratch database and compare its row counts with ``expected``.

    Raises :class:`BackupError` when the restore fails or any table's count differs (or a table is
    missing on either side). The scratch database is dropped afterwards (unless ``keep_database``).
    With ``journal``, the check is journaled (table ``backup``, operation ``restore_check``).
    """
    with journaled(journal, "backup", Operation.RESTORE_CHECK, file=str(path)) as entry:
        result = _restore_check(target, path, expected, keep_database=keep_database)
        entry.rows_in = result.rows
        entry.details["tables"] = result.tables
    return result


def _restore_check(target: Target, path: Path, expected: dict[str, int], *, keep_database: bool) -> RestoreResult:
    if not expected:
        raise BackupError("a restore check needs the source's row counts (dump with with_counts=True)")
    tools = tools_for(target)
    started = time.perf_counter()
    scratch = f"krxflow_restore_check_{dt.datetime.now(KST).strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(3)}"
    with target.connect() as admin:
        admin.execute(template("queries/upkeep/create_database.sql", database=sql.Identifier(scratch)))
    try:
        _run([tools.pg_restore, "--exit-on-error", "--no-owner", "--no-privileges", *target.tool_args(),
              "--dbname", scratch, str(path)], target, f"pg_restore of {path.name}")
        with target.with_database(scratch).connect() as restored:
            got = count_rows(restored)
    finally:
        if not keep_database:
            with target.connect() as admin:
                admin.execute(template("queries/upkeep/drop_database.sql", database=sql.Identifier(scratch)))
    mismatches = {name: (expected.get(name), got.get(name))
                  for name in sorted(set(expected) | set(got)) if expected.get(name) != got.get(name)}
    result = RestoreResult(path, scratch, len(got), sum(got.values()), time.perf_counter() - started, mismatches)
    if mismatches:
        shown = ", ".join(f"{name}: source {a} restored {b}" for name, (a, b) in list(mismatches.items())[:20])
        raise BackupError(f"{result.summary()}: {shown}")
    log.info(result.summary())
    return result
