"""The only HTTP path from krxflow to KRX and Naver: a ``requests.Session`` whose every send is gated.

pykrx, the login and anything else krxflow sends to ``data.krx.co.kr`` or Naver's chart service
goes through :class:`GatedSession`. For each request it:

1. waits for its turn at the shared gate of :mod:`krxflow.krx.pacing` — the circuit checked,
   the interval since the previous send honoured, no other request in flight — at the moment
   of sending, across every worker;
2. sends with a timeout (``KRXFLOW_KRX_TIMEOUT``, default 30 s) and without following redirects
   (a redirect would be a second, ungated request);
3. reads the answer and decides what it means **before** the next request may go out: HTTP 403,
   or an HTML page where JSON/XML was expected (data and the login POST alike), is a block — the
   circuit opens and :class:`KrxBlockedError` is raised; ``LOGOUT`` is
   :class:`KrxLogoutError`; any other non-200 is :class:`KrxHttpError` (retryable).

Hosts other than KRX and Naver are refused: krxflow has no reason to send anything elsewhere.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from urllib.parse import urlsplit

import requests

from krxflow.krx.errors import KrxBlockedError, KrxHttpError, KrxLogoutError, KrxSourceError
from krxflow.krx.pacing import Pacer, block_ttl, circuit_key

log = logging.getLogger(__name__)

KRX_HOST = "data.krx.co.kr"
NAVER_HOST = "fchart.stock.naver.com"
#: Path fragments of the KRX requests that must answer data (JSON), never a page.
_KRX_DATA_PATHS = ("/comm/bldAttendant/", "/MDCCOMS001D1.cmd")
#: The login POST (counted apart: KRX notices logins more than anything else).
LOGIN_PATH = "/contents/MDC/COMS/client/MDCCOMS001D1.cmd"
DEFAULT_TIMEOUT = 30.0


def request_timeout() -> float:
    """Seconds krxflow waits for one KRX/Naver answer (``KRXFLOW_KRX_TIMEOUT``, default 30)."""
    return float(os.environ.get("KRXFLOW_KRX_TIMEOUT") or DEFAULT_TIMEOUT)


def service_of(url: str) -> str | None:
    """``"krx"``, ``"naver"`` or None for any other host."""
    host = urlsplit(str(url)).hostname or ""
    return {KRX_HOST: "krx", NAVER_HOST: "naver"}.get(host)


def kind_of(url: str) -> str:
    """How a request is counted: ``login`` (the login POST), else its service."""
    return "login" if urlsplit(str(url)).path == LOGIN_PATH else service_of(url) or "other"


class GatedSession(requests.Session):
    """A ``requests.Session`` for KRX and Naver that sends each request through the shared gate.

    :param pacers: the :class:`~krxflow.krx.pacing.Pacer` of each service (``krx``, ``naver``).
    :param timeout: seconds per request when the caller gives none (pykrx never does).
    :param counter: where requests sent are counted by :func:`kind_of` (shared by a source's sessions).
    """

    def __init__(self, pacers: dict[str, Pacer], *, timeout: float | None = None, counter: Counter | None = None):
        super().__init__()
        self.pacers = pacers
        self.timeout = request_timeout() if timeout is None else timeout
        self.counter = Counter() if counter is None else counter

    def request(self, method, url, *args, **kwargs):
        service = service_of(url)
        if service is None:
            raise KrxSourceError(f"krxflow's KRX session sends only to {KRX_HOST} and {NAVER_HOST}, not {url}")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kwargs["allow_redirects"] = False
        pacer = self.pacers[service]
        with pacer.turn():
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.Timeout as exc:
                raise KrxHttpError(f"{service} did not answer within {kwargs['timeout']}s ({url})") from exc
            except requests.RequestException as exc:
                raise KrxHttpError(f"could not reach {service}: {exc}") from exc
            self.counter[kind_of(url)] += 1
            classify(pacer, response)  # inside the turn: a block opens the circuit before anyone sends again
        return response


def classify(pacer: Pacer, response: requests.Response) -> None:
    """Raise the typed error an answer means; open ``pacer``'s circuit when it is a block."""
    service = pacer.service
    head = response.content[:512].decode("utf-8", "replace").strip()
    status = response.status_code
    if status == 403:
        raise blocked(pacer, f"HTTP 403 from {response.url}")
    if service == "krx" and head.upper().startswith("LOGOUT"):
        raise KrxLogoutError(f"KRX answered LOGOUT for {response.url}")
    if status != 200:
        raise KrxHttpError(f"{service} answered HTTP {status} for {response.url}: {head[:200]!r}")
    lowered = head.lower()
    is_page = lowered.startswith(("<!doctype html", "<html"))
    expects_data = service == "naver" or any(p in urlsplit(response.url).path for p in _KRX_DATA_PATHS)
    if expects_data and (is_page or (service == "krx" and head.startswith("<"))):
        raise blocked(pacer, f"an HTML page instead of data from {response.url}: {head[:120]!r}")


def blocked(pacer: Pacer, reason: str) -> KrxBlockedError:
    """Open the circuit of ``pacer``'s service and return the error that says so plainly."""
    ttl = block_ttl()
    pacer.open_circuit(reason, ttl)
    service = pacer.service
    return KrxBlockedError(
        f"{service} BLOCKED this IP ({reason}). Failing now without retries: requests during a block extend "
        f"it. The circuit is open for {ttl}s (Redis key {circuit_key(service)}); nothing is sent to {service} "
        f"until it closes.")
