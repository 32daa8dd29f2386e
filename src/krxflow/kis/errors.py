"""The ways a KIS call can fail, sorted by what the caller should do about it.

KIS answers gateway errors as HTTP 500 with ``rt_cd``/``msg_cd``/``msg1`` (token errors come as
HTTP 403 with ``error_code``/``error_description``). The client maps every ``msg_cd`` onto one of
these classes so callers never compare strings:

* :class:`KisThrottled` (``EGW00201``) — over the per-second limit: back off and retry.
* :class:`KisTokenRejected` (``EGW00123`` expired, ``EGW00121`` invalid, ``EGW00122`` missing) —
  renew the shared token (respecting the one-per-minute rule) and retry.
* :class:`KisTokenRateLimited` (``EGW00133``) — a token was issued less than a minute ago: wait
  at least 60 s before asking again.
* :class:`KisConfigError` — wrong appkey/appsecret, a key of the other environment (``EGW02004``),
  a missing "Bearer"… Retrying cannot help: fail at once with a clear message.
* :class:`KisTransientError` — 5xx without a KIS body, timeouts, dropped connections: retry a few
  times with backoff.
"""

from __future__ import annotations


class KisError(Exception):
    """Base class of every KIS failure."""

    def __init__(self, message: str, *, msg_cd: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.msg_cd = msg_cd
        self.status = status


class KisThrottled(KisError):
    """EGW00201: more calls per second than the appkey is allowed."""


class KisTokenRejected(KisError):
    """EGW00123/EGW00121/EGW00122: the gateway no longer accepts the access token."""


class KisTokenRateLimited(KisError):
    """EGW00133: tokens are issued at most once per minute per appkey."""


class KisConfigError(KisError):
    """Credentials, domain or request are wrong; retrying cannot help."""


class KisTransientError(KisError):
    """A failure that may go away on its own (5xx without a KIS body, timeout, reset connection)."""


class KisResponseError(KisError):
    """A KIS answer that cannot be understood (bad JSON, a number that is not a number)."""


THROTTLED = {"EGW00201"}
TOKEN_REJECTED = {"EGW00123", "EGW00121", "EGW00122"}
TOKEN_RATE_LIMITED = {"EGW00133"}
#: Answers no retry can fix: bad key/secret, other environment's key, TR not offered, bad headers.
CONFIG = {"EGW00103", "EGW00105", "EGW02004", "EGW02006", "EGW00205", "EGW00206", "EGW00207", "EGW00208",
          "OPSQ9999", "EGW00101", "EGW00102", "EGW00132"}
#: Gateway-side hiccups KIS itself labels temporary.
TRANSIENT = {"EGW00001", "EGW00002"}


def classify(msg_cd: str | None, message: str, status: int | None) -> KisError:
    """The exception for a KIS error answer (``msg_cd`` may come from ``msg_cd`` or ``error_code``)."""
    text = f"KIS {msg_cd or 'error'} (HTTP {status}): {message}"
    if msg_cd in THROTTLED:
        return KisThrottled(text, msg_cd=msg_cd, status=status)
    if msg_cd in TOKEN_REJECTED:
        return KisTokenRejected(text, msg_cd=msg_cd, status=status)
    if msg_cd in TOKEN_RATE_LIMITED:
        return KisTokenRateLimited(text, msg_cd=msg_cd, status=status)
    if msg_cd in CONFIG:
        hint = {"EGW02004": " — the appkey belongs to the other environment (live vs paper): check the "
                            "kis_default Connection's host and extra 'env'",
                "EGW00103": " — check the kis_default Connection's login (appkey)",
                "EGW00105": " — check the kis_default Connection's password (appsecret)"}.get(msg_cd, "")
        return KisConfigError(text + hint, msg_cd=msg_cd, status=status)
    if msg_cd in TRANSIENT or msg_cd is None:
        return KisTransientError(text, msg_cd=msg_cd, status=status)
    return KisResponseError(text, msg_cd=msg_cd, status=status)
