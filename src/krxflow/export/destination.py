"""Where the export goes: a local folder by default, or any filesystem pyarrow or fsspec reaches.

The ``krxflow_export`` Connection (:data:`krxflow.settings.EXPORT_CONN_ID`) chooses it:

* ``extra.url`` — the destination, ``s3://bucket/prefix``, ``file:///srv/krx``, ``/srv/krx``,
  or any URL pyarrow (``gs://``, ``hdfs://``…) or an installed fsspec implementation understands;
* for ``s3://``: ``login``/``password`` are the access key and secret (none: the usual AWS chain),
  ``extra.endpoint_url`` an S3-compatible server (MinIO, Ceph, R2…), ``extra.region``;
* other ``extra`` keys are passed to the fsspec filesystem.

Without the Connection the export goes to ``$KRXFLOW_EXPORT_DIR`` (``make run`` sets it to
``<run dir>/export``), else ``$AIRFLOW_HOME/export``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from krxflow.settings import EXPORT_CONN_ID

log = logging.getLogger(__name__)

EXPORT_DIR_VARIABLE = "KRXFLOW_EXPORT_DIR"
#: Seconds before an unreachable S3 endpoint fails a call, and attempts per call.
S3_CONNECT_TIMEOUT = 5.0
S3_REQUEST_TIMEOUT = 60.0
S3_ATTEMPTS = 3


@dataclass
class Destination:
    """A filesystem and the root folder of the export on it."""

    filesystem: pafs.FileSystem
    root: str
    url: str
    options: dict = field(default_factory=dict, repr=False)

    def path(self, relative: str) -> str:
        return f"{self.root.rstrip('/')}/{relative}" if self.root else relative


def default_dir() -> Path:
    configured = os.environ.get(EXPORT_DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "export"


def local(path: str | os.PathLike) -> Destination:
    """A folder on this machine (created when missing)."""
    root = Path(path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return Destination(pafs.LocalFileSystem(), str(root), root.as_uri())


def from_url(url: str, *, access_key: str | None = None, secret_key: str | None = None,
             endpoint_url: str | None = None, region: str | None = None, **options) -> Destination:
    """The destination a URL names (see the module doc)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return local(parsed.path if parsed.scheme else url)
    if parsed.scheme in ("s3", "s3a"):
        kwargs = {"region": region or "us-east-1", "connect_timeout": S3_CONNECT_TIMEOUT,
                  "request_timeout": S3_REQUEST_TIMEOUT,
                  "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS)}
        if access_key:
            kwargs.update(access_key=access_key, secret_key=secret_key)
        if endpoint_url:
            endpoint = urlparse(endpoint_url)
            kwargs.update(endpoint_override=endpoint.netloc or endpoint.path, scheme=endpoint.scheme or "https")
        root = f"{parsed.netloc}{parsed.path}".rstrip("/")
        return Destination(pafs.S3FileSystem(**kwargs), root, url)
    try:
        filesystem, root = pafs.FileSystem.from_uri(url)
        return Destination(filesystem, root, url)
    except (ValueError, OSError):  # pyarrow.ArrowInvalid is a ValueError
        pass
    import fsspec  # only for schemes pyarrow has no filesystem for

    filesystem, root = fsspec.core.url_to_fs(url, **options)
    return Destination(pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), root, url, options)


def from_connection(conn_id: str = EXPORT_CONN_ID) -> Destination:
    """The destination the Connection ``conn_id`` names, or the default local folder without it."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("no Connection %r: exporting to the local folder %s", conn_id, default_dir())
        return local(default_dir())
    extra = dict(conn.extra_dejson or {})
    url = extra.pop("url", None) or conn.host
    if not url:
        raise ValueError(f"the Connection {conn_id!r} needs extra.url (s3://bucket/prefix, file:///path, …)")
    return from_url(url, access_key=conn.login or None, secret_key=conn.password or None,
                    endpoint_url=extra.pop("endpoint_url", None), region=extra.pop("region", None), **extra)
