"""The incremental, atomic export of the market database to Parquet, and the archive before retention.

**What is read again.** Each *unit* (a partition, or a whole small table: see
:mod:`krxflow.export.datasets`) has a *fingerprint* read from the catalog without touching its
rows (``queries/export/fingerprints.sql``): the relation's file node and PostgreSQL's cumulative
insert/update/delete counters for it. A unit whose fingerprint equals the one the manifest stored
is not read at all; a nightly run after one new session reads one month of each table.

**What is rewritten.** A unit that is read is encoded to Parquet (zstd, rows sorted by primary key:
the same rows always give the same bytes) and its SHA-256 compared with the manifest's: a file
whose bytes did not change is not written. A rerun therefore writes nothing — the fingerprints
alone already say so — and even a unit read again for nothing (statistics reset, a write that
changed nothing) rewrites no file.

The counters are PostgreSQL's activity statistics, which a writing session reports when its
transaction ends and it goes idle (within a second) or disconnects; the Asset events that trigger
``krx_export`` come after the loading task ended, and the nightly run catches anything later.

**Atomic.** All new files are first written under temporary names (``.<name>.<run>.tmp``, which
no ``*.parquet`` glob matches); only when every one is written are they renamed into place, then
the manifest is replaced the same way. A failure while writing (a full disk, an unreachable
bucket) deletes the temporary files and raises :class:`ExportError`: the previous files and
manifest are untouched. Every read happens in one REPEATABLE READ snapshot, so the files of one
run agree with each other; ``as_of`` is that snapshot's time.

**Retention.** :class:`PartitionArchiver` exports one partition, reads the file back and checks its
rows (count, and every value) against PostgreSQL, inside the transaction that then drops it
(``db_retention``; one reader connection for the whole run); a failed check keeps the partition.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from psycopg import sql

from krxflow.db.partitions import Partition, list_partitions
from krxflow.export import manifest as manifests
from krxflow.export.datasets import DATASETS, Dataset, for_table, month_dir
from krxflow.export.destination import Destination
from krxflow.export.reading import READ_SNAPSHOT, READERS, ReaderPool, Readers, count_rows, schema, snapshot_readers
from krxflow.hooks.table_spec import TableSpec
from krxflow.journal import Journal, Operation, journaled
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

#: zstd level 1 with dictionaries for text and date columns only (tickers, investor types, a month's
#: sessions): a month of investor trading (580 k rows) 11.7 MB in ~0.3 s, against 12.9 MB in ~0.3-0.8 s
#: at level 3 with dictionaries on every column (prices and volumes are rarely repeated).
ZSTD_LEVEL = 1
ROW_GROUP_ROWS = 1_000_000
#: Units read and encoded ahead of the one being staged, per reader (bounds the bytes held in memory).
READ_AHEAD = 2


class ExportError(RuntimeError):
    """The export could not be written; the previous files and manifest are as they were."""


@dataclass
class Unit:
    """What change is detected on: a partition, or a whole table."""

    relation: str
    lower: dt.date | None = None
    fingerprint: dict = field(default_factory=dict)


@dataclass
class ExportReport:
    destination: str
    as_of: str | None = None
    units_read: int = 0
    units_skipped: int = 0
    rows_read: int = 0
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged_files: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    manifest_written: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"export to {self.destination} (as of {self.as_of}): {self.units_read} unit(s) read, "
                f"{self.units_skipped} unchanged by fingerprint; {len(self.written)} file(s) written "
                f"({self.rows_written} rows, {self.bytes_written / 1e6:.1f} MB), {self.unchanged_files} read but "
                f"identical, {len(self.removed)} removed; manifest {'written' if self.manifest_written else 'unchanged'}"
                f" in {self.seconds:.1f} s")


def encode(table: pa.Table) -> pa.Buffer:
    """The Parquet bytes of ``table`` (zstd, see :data:`ZSTD_LEVEL`; deterministic for the same rows). Decimals of up to 18
    digits are stored as INT64 (Parquet's DECIMAL logical type over an integer): smaller than
    fixed-length bytes, and read back as the same ``decimal128``."""
    sink = pa.BufferOutputStream()
    repeated = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_date32(f.type)]
    pq.write_table(table, sink, compression="zstd", compression_level=ZSTD_LEVEL, row_group_size=ROW_GROUP_ROWS,
                   use_dictionary=repeated, store_schema=True, store_decimal_as_integer=True)
    return sink.getvalue()


def _date_range(table: pa.Table, column: str | None) -> tuple[str | None, str | None]:
    if column is None or table.num_rows == 0:
        return None, None
    low, high = pc.min_max(table.column(column)).values()
    as_text = lambda v: v.as_py().isoformat() if v.is_valid else None  # noqa: E731
    return as_text(low), as_text(high)


def _schema_entry(table_schema: pa.Schema) -> list[dict]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in table_schema]


def _clear(exc: OSError, destination: Destination) -> str:
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc):
        return f"no space left on the export destination {destination.url} ({exc})"
    return f"could not write to the export destination {destination.url}: {exc}"


class _Staging:
    """New files under temporary names until :meth:`commit` renames them all into place."""

    def __init__(self, destination: Destination):
        self.destination = destination
        self.token = uuid.uuid4().hex[:12]
        self.staged: list[tuple[str, str]] = []
        self.removals: list[str] = []

    def stage(self, relative: str, payload: pa.Buffer | bytes) -> None:
        final = self.destination.path(relative)
        folder, _, name = final.rpartition("/")
        temporary = f"{folder}/.{name}.{self.token}.tmp"
        filesystem = self.destination.filesystem
        filesystem.create_dir(folder, recursive=True)
        self.staged.append((temporary, final))
        with filesystem.open_output_stream(temporary) as out:
            out.write(payload)

    def remove(self, relative: str) -> None:
        self.removals.append(self.destination.path(relative))

    def commit(self) -> None:
        filesystem = self.destination.filesystem
        for temporary, final in self.staged:
            filesystem.move(temporary, final)
        for path in self.removals:
            try:
                filesystem.delete_file(path)
            except FileNotFoundError:
                pass

    def abort(self) -> None:
        for temporary, _ in self.staged:
            try:
                self.destination.filesystem.delete_file(temporary)
            except OSError:  # already gone, or the destination is what failed
                pass


def _fingerprints(conn: psycopg.Connection, relations: list[str]) -> dict[str, dict]:
    rows = conn.execute(template("queries/export/fingerprints.sql"), {"relations": relations}).fetchall()
    return {r[0]: {"relation": r[0], "filenode": int(r[1]), "inserted": int(r[2]), "updated": int(r[3]),
                   "deleted": int(r[4]), "stats_epoch": r[5]} for r in rows}


def units(conn: psycopg.Connection, dataset: Dataset, spec: TableSpec) -> list[Unit]:
    """The units of one dataset with their current fingerprints."""
    if spec.policy is not None:
        found = [Unit(p.name, p.lower) for p in list_partitions(conn, dataset.table)]
    else:
        found = [Unit(dataset.table)]
    prints = _fingerprints(conn, [u.relation for u in found])
    for unit in found:
        unit.fingerprint = prints.get(unit.relation, {})
    return found


def _files_of_unit(dataset: Dataset, spec: TableSpec, unit: Unit, table: pa.Table) -> list[tuple[str, pa.Table]]:
    """``(relative path, rows)`` of every file a unit's rows go to (none for no rows)."""
    if table.num_rows == 0:
        return []
    if spec.policy is not None:  # one partition, one file, in the month of its lower bound
        return [(f"{month_dir(dataset.name, unit.lower)}/{unit.relation}.parquet", table)]
    if dataset.date_column is None:
        return [(dataset.single_file(), table)]
    dates = table.column(dataset.date_column)
    keys = pc.add(pc.multiply(pc.year(dates), 100), pc.month(dates))
    files = []
    for key in sorted(pc.unique(keys).to_pylist()):
        part = table.filter(pc.equal(keys, key))
        files.append((f"{month_dir(dataset.name, dt.date(key // 100, key % 100, 1))}/{dataset.name}.parquet", part))
    return files


@dataclass
class _Read:
    """A unit to read again: its dataset, table spec, and the manifest's files of it."""

    dataset: Dataset
    spec: TableSpec
    unit: Unit
    previous: dict

    @property
    def empty_key(self) -> str:
        return f"{self.dataset.name}/{self.unit.relation}"


@dataclass
class _Encoded:
    """One file of a unit read again, encoded (in a reader thread), not yet compared or staged."""

    relative: str
    payload: pa.Buffer
    digest: str
    rows: int
    first: str | None
    last: str | None


def export(conn: psycopg.Connection, destination: Destination, *, datasets: tuple[Dataset, ...] = DATASETS,
           full: bool = False, journal: Journal | None = None) -> ExportReport:
    """Bring the export at ``destination`` in line with the database (see the module doc).

    :param full: read every unit, ignoring the fingerprints (files still rewritten only if changed).
    :param journal: record the run in ``load_stats`` (table ``export``, operation ``export``: rows
        read and written, files written, identical and removed, units read and skipped), failed
        runs too.
    """
    with journaled(journal, "export", Operation.EXPORT, destination=destination.url, full=full) as entry:
        report = _export(conn, destination, datasets=datasets, full=full)
        entry.rows_in, entry.inserted = report.rows_read, report.rows_written
        entry.details.update(as_of=report.as_of, files_written=len(report.written),
                             files_unchanged=report.unchanged_files, files_removed=len(report.removed),
                             units_read=report.units_read, units_skipped=report.units_skipped,
                             bytes_written=report.bytes_written, manifest_written=report.manifest_written)
    return report


def _export(conn: psycopg.Connection, destination: Destination, *, datasets: tuple[Dataset, ...],
            full: bool) -> ExportReport:
    started = time.perf_counter()
    report = ExportReport(destination.url)
    try:
        manifest = manifests.load(destination)
    except manifests.ManifestError as exc:
        raise ExportError(f"{exc}; nothing was written") from exc
    staging = _Staging(destination)
    changed = False
    try:
        with conn.transaction():
            conn.execute(READ_SNAPSHOT)
            conn.execute(template("queries/export/lock_export.sql"))
            as_of = conn.execute(template("queries/export/snapshot.sql")).fetchone()[0].isoformat()
            work: list[_Read] = []
            for dataset in datasets:
                changed |= _plan_dataset(conn, dataset, manifest, report, work, full=full)
            if work:
                with snapshot_readers(conn, min(READERS, len(work))) as readers, \
                        contextlib.closing(_read_in_order(readers, work)) as results:
                    for item, encoded in zip(work, results):
                        changed |= _apply(item, encoded, manifest, staging, report, as_of=as_of)
    except OSError as exc:
        staging.abort()
        raise ExportError(f"{_clear(exc, destination)}; the previous files and manifest are untouched") from exc
    except BaseException:
        staging.abort()
        raise
    if changed:
        manifest.as_of = as_of
        manifest.refresh_dataset_totals()
        try:
            staging.commit()
            manifests.save(destination, manifest)
        except OSError as exc:
            staging.abort()
            raise ExportError(f"{_clear(exc, destination)} while putting the new files in place") from exc
        report.manifest_written = True
    report.as_of = as_of
    report.seconds = time.perf_counter() - started
    log.info(report.summary())
    return report


def _plan_dataset(conn, dataset: Dataset, manifest: manifests.Manifest, report: ExportReport, work: list[_Read],
                  *, full: bool) -> bool:
    """The dataset's entry and vanished units in ``manifest``, its units to read appended to ``work``;
    whether the manifest changed."""
    spec = TableSpec.load(conn, dataset.table)
    table_schema = schema(spec)
    entry = {"table": dataset.table, "date_column": dataset.date_column, "description": dataset.description,
             "schema": _schema_entry(table_schema)}
    changed = False
    info = manifest.datasets.get(dataset.name, {})
    if {k: info.get(k) for k in entry} != entry:
        manifest.datasets[dataset.name] = {**info, **entry}
        changed = True
    current = units(conn, dataset, spec)
    present = {u.relation for u in current}
    for path, old in manifest.files.items():  # units PostgreSQL no longer has (retention): the files stay
        if old["dataset"] == dataset.name and old["unit"] not in present and not old.get("source_dropped"):
            old["source_dropped"] = True
            changed = True
    for key in [k for k in manifest.empty if k.startswith(f"{dataset.name}/") and k.split("/", 1)[1] not in present]:
        del manifest.empty[key]
        changed = True
    for unit in current:
        item = _Read(dataset, spec, unit, manifest.files_of(dataset.name, unit.relation))
        if not full and item.previous and all(e["source"] == unit.fingerprint for e in item.previous.values()):
            report.units_skipped += 1
            continue
        if not full and not item.previous and manifest.empty.get(item.empty_key) == unit.fingerprint:
            report.units_skipped += 1  # still empty (a partition made ahead)
            continue
        report.units_read += 1
        work.append(item)
    return changed


def _read_and_encode(readers: Readers, item: _Read) -> list[_Encoded]:
    """A reader thread's work: the unit's rows, cut into its files, each encoded and checksummed."""
    rows = readers.read(item.spec, item.unit.relation)
    encoded = []
    for relative, part in _files_of_unit(item.dataset, item.spec, item.unit, rows):
        payload = encode(part)
        first, last = _date_range(part, item.dataset.date_column)
        encoded.append(_Encoded(relative, payload, hashlib.sha256(payload).hexdigest(), part.num_rows, first, last))
    return encoded


def _read_in_order(readers: Readers, work: list[_Read]) -> Iterator[list[_Encoded]]:
    """``_read_and_encode`` of each item, on the reader threads, yielded in ``work``'s order."""
    ahead = READ_AHEAD * READERS
    with ThreadPoolExecutor(READERS, thread_name_prefix="krx-export-read") as pool:
        pending = [pool.submit(_read_and_encode, readers, item) for item in work[:ahead]]
        try:
            for position in range(len(work)):
                result = pending[position].result()
                pending[position] = None  # the bytes go once staged
                if position + ahead < len(work):
                    pending.append(pool.submit(_read_and_encode, readers, work[position + ahead]))
                yield result
        finally:
            for future in pending:
                if future is not None:
                    future.cancel()


def _apply(item: _Read, encoded: list[_Encoded], manifest: manifests.Manifest, staging: _Staging,
           report: ExportReport, *, as_of: str) -> bool:
    """Stage the files of one unit read again whose bytes changed, and update ``manifest``; whether it changed."""
    dataset, unit = item.dataset, item.unit
    changed = False
    report.rows_read += sum(file.rows for file in encoded)
    if encoded:
        changed |= manifest.empty.pop(item.empty_key, None) is not None
    elif manifest.empty.get(item.empty_key) != unit.fingerprint:
        manifest.empty[item.empty_key] = unit.fingerprint
        changed = True
    for file in encoded:
        old = manifest.files.get(file.relative)
        if old is not None and old["sha256"] == file.digest:
            report.unchanged_files += 1
            if old["source"] != unit.fingerprint:
                old["source"] = unit.fingerprint
                changed = True
            continue
        staging.stage(file.relative, file.payload)
        manifest.files[file.relative] = {
            "dataset": dataset.name, "unit": unit.relation, "rows": file.rows, "bytes": len(file.payload),
            "sha256": file.digest, "first": file.first, "last": file.last, "exported_at": as_of,
            "source": unit.fingerprint, "source_dropped": False}
        report.written.append(file.relative)
        report.rows_written += file.rows
        report.bytes_written += len(file.payload)
        changed = True
    kept = {file.relative for file in encoded}
    for relative in item.previous:
        if relative not in kept:  # its rows are gone from a unit that still exists
            staging.remove(relative)
            del manifest.files[relative]
            report.removed.append(relative)
            changed = True
    return changed


# ------------------------------------------------------------------ retention
class ArchiveError(ExportError):
    """A partition's archive does not match PostgreSQL: the partition is kept."""


class PartitionArchiver:
    """Archives partitions one by one before ``db_retention`` drops them (see :meth:`__call__`).

    One archiver serves a whole retention run: its reader connection is opened once and
    re-imports each drop transaction's snapshot (:class:`~krxflow.export.reading.ReaderPool`:
    an ADBC connection costs a catalog load, and a run may archive hundreds of partitions), and
    each table's :class:`TableSpec` is read once. Use it as a context manager (closes the reader).
    """

    def __init__(self, conn: psycopg.Connection, destination: Destination):
        self.conn = conn
        self.destination = destination
        self._readers = ReaderPool(conn, 1)
        self._specs: dict[str, TableSpec] = {}

    def __enter__(self) -> "PartitionArchiver":
        return self

    def __exit__(self, *exc) -> None:
        self._readers.close()

    def __call__(self, table: str, partition: Partition) -> dict:
        """Export one partition and verify the file against PostgreSQL, before it is dropped.

        Runs inside the caller's transaction (the one that drops the partition): the partition is
        locked against writes first, so the rows verified are the rows dropped. The file is read back
        from the destination: its SHA-256 must be the bytes written, its row count PostgreSQL's
        ``count(*)``, and its rows equal, value for value, to the rows read. Raises
        :class:`ArchiveError` (or :class:`ExportError`) otherwise; returns the manifest entry.
        """
        conn, destination = self.conn, self.destination
        conn.execute(template("queries/export/lock_export.sql"))
        conn.execute(template("queries/export/lock_relation.sql", relation=sql.Identifier(partition.name)))
        if table not in self._specs:
            self._specs[table] = TableSpec.load(conn, table)
        spec = self._specs[table]
        dataset = for_table(table, spec.policy.key_column if spec.policy else None)
        try:
            manifest = manifests.load(destination)
        except manifests.ManifestError as exc:
            raise ExportError(f"{exc}; {partition.name} is kept") from exc
        expected_rows = count_rows(conn, partition.name)
        with self._readers.snapshot(conn) as readers:
            rows = readers.read(spec, partition.name)
        relative = f"{month_dir(dataset.name, partition.lower)}/{partition.name}.parquet"
        payload = encode(rows)
        digest = hashlib.sha256(payload).hexdigest()
        staging = _Staging(destination)
        try:
            staging.stage(relative, payload)
            staging.commit()
            with destination.filesystem.open_input_file(destination.path(relative)) as stored:
                stored_bytes = stored.read()
        except OSError as exc:
            staging.abort()
            raise ExportError(f"{_clear(exc, destination)}; {partition.name} is kept") from exc
        if hashlib.sha256(stored_bytes).hexdigest() != digest:
            raise ArchiveError(f"{relative}: the stored file's checksum is not the written one; {partition.name} is kept")
        back = pq.read_table(pa.BufferReader(stored_bytes))
        if back.num_rows != expected_rows or rows.num_rows != expected_rows:
            raise ArchiveError(f"{relative}: {back.num_rows} rows stored, {expected_rows} in {partition.name}; kept")
        if not back.equals(rows):
            raise ArchiveError(f"{relative}: the stored rows differ from {partition.name}'s; kept")
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        first, last = _date_range(rows, dataset.date_column if spec.columns[dataset.date_column].pg_type == "date"
                                  else None) if dataset.date_column else (None, None)
        entry = {"dataset": dataset.name, "unit": partition.name, "rows": rows.num_rows, "bytes": len(payload),
                 "sha256": digest, "first": first or partition.lower.isoformat(),
                 "last": last or (partition.upper - dt.timedelta(days=1)).isoformat(), "exported_at": now,
                 "source": {"relation": partition.name}, "source_dropped": True,
                 "verified_rows": expected_rows, "verified_at": now}
        manifest.files[relative] = entry
        manifest.datasets.setdefault(dataset.name, {
            "table": table, "date_column": dataset.date_column, "description": dataset.description,
            "schema": _schema_entry(schema(spec))})
        manifest.refresh_dataset_totals()
        try:
            manifests.save(destination, manifest)
        except OSError as exc:
            raise ExportError(f"{_clear(exc, destination)} while recording {relative}; {partition.name} is kept") from exc
        log.info("archived %s: %d rows verified in %s (sha256 %s)", partition.name, expected_rows, relative, digest[:12])
        return entry


def archive_partition(conn: psycopg.Connection, table: str, partition: Partition, destination: Destination) -> dict:
    """Archive one partition (:class:`PartitionArchiver` for one call)."""
    with PartitionArchiver(conn, destination) as archive:
        return archive(table, partition)
