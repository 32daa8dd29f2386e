"""Typed errors of the KRX sources: what went wrong, said plainly, and whether retrying helps.

pykrx turns most failures into empty DataFrames; the sources turn them back into these.
Errors that must never be retried (a block, an open circuit, a refused login) derive from
Airflow's ``AirflowFailException`` so that a task raising them fails at once, without using up
its retries against a server that is already refusing us.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class KrxSourceError(Exception):
    """Base class: something about the KRX data source failed (retrying may help)."""


class KrxHttpError(KrxSourceError):
    """An unexpected HTTP status or a timeout (transient: Airflow's retries may help)."""


class KrxEmptyAnswerError(KrxSourceError):
    """KRX answered nothing for a day the XKRX calendar says was a trading day."""


class KrxNotPublishedError(KrxEmptyAnswerError):
    """KRX answered a trading day with its usual rows but every value ``"-"``: the session is not
    published yet (KRX answers a day without data so). Nothing of it may be written; a later try
    (the task's retries, a rerun) loads it once KRX has published it."""


class KrxBadAnswerError(KrxSourceError):
    """The answer did not have the shape pykrx/krxflow expect (a site change?)."""


class KrxFatalError(KrxSourceError, AirflowFailException):
    """Errors that retrying cannot fix and must not try to: the task fails without retries."""


class KrxLoginError(KrxFatalError):
    """KRX refused the login of the ``krx_default`` Connection (wrong password, CD010...)."""


class KrxLogoutError(KrxFatalError):
    """KRX answered ``LOGOUT``: the data service needs a logged-in session."""


class KrxBlockedError(KrxFatalError):
    """KRX (or Naver) blocked this IP: HTTP 403 or an HTML page instead of data."""


class KrxCircuitOpenError(KrxFatalError):
    """A recent block opened the circuit: no task may call the service until it closes."""


class KrxOpenApiKeyError(KrxFatalError):
    """The KRX Open API refused the ``krx_openapi_default`` key (HTTP 403: unknown or expired key) or
    the key is not approved for the service asked (respCode 401): retrying cannot fix it."""


class KrxOpenApiBudgetError(KrxFatalError):
    """The day's KRX Open API call budget is spent (krxflow's own count in Redis, or KRX's HTTP 429):
    nothing more is sent until the next KST day."""
