"""Typed errors of OpenDART, one per status (reference §1), and whether retrying helps.

Errors no retry can fix (a bad key, the daily limit, the gate's budget, a bad parameter) derive
from Airflow's ``AirflowFailException``: a task raising them fails at once without spending its
retries against a server that refuses us.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class DartError(Exception):
    """Something about OpenDART failed (retrying may help)."""

    status: str | None = None

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        self.status = status


class DartHttpError(DartError):
    """An HTTP status other than 200, a timeout or a connection failure (transient)."""


class DartMaintenanceError(DartError):
    """Status 800: OpenDART is down for maintenance (retry later)."""


class DartUnknownError(DartError):
    """Status 900, 014 or a status OpenDART does not document (retry may help)."""


class DartChangedWhilePagingError(DartError):
    """The answer changed between pages (new filings arrived mid-way): retry reads a consistent set."""


class DartBadAnswerError(DartError):
    """The answer does not have OpenDART's shape (not JSON, no ``status``, a ZIP without CORPCODE.xml)."""


class DartFatalError(DartError, AirflowFailException):
    """Retrying cannot fix it and must not try: the task fails without retries."""


class DartKeyError(DartFatalError):
    """Status 010/011/012/901: the key of the ``dart_default`` Connection is unknown, suspended,
    used from an IP not allowed, or expired."""


class DartLimitError(DartFatalError):
    """Status 020: OpenDART's daily request limit of the key is used up (the DART circuit opens)."""


class DartCircuitOpenError(DartFatalError):
    """A status 020 opened the DART circuit: nothing is sent until the next KST day."""


class DartBudgetError(DartFatalError):
    """krxflow's own daily budget of OpenDART requests (below OpenDART's limit) is used up."""


class DartRequestError(DartFatalError):
    """Status 100/101/021: OpenDART refused a parameter (a bug in the request, not a transient fault)."""


KEY_STATUSES = {"010": "is not registered", "011": "is suspended", "012": "is not allowed from this IP",
                "901": "has expired (OpenDART's personal-data retention period)"}
