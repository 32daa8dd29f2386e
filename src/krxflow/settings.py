"""Names and defaults shared across krxflow: connection ids, time zone, where the SQL lives.

Everything here can be overridden by environment variables so that the same code runs in
docker-compose, under ``make run`` and in tests without edits.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The market's clock. Trading days, partition bounds, weeks and months are all KST.
MARKET_TZ = "Asia/Seoul"

POSTGRES_CONN_ID = os.environ.get("KRXFLOW_POSTGRES_CONN_ID", "postgres_default")
REDIS_CONN_ID = os.environ.get("KRXFLOW_REDIS_CONN_ID", "redis_default")
KRX_CONN_ID = os.environ.get("KRXFLOW_KRX_CONN_ID", "krx_default")
KIS_CONN_ID = os.environ.get("KRXFLOW_KIS_CONN_ID", "kis_default")
DART_CONN_ID = os.environ.get("KRXFLOW_DART_CONN_ID", "dart_default")


def cache_dir() -> Path:
    """This machine's krxflow files that outlive a process: ``$KRXFLOW_CACHE_DIR``, else ``~/.cache/krxflow``."""
    return Path(os.environ.get("KRXFLOW_CACHE_DIR") or Path.home() / ".cache" / "krxflow")


def sql_dir() -> Path:
    """Where krxflow's SQL lives: ``$KRXFLOW_SQL_DIR``; else ``krxflow/sql`` inside an installed wheel
    (the build copies ``include/sql`` there); else ``include/sql`` of the checkout the package runs
    from (``src/krxflow`` in an editable install)."""
    configured = os.environ.get("KRXFLOW_SQL_DIR")
    if configured:
        return Path(configured)
    packaged = Path(__file__).resolve().parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "include" / "sql"

#: The Connection naming where ``krx_export`` writes (krxflow.export.destination); absent = a local folder.
EXPORT_CONN_ID = os.environ.get("KRXFLOW_EXPORT_CONN_ID", "krxflow_export")


def setting(name: str) -> str | None:
    """A deployment setting: the environment variable ``name`` (unless empty), else the Airflow Variable
    of the same name, else None (read when called, so a Variable changed in the UI applies to the
    next task)."""
    raw = os.environ.get(name)
    if not raw:
        try:
            from airflow.sdk import Variable

            raw = Variable.get(name, default=None)
        except Exception:  # outside a task (CLI, bench) there may be no Variable backend
            raw = None
    return raw


def number_setting(name: str, default: float) -> float:
    """A number from :func:`setting`, else ``default``."""
    raw = setting(name)
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
