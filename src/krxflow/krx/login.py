"""One KRX login for the whole installation, shared by every worker through Redis.

KRX's data service answers ``LOGOUT`` to anonymous callers, and a login is the request KRX
watches most: one account logging in from many processes also logs its own sessions out
(``CD011``). So krxflow logs in **once** and shares the session:

* The session's cookies live in Redis (:func:`session_key`) with the login they belong to and
  when they expire; every worker reads them before each KRX call and sends them.
* A worker that finds no usable session takes a lock (``SET NX``) and logs in; the others wait
  for its result instead of logging in themselves (single flight). The lock expires on its own
  if its holder dies.
* A session is renewed :data:`RENEW_BEFORE` seconds before :data:`SESSION_LIFETIME` ends, or
  when KRX answers ``LOGOUT`` (:meth:`SharedKrxLogin.invalidate`, which only drops the session
  that was refused, never a newer one another worker just made).
* A refused login (wrong password, ``CD010`` password change) is remembered for the login and
  password that were refused (a hash, never the password): other workers fail at once instead
  of repeating it — repeated failed logins can lock the account. Changing the Connection's
  password (or deleting the key the error names) allows a new try.

Every request of a login goes through the gate (:mod:`krxflow.krx.gated_http`): paced, and
never sent into an open circuit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from krxflow import redis_client
from krxflow.krx.errors import KrxHttpError, KrxLoginError
from krxflow.krx.pacing import COMPARE_AND_DELETE, Pacer

log = logging.getLogger(__name__)

#: Seconds a KRX session is trusted after its login (pykrx's and KRX's web client's figure).
SESSION_LIFETIME = 3600
#: Renew this many seconds before the lifetime ends.
RENEW_BEFORE = 300
#: Seconds a login may take before its lock expires (three requests, paced, with timeouts).
LOGIN_LOCK_TTL = 120
#: Seconds a refused login is remembered.
REFUSAL_TTL = 24 * 3600
_WAIT_POLL = 0.2


def session_key() -> str:
    return redis_client.key("krx", "session")


def login_lock_key() -> str:
    return redis_client.key("krx", "session", "lock")


def refusal_key() -> str:
    return redis_client.key("krx", "session", "refused")


@dataclass(frozen=True)
class KrxLoginState:
    """A logged-in KRX session: whose, its cookies, and until when it is used."""

    login: str
    cookies: dict[str, str]
    logged_in_at: float
    expires_at: float
    id: str

    def usable(self, login: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.login == login and now < self.expires_at - RENEW_BEFORE


class SharedKrxLogin:
    """The installation-wide KRX login of one account.

    :param login: the account (the ``krx_default`` Connection's login).
    :param password: its password (used only to log in and, hashed, to remember a refusal).
    :param perform_login: sends the login requests and returns the session cookies; raises
        :class:`KrxLoginError` when KRX refuses, any other error when it could not be asked.
    :param pacer: the KRX gate, to stop waiting for another worker's login once the circuit opens.
    """

    def __init__(self, login: str, password: str, perform_login: Callable[[], dict[str, str]], pacer: Pacer):
        self.login = login
        self._fingerprint = hashlib.sha256(f"{login}\0{password}".encode()).hexdigest()
        self._perform_login = perform_login
        self.pacer = pacer

    @property
    def redis(self):
        return self.pacer.redis

    def current(self) -> KrxLoginState:
        """A usable session: the shared one, or a new login (by this worker or one it waits for)."""
        deadline = time.monotonic() + LOGIN_LOCK_TTL + 10
        while True:
            state = self._read()
            if state is not None and state.usable(self.login):
                return state
            self._raise_if_refused()
            self.pacer.check_circuit()
            token = uuid.uuid4().hex
            if self.redis.set(login_lock_key(), token, nx=True, px=LOGIN_LOCK_TTL * 1000):
                try:
                    state = self._read()  # another worker may have logged in between our look and the lock
                    if state is not None and state.usable(self.login):
                        return state
                    return self._log_in()
                finally:
                    self.redis.eval(COMPARE_AND_DELETE, 1, login_lock_key(), token)
            if time.monotonic() > deadline:
                raise KrxHttpError(f"another worker's KRX login did not finish within {LOGIN_LOCK_TTL + 10}s "
                                   f"(lock {login_lock_key()})")
            time.sleep(_WAIT_POLL)

    def invalidate(self, state: KrxLoginState) -> None:
        """KRX answered LOGOUT with ``state``'s cookies: drop it, unless a newer session replaced it already."""
        raw = self.redis.get(session_key())
        if raw is not None and json.loads(raw).get("id") == state.id:
            self.redis.eval(COMPARE_AND_DELETE, 1, session_key(), raw)
            log.warning("KRX session of %s (logged in %s) was refused with LOGOUT: dropped", state.login,
                        time.strftime("%H:%M:%S", time.localtime(state.logged_in_at)))

    def _read(self) -> KrxLoginState | None:
        raw = self.redis.get(session_key())
        return KrxLoginState(**json.loads(raw)) if raw else None

    def _raise_if_refused(self) -> None:
        raw = self.redis.get(refusal_key())
        if raw is None:
            return
        refusal = json.loads(raw)
        if refusal.get("fingerprint") == self._fingerprint:
            raise KrxLoginError(f"{refusal['message']} (remembered: krxflow does not repeat a refused login; it "
                                f"tries again once the Connection's login or password changes, or after "
                                f"redis-cli DEL {refusal_key()})")

    def _log_in(self) -> KrxLoginState:
        try:
            cookies = self._perform_login()
        except KrxLoginError as exc:
            self.redis.set(refusal_key(), json.dumps({"fingerprint": self._fingerprint, "message": str(exc)}),
                           ex=REFUSAL_TTL)
            raise
        now = time.time()
        state = KrxLoginState(login=self.login, cookies=dict(cookies), logged_in_at=now,
                              expires_at=now + SESSION_LIFETIME, id=uuid.uuid4().hex)
        self.redis.set(session_key(), json.dumps(state.__dict__), ex=SESSION_LIFETIME)
        self.redis.delete(refusal_key())
        log.info("logged in to KRX as %s; the session is shared by every worker until %s", self.login,
                 time.strftime("%H:%M:%S", time.localtime(state.expires_at - RENEW_BEFORE)))
        return state
