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


def cache_dir() -> Path:
    """This machine's krxflow files that outlive a process: ``$KRXFLOW_CACHE_DIR``, else ``~/.cache/krxflow``."""
    return Path(os.environ.get("KRXFLOW_CACHE_DIR") or Path.home() / ".cache" / "krxflow")


def sql_dir() -> Path:
    """The ``include/sql`` folder: ``$KRXFLOW_SQL_DIR``, else found beside the ``plugins/`` folder."""
    configured = os.environ.get("KRXFLOW_SQL_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "include" / "sql"
