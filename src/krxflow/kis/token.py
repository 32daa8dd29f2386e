"""The KIS access token, issued once and shared by every process that uses the same appkey.

KIS issues at most one token per minute per appkey (``EGW00133`` otherwise), sends the account
holder a KakaoTalk message for each issuance and keeps a token valid for 24 h. So krxflow never
fetches a token per call:

* the token lives in Redis (``kis:token:<key_id>``, a hash with ``token`` and ``expires_at``,
  expiring with the token) and in process memory;
* issuance happens under a Redis lock (``SET NX`` with an owner and a TTL), so when ten triggers
  start at once exactly one calls ``/oauth2/tokenP`` and the others read its result;
* a guard key (``kis:token:issued:<key_id>``, TTL = ``token_interval``) records the last issuance
  (or an ``EGW00133`` answer): nobody asks again before it expires;
* ``invalidate(token)`` — called on ``EGW00123``/``EGW00121`` — removes the token from Redis only
  if it is still the one that failed, so a token another process just renewed survives.

When Redis is unreachable the manager keeps using the token it holds in memory (and issues one
itself, still at most once per ``token_interval``), logging a warning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time

from krxflow import redis_client
from krxflow.kis.config import KisConfig
from krxflow.kis.errors import KisConfigError, KisError, KisTokenRateLimited, KisTransientError, classify

log = logging.getLogger(__name__)

#: Renew this many seconds before KIS's stated expiry.
EXPIRY_MARGIN = 300.0
LOCK_TTL_MS = 30_000

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_INVALIDATE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenManager:
    """Hands out the shared access token of one appkey (see module doc).

    :param config: the KIS settings (base URL, appkey/appsecret, ``token_interval``).
    :param redis: a ``redis.asyncio`` client, or None to keep the token in this process only.
    :param session: the ``aiohttp.ClientSession`` to call ``/oauth2/tokenP`` with.
    """

    #: What the credential is called in its Redis keys and in messages.
    credential = "token"
    #: Where it is issued.
    path = "/oauth2/tokenP"

    def __init__(self, config: KisConfig, redis, session) -> None:
        self.config = config
        self.redis = redis
        self.session = session
        self.token_key = redis_client.key("kis", self.credential, config.key_id)
        self.lock_key = redis_client.key("kis", self.credential, "lock", config.key_id)
        self.guard_key = redis_client.key("kis", self.credential, "issued", config.key_id)
        self.issued = 0          # tokens this process obtained from /oauth2/tokenP
        self.renewals = 0        # invalidations after EGW00123/EGW00121
        self.redis_errors = 0
        self._token: str | None = None
        self._expires_at = 0.0
        self._rejected: set[str] = set()
        self._local_guard_until = 0.0
        self._local_lock = asyncio.Lock()
        self._fatal: KisConfigError | None = None  # bad credentials: never ask again

    # ---------------------------------------------------------------- public
    async def get(self) -> str:
        """A valid token: from memory, else from Redis, else issued (once, under the lock)."""
        if self._usable(self._token, self._expires_at):
            return self._token
        async with self._local_lock:  # one coroutine per process does the work
            if self._fatal is not None:
                raise self._fatal
            if self._usable(self._token, self._expires_at):
                return self._token
            if self.redis is None:
                return await self._issue_locally()
            try:
                return await self._get_shared()
            except KisError:
                raise
            except Exception as exc:  # Redis down: carry on with what this process can do alone
                self.redis_errors += 1
                log.warning("KIS token: Redis unavailable (%s); managing the token in-process", exc)
                return await self._issue_locally()

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` after the gateway rejected it (expired or invalid)."""
        self.renewals += 1
        self._rejected.add(token)
        if self._token == token:
            self._token, self._expires_at = None, 0.0
        if self.redis is not None:
            try:
                await self.redis.eval(_INVALIDATE, 1, self.token_key, token)
            except Exception as exc:
                self.redis_errors += 1
                log.warning("KIS token: could not drop the rejected token from Redis: %s", exc)

    # ---------------------------------------------------------------- internals
    def _usable(self, token: str | None, expires_at: float) -> bool:
        return bool(token) and token not in self._rejected and expires_at - EXPIRY_MARGIN > time.time()

    async def _read_shared(self) -> str | None:
        stored = await self.redis.hgetall(self.token_key)
        token, expires_at = stored.get("token"), float(stored.get("expires_at", 0) or 0)
        if self._usable(token, expires_at):
            self._token, self._expires_at = token, expires_at
            return token
        return None

    async def _get_shared(self) -> str:
        owner = secrets.token_hex(8)
        deadline = time.monotonic() + self.config.token_interval * 3 + 60
        while True:
            token = await self._read_shared()
            if token:
                return token
            if await self.redis.set(self.lock_key, owner, nx=True, px=LOCK_TTL_MS):
                break
            if time.monotonic() > deadline:
                raise KisTransientError("KIS token: gave up waiting for another process to issue the token")
            await asyncio.sleep(0.2)
        try:
            token = await self._read_shared()  # issued while we waited for the lock
            if token:
                return token
            guard_ms = await self.redis.pttl(self.guard_key)
            if guard_ms and guard_ms > 0:
                log.warning("KIS token: last issuance was less than %ss ago; waiting %.1fs",
                            self.config.token_interval, guard_ms / 1000)
                await asyncio.sleep(guard_ms / 1000 + 0.05)
            token, expires_at = await self._request_token(shared=True)
            ttl = max(1, int(expires_at - time.time()))
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(self.token_key, mapping={"token": token, "expires_at": repr(expires_at)})
                pipe.expire(self.token_key, ttl)
                await pipe.execute()
            return token
        finally:
            try:
                await self.redis.eval(_RELEASE, 1, self.lock_key, owner)
            except Exception as exc:  # the lock expires on its own
                log.warning("KIS token: could not release the issuance lock: %s", exc)

    async def _issue_locally(self) -> str:
        wait = self._local_guard_until - time.monotonic()
        if wait > 0:
            log.warning("KIS token: waiting %.1fs before asking for a new token (one per %ss)", wait,
                        self.config.token_interval)
            await asyncio.sleep(wait)
        token, _ = await self._request_token(shared=False)
        return token

    async def _set_guard(self, shared: bool) -> None:
        self._local_guard_until = time.monotonic() + self.config.token_interval
        if shared:
            await self.redis.set(self.guard_key, "1", px=int(self.config.token_interval * 1000))

    # ---------------------------------------------------------------- the request (what approval.py varies)
    def _request_body(self) -> dict:
        """The JSON body of the issuance request."""
        return {"grant_type": "client_credentials", "appkey": self.config.appkey, "appsecret": self.config.appsecret}

    def _read_answer(self, payload: dict) -> tuple[str, float] | None:
        """(credential, expiry as epoch seconds) from a successful answer; None when it has none."""
        if not payload.get("access_token"):
            return None
        log.info("KIS token: obtained a token for %s valid until %s KST", self.config.key_id,
                 payload.get("access_token_token_expired"))
        return payload["access_token"], time.time() + float(payload.get("expires_in") or 86400)

    async def _ask(self, *, shared: bool) -> tuple[str, float]:
        """One POST to ``path``: the credential, or the classified :class:`KisError` (fatal for bad credentials)."""
        label = f"KIS {self.credential}"
        url = f"{self.config.base_url}{self.path}"
        try:
            async with self.session.post(url, json=self._request_body(),
                                         headers={"content-type": "application/json"}) as resp:
                status, text = resp.status, await resp.text()
        except (asyncio.TimeoutError, OSError) as exc:
            raise KisTransientError(f"{label}: {url} unreachable: {exc!r}") from exc
        except Exception as exc:  # aiohttp.ClientError
            raise KisTransientError(f"{label}: {url} failed: {exc!r}") from exc
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            raise KisTransientError(f"{label}: HTTP {status} without JSON: {text[:200]!r}", status=status)
        answer = self._read_answer(payload) if status == 200 else None
        if answer is not None:
            await self._set_guard(shared)
            self.issued += 1
            self._token, self._expires_at = answer
            self._rejected.discard(self._token)
            return answer
        error = classify(payload.get("error_code") or payload.get("msg_cd"),
                         payload.get("error_description") or payload.get("msg1") or text[:200], status)
        if not isinstance(error, KisTokenRateLimited) and (isinstance(error, KisConfigError) or status in (401, 403)):
            self._fatal = KisConfigError(str(error), msg_cd=error.msg_cd, status=status)
            raise self._fatal
        raise error

    async def _request_token(self, *, shared: bool) -> tuple[str, float]:
        """POST /oauth2/tokenP, waiting out EGW00133 (at most 3 times)."""
        for attempt in range(1, 4):
            try:
                return await self._ask(shared=shared)
            except KisTokenRateLimited:
                await self._set_guard(shared)
                log.warning("KIS token: EGW00133 (one token per minute); waiting %ss (attempt %d)",
                            self.config.token_interval, attempt)
                await asyncio.sleep(self.config.token_interval + 0.5)
        raise KisTokenRateLimited("KIS token: still EGW00133 after three waits", msg_cd="EGW00133", status=403)
