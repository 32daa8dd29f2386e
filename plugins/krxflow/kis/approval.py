"""The WebSocket approval key (``POST /oauth2/Approval``), shared and cached like the access token.

KIS's realtime WebSocket authenticates each subscribe message with an ``approval_key``
(valid 24 h; an established session keeps working). Asking for one on every (re)connect is what
KIS warns can get an appkey blocked, so the key is handled exactly like the REST token
(:class:`~krxflow.kis.token.TokenManager`: one issuance under a Redis lock, cached in Redis as
``kis:approval:<key_id>`` and in memory, at most one request per ``token_interval``,
``invalidate`` after the gateway refuses it with ``OPSP0011``). Only the request differs: the
body names the secret ``secretkey`` and the answer is ``{"approval_key": …}`` without a lifetime.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from krxflow import cache
from krxflow.kis.errors import KisConfigError, KisTransientError, classify
from krxflow.kis.token import TokenManager

log = logging.getLogger(__name__)

#: KIS: an approval key is valid for 24 hours.
APPROVAL_LIFETIME_SECONDS = 86400.0


class ApprovalKeyManager(TokenManager):
    """Hands out the shared WebSocket approval key of one appkey (see module doc)."""

    def __init__(self, config, redis, session) -> None:
        super().__init__(config, redis, session)
        self.token_key = cache.key("kis", "approval", config.key_id)
        self.lock_key = cache.key("kis", "approval", "lock", config.key_id)
        self.guard_key = cache.key("kis", "approval", "issued", config.key_id)

    async def _request_token(self, *, shared: bool) -> tuple[str, float]:
        body = {"grant_type": "client_credentials", "appkey": self.config.appkey,
                "secretkey": self.config.appsecret}
        url = f"{self.config.base_url}/oauth2/Approval"
        try:
            async with self.session.post(url, json=body, headers={"content-type": "application/json"}) as resp:
                status, text = resp.status, await resp.text()
        except (asyncio.TimeoutError, OSError) as exc:
            raise KisTransientError(f"KIS approval: {url} unreachable: {exc!r}") from exc
        except Exception as exc:  # aiohttp.ClientError
            raise KisTransientError(f"KIS approval: {url} failed: {exc!r}") from exc
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            raise KisTransientError(f"KIS approval: HTTP {status} without JSON: {text[:200]!r}", status=status)
        if status == 200 and payload.get("approval_key"):
            await self._set_guard(shared)
            self.issued += 1
            expires_at = time.time() + APPROVAL_LIFETIME_SECONDS
            self._token, self._expires_at = payload["approval_key"], expires_at
            self._rejected.discard(self._token)
            log.info("KIS approval: obtained a WebSocket approval key for %s", self.config.key_id)
            return self._token, expires_at
        error = classify(payload.get("error_code") or payload.get("msg_cd"),
                         payload.get("error_description") or payload.get("msg1") or text[:200], status)
        if isinstance(error, KisConfigError) or status in (401, 403):
            self._fatal = KisConfigError(str(error), msg_cd=error.msg_cd, status=status)
            raise self._fatal
        raise error
