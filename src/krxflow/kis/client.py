"""The asynchronous KIS REST client: current price and order book, within KIS's rules.

One :class:`KisClient` per appkey and event loop, used as an async context manager::

    async with KisClient(config, redis=redis_client.async_client()) as kis:
        output = await kis.inquire_price("005930")
        book, expected = await kis.inquire_asking_price("005930")

Every call: waits for the shared :class:`~krxflow.kis.ratelimit.RateLimiter`, takes the shared
token from :class:`~krxflow.kis.token.TokenManager`, sends the KIS headers, and reads the answer
checking *both* the HTTP status and ``rt_cd`` (KIS's normal error path is HTTP 500 with
``msg_cd``). The limiter's slot is confirmed at the last await before the request's bytes go out
(aiohttp's connection trace: a new connection awaits the loop, and a stall there would send the
call late, with the next slots' calls): :meth:`~krxflow.kis.ratelimit.RateLimiter.confirm`.
Then, by error:

* ``EGW00201`` (over the per-second limit) → exponential backoff from 100 ms with jitter, retry;
* ``EGW00123``/``EGW00121`` (token expired/invalid) → renew the shared token once, retry;
* 5xx without a KIS body, timeouts, dropped connections → backoff, up to ``max_retries``;
* bad appkey/appsecret, other environment's key (``EGW02004``), bad headers → :class:`KisConfigError`
  at once, no retry loop.

:class:`ClientStats` counts requests, successes, throttles, retries and errors; the polling
trigger reports them per window.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import asdict, dataclass

from krxflow.kis.config import KisConfig
from krxflow.kis.errors import (KisError, KisResponseError, KisThrottled, KisTokenRejected, KisTransientError,
                                classify)
from krxflow.kis.ratelimit import RateLimiter
from krxflow.kis.token import TokenManager

log = logging.getLogger(__name__)

PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
BOOK_PATH = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
TR_PRICE = "FHKST01010100"
TR_BOOK = "FHKST01010200"


@dataclass
class ClientStats:
    """What a client did: every HTTP call is a request; a success is an answer with ``rt_cd`` 0."""

    requests: int = 0
    successes: int = 0
    throttles: int = 0
    retries: int = 0
    errors: int = 0
    token_renewals: int = 0
    limiter_fallbacks: int = 0
    late_slots: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


#: ``trace_request_ctx`` of the calls that took a limiter slot (see :meth:`KisClient._confirm_slot`).
_PACED = object()


class KisClient:
    """Async KIS quotation client (see module doc).

    :param config: base URL, credentials, rate.
    :param redis: ``redis.asyncio`` client shared by the token manager and the rate limiter
        (None: both stay in this process — fine for one-off scripts, not for production).
    :param max_retries: retries of transient failures per call.
    :param max_throttle_retries: retries of ``EGW00201`` per call.
    """

    def __init__(self, config: KisConfig, redis=None, *, max_retries: int = 4, max_throttle_retries: int = 30,
                 limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.redis = redis
        self.max_retries = max_retries
        self.max_throttle_retries = max_throttle_retries
        self.limiter = limiter or RateLimiter(redis, config.key_id, config.rate, config.rate_margin)
        self.stats = ClientStats()
        self.session = None
        self.tokens: TokenManager | None = None

    async def __aenter__(self) -> "KisClient":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=32, ttl_dns_cache=300)
        # Called by aiohttp when the request has its connection, new or pooled: nothing awaits the
        # loop after it before the request is written.
        paced = aiohttp.TraceConfig()
        paced.on_connection_create_end.append(self._confirm_slot)
        paced.on_connection_reuseconn.append(self._confirm_slot)
        self.session = aiohttp.ClientSession(connector=connector, trace_configs=[paced],
                                             timeout=aiohttp.ClientTimeout(total=self.config.timeout))
        self.tokens = TokenManager(self.config, self.redis, self.session)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def _confirm_slot(self, session, trace_config_ctx, params) -> None:
        """aiohttp trace callback: a paced call (not the token's) confirms its limiter slot."""
        if trace_config_ctx.trace_request_ctx is _PACED:
            await self.limiter.confirm()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    # ---------------------------------------------------------------- endpoints
    async def inquire_price(self, ticker: str) -> dict:
        """``inquire-price`` (FHKST01010100): the ``output`` object (strings, as KIS sends them)."""
        body = await self.get(PRICE_PATH, TR_PRICE, self._params(ticker))
        return body.get("output") or {}

    async def inquire_asking_price(self, ticker: str) -> tuple[dict, dict]:
        """``inquire-asking-price-exp-ccn`` (FHKST01010200): ``output1`` (book), ``output2`` (expected)."""
        body = await self.get(BOOK_PATH, TR_BOOK, self._params(ticker))
        return body.get("output1") or {}, body.get("output2") or {}

    def _params(self, ticker: str) -> dict:
        return {"FID_COND_MRKT_DIV_CODE": self.config.market, "FID_INPUT_ISCD": ticker}

    # ---------------------------------------------------------------- transport
    async def get(self, path: str, tr_id: str, params: dict) -> dict:
        """One KIS GET with pacing, shared token and the retry rules of the module doc."""
        if self.session is None:
            raise RuntimeError("use KisClient as 'async with KisClient(...) as kis'")
        transient = throttled = 0
        renewed = False
        while True:
            # The token first: the limiter's slot is only good if the call goes out right after it
            # (a first call that waited for /oauth2/tokenP behind its slot would go out in a burst).
            token = await self.tokens.get()
            await self.limiter.acquire()
            self.stats.limiter_fallbacks = self.limiter.fallbacks
            self.stats.late_slots = self.limiter.late_slots
            try:
                return await self._call(path, tr_id, params, token)
            except KisThrottled:
                self.stats.throttles += 1
                throttled += 1
                if throttled > self.max_throttle_retries:
                    self.stats.errors += 1
                    raise
                await self._backoff(throttled)
            except KisTokenRejected as exc:
                if renewed:
                    self.stats.errors += 1
                    raise
                log.warning("KIS: %s — renewing the shared token", exc)
                renewed = True
                self.stats.token_renewals += 1
                await self.tokens.invalidate(token)
            except KisTransientError as exc:
                transient += 1
                if transient > self.max_retries:
                    self.stats.errors += 1
                    raise
                log.info("KIS: %s — retry %d/%d", exc, transient, self.max_retries)
                await self._backoff(transient)
            except KisError:
                self.stats.errors += 1
                raise
            self.stats.retries += 1

    async def _call(self, path: str, tr_id: str, params: dict, token: str) -> dict:
        import aiohttp

        headers = {"content-type": "application/json; charset=utf-8", "authorization": f"Bearer {token}",
                   "appkey": self.config.appkey, "appsecret": self.config.appsecret, "tr_id": tr_id,
                   "custtype": "P"}
        self.stats.requests += 1
        try:
            async with self.session.get(self.config.base_url + path, params=params, headers=headers,
                                        trace_request_ctx=_PACED) as resp:
                status, text = resp.status, await resp.text()
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KisTransientError(f"KIS {tr_id} {params.get('FID_INPUT_ISCD')}: {exc!r}") from exc
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            if status >= 500 or status == 429:
                raise KisTransientError(f"KIS {tr_id}: HTTP {status} without a KIS body: {text[:120]!r}",
                                        status=status)
            raise KisResponseError(f"KIS {tr_id}: HTTP {status}, not JSON: {text[:120]!r}", status=status)
        if status == 200 and str(body.get("rt_cd")) == "0":
            self.stats.successes += 1
            return body
        raise classify(body.get("msg_cd") or body.get("error_code"),
                       body.get("msg1") or body.get("error_description") or text[:200], status)

    @staticmethod
    async def _backoff(attempt: int) -> None:
        delay = min(2.0, 0.1 * 2 ** (attempt - 1))
        await asyncio.sleep(delay * (0.75 + random.random() / 2))
