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

import logging
import time

from krxflow.kis.token import TokenManager

log = logging.getLogger(__name__)

#: KIS: an approval key is valid for 24 hours.
APPROVAL_LIFETIME_SECONDS = 86400.0


class ApprovalKeyManager(TokenManager):
    """Hands out the shared WebSocket approval key of one appkey (see module doc)."""

    credential = "approval"
    path = "/oauth2/Approval"

    def _request_body(self) -> dict:
        return {"grant_type": "client_credentials", "appkey": self.config.appkey, "secretkey": self.config.appsecret}

    def _read_answer(self, payload: dict) -> tuple[str, float] | None:
        if not payload.get("approval_key"):
            return None
        log.info("KIS approval: obtained a WebSocket approval key for %s", self.config.key_id)
        return payload["approval_key"], time.time() + APPROVAL_LIFETIME_SECONDS

    async def _request_token(self, *, shared: bool) -> tuple[str, float]:
        """POST /oauth2/Approval once (KIS has no one-per-minute answer for approval keys)."""
        return await self._ask(shared=shared)
