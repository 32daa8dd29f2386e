"""The daily load's failover from the member portal to the KRX Open API (issue 30).

When the portal refuses us — its circuit is open after a block, it blocks us now, or it refuses the
login (e.g. ``CD010``: KRX wants the password changed) — the session's rows come from the KRX Open
API instead, if the ``krx_openapi_default`` Connection exists. The Open API publishes a session the
next morning: until then it raises :class:`~krxflow.krx.errors.KrxNotPublishedError` (retryable), so
the run's retries wait for it and nothing empty is ever loaded as done. Without the Connection, or
with ``KRXFLOW_KRX_FAILOVER=off`` (env or Airflow Variable), the portal's error stands.

Both paths give the same rows for one session (tests/test_krx_openapi.py), the base price
(기준가) included: the Open API's ``CMPPREVDD_PRC`` is the same signed change against it, so the
adjusted series derived from a failed-over session is the portal's.
"""

from __future__ import annotations

import logging

from krxflow.krx.errors import (KrxBlockedError, KrxCircuitOpenError, KrxLoginError, KrxLogoutError,
                                KrxOpenApiKeyError)
from krxflow.krx.interface import KrxSource
from krxflow.settings import setting

log = logging.getLogger(__name__)

#: The portal's refusals a session fails over on (a block, an open circuit, a refused login or session).
PORTAL_DOWN = (KrxCircuitOpenError, KrxBlockedError, KrxLoginError, KrxLogoutError)


def failover_enabled() -> bool:
    """``KRXFLOW_KRX_FAILOVER`` (env, else Airflow Variable): ``on`` (default) or ``off``."""
    value = (setting("KRXFLOW_KRX_FAILOVER") or "on").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"KRXFLOW_KRX_FAILOVER must be on or off, got {value!r}")
    return value == "on"


def open_api_fallback() -> KrxSource | None:
    """The Open API source when failover is on and its Connection exists, else None."""
    if not failover_enabled():
        return None
    from krxflow.krx.openapi import OpenApiSource

    try:
        return OpenApiSource()
    except KrxOpenApiKeyError as exc:  # no Connection / no key: nothing to fail over to
        log.info("no failover to the KRX Open API: %s", exc)
        return None


def market_day(source: KrxSource, day, *, fallback=open_api_fallback) -> tuple["pd.DataFrame", KrxSource]:  # noqa: F821
    """Session ``day`` of the whole market from ``source``; from the Open API when the portal refuses us.
    Returns the frame and the source that answered it."""
    if source.name != "pykrx":
        return source.market_day(day), source
    try:
        return source.market_day(day), source
    except PORTAL_DOWN as exc:
        other = fallback()
        if other is None:
            raise
        log.warning("the portal refused %s (%s: %s): failing over to the KRX Open API", day, type(exc).__name__, exc)
        return other.market_day(day), other
