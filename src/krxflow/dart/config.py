"""The ``dart_default`` Connection: the OpenDART API key in its password, optionally another host.

* ``password``: the 40-character OpenDART key (``crtfc_key``);
* ``host`` (optional): another base URL, e.g. ``http://127.0.0.1:18090`` for the fake server
  (default ``https://opendart.fss.or.kr``); ``port`` is honoured when ``host`` has no scheme;
* extra ``timeout`` (seconds, default 30).

No Connection, or one without a key, means **sample mode** (as for KRX and KIS): the loaders talk
to a local fake OpenDART (:mod:`krxflow.sample.dart_server`) over the sample market.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from krxflow.settings import DART_CONN_ID

log = logging.getLogger(__name__)

OPENDART_URL = "https://opendart.fss.or.kr"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class DartConfig:
    """Where OpenDART is and the key to send; ``api_key`` None is the sample mode."""

    api_key: str | None
    base_url: str = OPENDART_URL
    timeout: float = DEFAULT_TIMEOUT

    @property
    def sample(self) -> bool:
        return not self.api_key

    @classmethod
    def from_connection(cls, conn) -> "DartConfig":
        extra = conn.extra_dejson if conn is not None else {}
        key = (conn.password or "").strip() if conn is not None else ""
        host = (conn.host or "").strip() if conn is not None else ""
        if host and "://" not in host:
            host = f"https://{host}" + (f":{conn.port}" if conn.port else "")
        return cls(api_key=key or None, base_url=(host or OPENDART_URL).rstrip("/"),
                   timeout=float(extra.get("timeout", DEFAULT_TIMEOUT)))


def load_config(conn_id: str = DART_CONN_ID) -> DartConfig:
    """The Connection ``conn_id`` as a :class:`DartConfig`; sample mode when it does not exist."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException: no Connection is the sample mode
        log.info("no %s Connection (%s): OpenDART sample mode", conn_id, type(exc).__name__)
        return DartConfig(api_key=None)
    return DartConfig.from_connection(conn)
