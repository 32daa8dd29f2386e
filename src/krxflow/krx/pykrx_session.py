"""pykrx inside an Airflow worker: imported quietly, never logging in by itself, bound to krxflow's session.

pykrx logs in at import time from ``KRX_ID``/``KRX_PW``, keeps one process-wide auth session,
prints instead of logging and caches a broken ticker table after a failure. This module holds
everything krxflow does about that, and nothing else:

* :func:`import_pykrx` — import once, with ``KRX_ID``/``KRX_PW`` hidden and its log noise muted;
* :func:`bind_session` — inject krxflow's gated HTTP session (and the shared login's cookies)
  through ``pykrx.website.comm.auth.set_auth_session``, as an always-valid ``KRXSession`` that
  refuses to log in on its own;
* :func:`krx_credentials` — the ``krx_default`` Connection's login;
* :func:`reset_pykrx_state` — forget pykrx's cached ticker table (and krxflow's ISIN map).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import tempfile
from typing import TYPE_CHECKING, NamedTuple

from krxflow.settings import KRX_CONN_ID
from krxflow.krx.errors import KrxLoginError

if TYPE_CHECKING:
    from krxflow.krx.login import KrxLoginState

log = logging.getLogger(__name__)


class Credentials(NamedTuple):
    login: str
    password: str


class _State:
    """Process-wide: the ISIN of every ticker KRX's finders know (read once; forgotten on a failure)."""

    isins: dict[str, str] | None = None


def known_isins() -> dict[str, str] | None:
    """The ticker → ISIN map read from KRX's finders in this process (None: not read yet)."""
    return _State.isins


def remember_isins(isins: dict[str, str]) -> None:
    _State.isins = isins


def krx_credentials(conn_id: str = KRX_CONN_ID) -> Credentials | None:
    """Login and password of the ``krx_default`` Connection; None when it is absent or empty."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends: no Connection means anonymous
        log.info("no %s Connection (%s): calling KRX without a login", conn_id, type(exc).__name__)
        return None
    if conn.login and conn.password:
        return Credentials(conn.login, conn.password)
    return None


class _DropPykrxLogNoise(logging.Filter):
    """pykrx calls ``logging.info(args, kwargs)``, which prints a 'Logging error' traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pykrx" not in (record.pathname or "")


def login_error(printed: str) -> KrxLoginError:
    if "비밀번호 변경" in printed or "CD010" in printed:
        return KrxLoginError("KRX refused the login of the krx_default Connection: CD010, KRX requires a "
                             "password change (every ~3 months). Change it on www.krx.co.kr and update the "
                             "Connection's password. Not retrying.")
    return KrxLoginError("KRX refused the login of the krx_default Connection (wrong id or password?). "
                         "Not retrying: repeated failed logins can lock the account.")


def import_pykrx() -> None:
    """Import pykrx once per process, with ``KRX_ID``/``KRX_PW`` hidden so that it does not log in."""
    if "pykrx" in sys.modules:
        return
    hidden = {name: os.environ.pop(name) for name in ("KRX_ID", "KRX_PW") if name in os.environ}
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "krxflow-matplotlib"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints that it could not log in
            import pykrx  # noqa: F401
    finally:
        os.environ.update(hidden)
    logging.getLogger().addFilter(_DropPykrxLogNoise())
    logging.getLogger("pykrx").setLevel(logging.WARNING)


@functools.lru_cache(maxsize=1)
def _injected_session_class():
    """pykrx's ``KRXSession`` as krxflow injects it: always valid, never logging in by itself."""
    from pykrx.website.comm import auth

    class InjectedKrxSession(auth.KRXSession):
        """Holds krxflow's gated HTTP session and the shared login's cookies.

        ``is_valid`` is always true so that pykrx neither re-logs-in from ``KRX_ID``/``KRX_PW`` nor
        falls back to a fresh, ungated ``requests.Session``; krxflow renews the login itself.
        """

        def is_valid(self, buffer_seconds: int = 300) -> bool:
            return True

        def refresh(self, login_id: str, login_pw: str) -> bool:
            raise KrxLoginError("pykrx tried to log in by itself; krxflow's shared session must be used")

    return InjectedKrxSession


def reset_pykrx_state() -> None:
    """Forget pykrx's cached ticker table (it keeps an empty one after a failure) and our ISIN map."""
    with contextlib.suppress(ImportError):
        from pykrx.website.krx.market.ticker import StockTicker

        StockTicker._instance = None
    _State.isins = None


def bind_session(http, state: "KrxLoginState | None") -> None:
    """Make pykrx's next requests go through ``http`` (a gated session) with ``state``'s cookies.

    pykrx keeps one auth session per process; krxflow binds its own before every fetch (see
    ``PykrxSource._call``), so no request ever goes out on a session another source left behind.
    """
    import_pykrx()
    from pykrx.website.comm import auth

    cookies = {name: {"value": value} for name, value in (state.cookies if state else {}).items()}
    auth.set_auth_session(_injected_session_class()(session=http, is_authenticated=True,
                                                    expiry_time=float("inf"), cookies=cookies))
