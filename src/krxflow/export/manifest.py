"""``manifest.json``: what the export holds — every file with its rows, checksum and source, every
dataset with its schema, and the time the data is as of.

Shape (``format`` 1)::

    {"format": 1, "as_of": "2024-03-08T12:00:03.1+00:00",   # the export's database snapshot
     "datasets": {"daily_prices": {"table": "daily_prices", "date_column": "trade_date",
                                   "description": "…", "schema": [{"name": "ticker", "type": "string",
                                   "nullable": false}, …], "rows": 3312000,
                                   "first": "2019-03-11", "last": "2024-03-08"}, …},
     "files": {"daily_prices/year=2024/month=03/daily_prices_p202403.parquet":
               {"dataset": "daily_prices", "unit": "daily_prices_p202403", "rows": 13500,
                "bytes": 210345, "sha256": "…", "first": "2024-03-04", "last": "2024-03-08",
                "exported_at": "…", "source": {"relation": "daily_prices_p202403", "filenode": 16501,
                "inserted": 13500, "updated": 0, "deleted": 0, "stats_epoch": "…"},
                "source_dropped": false}, …}}

``sha256`` is the checksum of the file's bytes; ``source`` the fingerprint the incremental export
compares (:mod:`krxflow.export.exporter`); ``empty`` holds the fingerprints of units that had no rows (partitions made ahead), so that they
are not read again until written to; ``source_dropped`` marks a file whose partition
``db_retention`` dropped after archiving it (the file is then the only copy; ``verified_rows`` and
``verified_at`` say when its rows were checked against PostgreSQL).

Written last, to a temporary name renamed over the old one: a reader sees the old manifest or the
new one, whole.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pyarrow.fs as pafs

from krxflow.export.destination import Destination

FILE_NAME = "manifest.json"
FORMAT = 1


class ManifestError(RuntimeError):
    """The manifest cannot be read (unreachable destination, or not a krxflow manifest)."""


@dataclass
class Manifest:
    as_of: str | None = None
    datasets: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    #: ``"<dataset>/<unit>" -> fingerprint`` of units that had no rows (partitions made ahead)
    empty: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {"format": FORMAT, "as_of": self.as_of, "datasets": self.datasets,
                "files": dict(sorted(self.files.items())), "empty": dict(sorted(self.empty.items()))}
        return json.dumps(body, indent=1, sort_keys=False, ensure_ascii=False).encode("utf-8")

    def files_of(self, dataset: str, unit: str) -> dict:
        return {path: entry for path, entry in self.files.items()
                if entry["dataset"] == dataset and entry["unit"] == unit}

    def refresh_dataset_totals(self) -> None:
        for name, info in self.datasets.items():
            entries = [e for e in self.files.values() if e["dataset"] == name]
            info["rows"] = sum(e["rows"] for e in entries)
            firsts = [e["first"] for e in entries if e.get("first")]
            lasts = [e["last"] for e in entries if e.get("last")]
            info["first"], info["last"] = (min(firsts) if firsts else None), (max(lasts) if lasts else None)


def load(destination: Destination) -> Manifest:
    """The destination's manifest (empty when there is none yet); a clear error when unreachable."""
    path = destination.path(FILE_NAME)
    try:
        info = destination.filesystem.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            return Manifest()
        with destination.filesystem.open_input_stream(path) as stream:
            body = json.loads(stream.read().decode("utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read {FILE_NAME} at {destination.url}: {exc}") from exc
    except ValueError as exc:
        raise ManifestError(f"{destination.url}/{FILE_NAME} is not valid JSON: {exc}") from exc
    if body.get("format") != FORMAT:
        raise ManifestError(f"{destination.url}/{FILE_NAME} has format {body.get('format')!r}, expected {FORMAT}")
    return Manifest(body.get("as_of"), body.get("datasets", {}), body.get("files", {}), body.get("empty", {}))


def save(destination: Destination, manifest: Manifest) -> None:
    """Write the manifest atomically (temporary name, then rename over the old one)."""
    final = destination.path(FILE_NAME)
    temporary = destination.path(f".{FILE_NAME}.{uuid.uuid4().hex[:12]}.tmp")
    filesystem = destination.filesystem
    with filesystem.open_output_stream(temporary) as out:
        out.write(manifest.to_json())
    filesystem.move(temporary, final)
