"""A faithful fake of the KIS (한국투자증권) Open API REST gateway, for tests, the bench and the demo.

It follows ``shared/reference/kis-open-api.md``:

* ``POST /oauth2/tokenP`` — validates appkey/appsecret (403 ``EGW00103``/``EGW00105`` in the
  ``error_code``/``error_description`` envelope), answers 403 ``EGW00133`` when the appkey got a
  token less than ``token_interval`` seconds ago (60 s like KIS), returns the *same* token within
  6 h of issuance, else mints a new one (``expires_in`` 86400, KST expiry string).
* ``GET …/quotations/inquire-price`` (``FHKST01010100``) and
  ``GET …/quotations/inquire-asking-price-exp-ccn`` (``FHKST01010200``): require
  ``authorization: Bearer``, ``appkey``, ``appsecret`` and the matching ``tr_id``; query names are
  case-insensitive; every value is a string. Prices move on the KRX tick grid, cumulative volume
  grows, books are laddered around the price; a ticker only changes on some polls, so repeated
  polls see unchanged quotes (what the client's dedupe is for).
* Errors are HTTP 500 gateway JSON: ``EGW00201`` from a per-appkey sliding one-second window
  (``rate`` requests), ``EGW00123`` for an expired token, ``EGW00121`` for an unknown one,
  ``EGW00205`` without "Bearer", ``EGW02004`` for a key of the other environment.
* Halted tickers (``iscd_stat_cls_code`` 58, ``temp_stop_yn`` Y, volume frozen), unknown tickers
  (rt_cd 0 with a zero-filled ``output``, as KIS does), injected 5xx answers and slow answers.
* Daily limits as KRX sets them: ±30 % of the base price (``stck_sdpr``), the upper limit rounded
  down and the lower one up to the tick grid; prices never leave them.
* ``--sample`` (what ``make run`` starts in sample mode): a ticker of the offline sample market
  (:class:`krxflow.sample.market.SampleMarket`) starts from its close on the last session before
  today (KST), so the Intraday and Stock dashboards agree; other tickers get a made-up base.

Tests drive it in-process (:class:`FakeKis` + :func:`serve`) or over HTTP through the
``/_fake/*`` control endpoints when it runs as a process::

    python -m krxflow.sample.kis_server --host 127.0.0.1 --port 18080 [--rate 18] [--env live|paper] [--sample]

Control endpoints (JSON): ``GET /_fake/stats``, ``POST /_fake/expire_tokens``,
``POST /_fake/config`` (``rate``, ``token_interval``, ``move_probability``, ``halted``,
``unknown``, ``fail_next`` (n answers 500 without a KIS body), ``slow_next`` (n answers delayed by
``slow_seconds``)), ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from aiohttp import web

from krxflow.market_time import KST, kst_today
from krxflow.sample import kis_minute_bars
from krxflow.sample.serving import FakeAppThread, free_port, serve_app

__all__ = ["DEMO_APPKEY", "DEMO_APPSECRET", "FakeKis", "FakeKisThread", "OTHER_ENV_APPKEY", "connection_json",
           "free_port", "make_app", "price_limits", "sample_base", "serve", "tick_size"]

#: Demo credentials: what ``make run`` puts into the ``kis_default`` Connection.
DEMO_APPKEY = "PSfakeKrxflowDemoAppKey0000000000000"
DEMO_APPSECRET = "fake-krxflow-demo-appsecret"
#: A key that belongs to the *other* environment (answers EGW02004).
OTHER_ENV_APPKEY = "PSotherEnvironmentAppKey000000000000"

TR_PRICE = "FHKST01010100"
TR_BOOK = "FHKST01010200"
PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
BOOK_PATH = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"

TOKEN_REUSE_SECONDS = 6 * 3600
TOKEN_LIFETIME_SECONDS = 86400


def tick_size(price: int) -> int:
    """KRX tick size (호가단위) since 2023 for KOSPI/KOSDAQ stocks."""
    for bound, tick in ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500)):
        if price < bound:
            return tick
    return 1_000


def price_limits(base: int) -> tuple[int, int]:
    """(lower, upper) daily limit for base price ``base``: ±30 %, inside the band on the tick grid."""
    upper = base * 13 // 10
    upper -= upper % tick_size(upper)
    lower = -(-base * 7 // 10)
    if lower % tick_size(lower):
        lower += tick_size(lower) - lower % tick_size(lower)
    return lower, upper


def sample_base(code: str, today: dt.date | None = None) -> int | None:
    """The sample market's close of ``code`` on the last session before ``today`` (KST); None if it has none."""
    from krxflow.calendar import previous_trading_day
    from krxflow.sample.market import SampleMarket
    from krxflow.sample.sessions import session_index

    market = SampleMarket()
    if market.profile(code) is None:
        return None
    day = previous_trading_day(today or kst_today())
    i = session_index(day)
    series = market.series(code)
    if i < 0 or not series["trading"][i]:
        return None
    return int(series["close"][i])


@dataclass
class _Ticker:
    """The simulated state of one stock; ``version`` changes whenever anything visible changes."""

    code: str
    base: int
    price: int
    open: int
    high: int
    low: int
    volume: int = 0
    value: int = 0
    version: int = 0

    @classmethod
    def create(cls, code: str, base: int | None = None) -> "_Ticker":
        if base is None:
            rng = random.Random(f"base-{code}")
            raw = int(10 ** rng.uniform(3.2, 5.6))
            base = raw - raw % tick_size(raw)
        return cls(code=code, base=base, price=base, open=base, high=base, low=base)

    @property
    def limits(self) -> tuple[int, int]:
        return price_limits(self.base)

    def trade(self, rng: random.Random) -> None:
        lower, upper = self.limits
        price = self.price + rng.randint(-2, 2) * tick_size(self.price)
        price -= price % tick_size(price)
        self.price = min(upper, max(lower, price))
        self.high, self.low = max(self.high, self.price), min(self.low, self.price)
        shares = rng.randint(1, 500) * 10
        self.volume += shares
        self.value += shares * self.price
        self.version += 1


@dataclass
class _Token:
    value: str
    issued: float
    expires: float
    expired: bool = False


@dataclass
class FakeKis:
    """State and behaviour of one fake KIS environment (live or paper)."""

    env: str = "live"
    rate: int | None = None
    accounts: dict[str, str] = field(default_factory=lambda: {DEMO_APPKEY: DEMO_APPSECRET})
    other_env_accounts: dict[str, str] = field(default_factory=lambda: {OTHER_ENV_APPKEY: "other-secret"})
    token_interval: float = 60.0
    move_probability: float = 0.6
    halted: set[str] = field(default_factory=lambda: {"000001"})
    unknown: set[str] = field(default_factory=lambda: {"999999"})
    seed: int = 7
    #: Quote the offline sample market (see the module doc): base = its last close before today.
    sample: bool = False

    def __post_init__(self) -> None:
        if self.rate is None:
            self.rate = 18 if self.env == "live" else 1
        self.reset()

    def reset(self) -> None:
        self.rng = random.Random(self.seed)
        self.tickers: dict[str, _Ticker] = {}
        self.tokens: dict[str, _Token] = {}          # appkey -> current token
        self.token_owner: dict[str, str] = {}        # token -> appkey
        self.last_issuance: dict[str, float] = {}    # appkey -> time of the last tokenP answer with a token
        self.window: dict[str, deque] = defaultdict(deque)
        self.fail_next = 0
        self.slow_next = 0
        self.slow_seconds = 2.0
        self.counts: dict[str, int] = defaultdict(int)
        self.max_in_window = 0
        self.arrivals: list[float] = []

    # ---------------------------------------------------------------- domain
    def ticker(self, code: str) -> _Ticker:
        if code not in self.tickers:
            self.tickers[code] = _Ticker.create(code, sample_base(code) if self.sample else None)
        return self.tickers[code]

    def poll(self, code: str) -> _Ticker:
        """The ticker as seen now: trades happen between some polls, never for a halted stock."""
        state = self.ticker(code)
        if code not in self.halted and self.rng.random() < self.move_probability:
            state.trade(self.rng)
        return state

    def issue_token(self, appkey: str, appsecret: str) -> tuple[int, dict]:
        self.counts["token_requests"] += 1
        if appkey not in self.accounts:
            return 403, {"error_description": "유효하지 않은 AppKey입니다.", "error_code": "EGW00103"}
        if self.accounts[appkey] != appsecret:
            return 403, {"error_description": "유효하지 않은 AppSecret입니다.", "error_code": "EGW00105"}
        now = time.time()
        current = self.tokens.get(appkey)
        last = self.last_issuance.get(appkey)
        if last is not None and now - last < self.token_interval:
            self.counts["token_throttled"] += 1
            return 403, {"error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)", "error_code": "EGW00133"}
        if current is not None and not current.expired and now - current.issued < TOKEN_REUSE_SECONDS:
            self.last_issuance[appkey] = now
            return 200, self._token_body(current)
        self.last_issuance[appkey] = now
        token = _Token(value="fake." + secrets.token_urlsafe(48), issued=now, expires=now + TOKEN_LIFETIME_SECONDS)
        self.tokens[appkey] = token
        self.token_owner[token.value] = appkey
        self.counts["tokens_issued"] += 1
        return 200, self._token_body(token)

    @staticmethod
    def _token_body(token: _Token) -> dict:
        expiry = dt.datetime.fromtimestamp(token.expires, KST).strftime("%Y-%m-%d %H:%M:%S")
        return {"access_token": token.value, "access_token_token_expired": expiry, "token_type": "Bearer",
                "expires_in": max(0, int(token.expires - time.time()))}

    def expire_tokens(self) -> int:
        """Make the gateway consider every issued token expired (EGW00123 from now on)."""
        for token in self.tokens.values():
            token.expired = True
        return len(self.tokens)

    def admit(self, appkey: str) -> bool:
        """Per-appkey sliding one-second window; rejected calls are not counted against the window."""
        now = time.monotonic()
        window = self.window[appkey]
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.rate:
            return False
        window.append(now)
        self.max_in_window = max(self.max_in_window, len(window))
        return True

    # ---------------------------------------------------------------- bodies
    def price_output(self, code: str) -> dict:
        if code in self.unknown:
            zero = {k: "0" for k in ("stck_prpr", "prdy_vrss", "prdy_ctrt", "acml_vol", "acml_tr_pbmn", "stck_oprc",
                                     "stck_hgpr", "stck_lwpr", "stck_mxpr", "stck_llam", "stck_sdpr")}
            return {**zero, "prdy_vrss_sign": "3", "iscd_stat_cls_code": "00", "temp_stop_yn": "N",
                    "stck_shrn_iscd": "", "aspr_unit": "1"}
        s = self.poll(code)
        change = s.price - s.base
        sign = "3" if change == 0 else ("2" if change > 0 else "5")
        halted = code in self.halted
        return {
            "iscd_stat_cls_code": "58" if halted else "55", "marg_rate": "20.00", "rprs_mrkt_kor_name": "KOSPI",
            "temp_stop_yn": "Y" if halted else "N", "stck_prpr": str(s.price), "prdy_vrss": str(change),
            "prdy_vrss_sign": sign, "prdy_ctrt": f"{change * 100 / s.base:.2f}", "acml_tr_pbmn": str(s.value),
            "acml_vol": str(s.volume), "prdy_vrss_vol_rate": "12.50", "stck_oprc": str(s.open),
            "stck_hgpr": str(s.high), "stck_lwpr": str(s.low), "stck_mxpr": str(s.limits[1]),
            "stck_llam": str(s.limits[0]), "stck_sdpr": str(s.base),
            "wghn_avrg_stck_prc": f"{(s.value / s.volume) if s.volume else s.price:.2f}",
            "aspr_unit": str(tick_size(s.price)), "hts_avls": str(s.price * 1_000_000 // 100_000_000),
            "lstn_stcn": "1000000", "per": "10.00", "pbr": "1.00", "stck_shrn_iscd": code,
            "vi_cls_code": "N", "ovtm_vi_cls_code": "N", "mrkt_warn_cls_code": "00", "sltr_yn": "N",
            "mang_issu_cls_code": "N", "invt_caful_yn": "N", "short_over_yn": "N", "ssts_yn": "Y",
        }

    def book_outputs(self, code: str) -> tuple[dict, dict]:
        if code in self.unknown:
            return {}, {}
        s = self.poll(code)
        rng = random.Random(f"book-{code}-{s.version}")
        book: dict[str, str] = {"aspr_acpt_hour": dt.datetime.now(KST).strftime("%H%M%S")}
        ask = s.price + tick_size(s.price)
        bid = s.price
        total_ask = total_bid = 0
        lower, upper = s.limits
        for level in range(1, 11):
            # no orders outside the daily limits: KIS sends 0 for an empty level
            ask_open, bid_open = ask <= upper, lower <= bid
            book[f"askp{level}"] = str(ask if ask_open else 0)
            book[f"bidp{level}"] = str(bid if bid_open else 0)
            ask_qty = rng.randint(1, 5000) * 10 if ask_open else 0
            bid_qty = rng.randint(1, 5000) * 10 if bid_open else 0
            book[f"askp_rsqn{level}"], book[f"bidp_rsqn{level}"] = str(ask_qty), str(bid_qty)
            book[f"askp_rsqn_icdc{level}"] = str(rng.randint(-50, 50))
            book[f"bidp_rsqn_icdc{level}"] = str(rng.randint(-50, 50))
            total_ask, total_bid = total_ask + ask_qty, total_bid + bid_qty
            ask += tick_size(ask)
            bid = max(0, bid - tick_size(max(1, bid - 1)))
        book.update({"total_askp_rsqn": str(total_ask), "total_bidp_rsqn": str(total_bid),
                     "total_askp_rsqn_icdc": "0", "total_bidp_rsqn_icdc": "0", "ovtm_total_askp_icdc": "0",
                     "ovtm_total_bidp_icdc": "0", "ovtm_total_askp_rsqn": "0", "ovtm_total_bidp_rsqn": "0",
                     "ntby_aspr_rsqn": str(total_bid - total_ask), "new_mkop_cls_code": "20"})
        expected = {"antc_mkop_cls_code": "112", "stck_prpr": str(s.price), "stck_oprc": str(s.open),
                    "stck_hgpr": str(s.high), "stck_lwpr": str(s.low), "stck_sdpr": str(s.base), "antc_cnpr": "0",
                    "antc_cntg_vrss_sign": "3", "antc_cntg_vrss": "0", "antc_cntg_prdy_ctrt": "0.00",
                    "antc_vol": "0", "stck_shrn_iscd": code, "vi_cls_code": "N"}
        return book, expected

    def stats(self) -> dict:
        return {**self.counts, "max_in_window": self.max_in_window, "rate": self.rate, "env": self.env,
                "tokens_outstanding": len(self.tokens)}


# -------------------------------------------------------------------- HTTP layer
def _gateway_error(msg_cd: str, msg1: str, status: int = 500) -> web.Response:
    return web.json_response({"rt_cd": "1", "msg1": msg1, "msg_cd": msg_cd}, status=status)


def _ok_headers(tr_id: str) -> dict[str, str]:
    return {"tr_id": tr_id, "tr_cont": "", "gt_uid": secrets.token_hex(16)}


def make_app(fake: FakeKis) -> web.Application:
    """The aiohttp application serving ``fake``."""

    async def token(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error_description": "잘못된 요청입니다.", "error_code": "EGW00132"}, status=403)
        appkey, appsecret = str(body.get("appkey", "")), str(body.get("appsecret", ""))
        if body.get("grant_type") != "client_credentials":
            return web.json_response({"error_description": "grant_type 이 유효하지 않습니다.", "error_code": "EGW00101"},
                                     status=403)
        status, payload = fake.issue_token(appkey, appsecret)
        return web.json_response(payload, status=status)

    async def quote(request: web.Request, tr_id: str, answer=None) -> web.Response:
        """The gateway's checks, then ``tr_id``'s answer (``answer(query, code)``: a body or a Response)."""
        fake.counts["requests"] += 1
        fake.arrivals.append(time.monotonic())
        if fake.slow_next > 0:
            fake.slow_next -= 1
            fake.counts["slow"] += 1
            await asyncio.sleep(fake.slow_seconds)
        if fake.fail_next > 0:
            fake.fail_next -= 1
            fake.counts["injected_5xx"] += 1
            return web.Response(status=503, text="Service Temporarily Unavailable")
        headers = {k.lower(): v for k, v in request.headers.items()}
        appkey = headers.get("appkey", "")
        if appkey in fake.other_env_accounts:
            fake.counts["wrong_domain"] += 1
            return _gateway_error("EGW02004", "실전투자 도메인은 모의투자 앱키로 호출하실 수 없습니다."
                                  if fake.env == "live" else "모의투자 도메인은 실전투자 앱키로 호출하실 수 없습니다.")
        if appkey not in fake.accounts:
            return _gateway_error("EGW00103", "유효하지 않은 AppKey입니다.")
        if fake.accounts[appkey] != headers.get("appsecret"):
            return _gateway_error("EGW00105", "유효하지 않은 AppSecret입니다.")
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _gateway_error("EGW00205", "credentials_type이 유효하지 않습니다.(Bearer)")
        token = fake.tokens.get(appkey)
        presented = auth[len("Bearer "):]
        if token is None or fake.token_owner.get(presented) != appkey or presented != token.value:
            fake.counts["invalid_token"] += 1
            return _gateway_error("EGW00121", "유효하지 않은 token 입니다.")
        if token.expired or token.expires <= time.time():
            fake.counts["expired_token"] += 1
            return _gateway_error("EGW00123", "기간이 만료된 token 입니다.")
        if headers.get("tr_id") != tr_id:
            return _gateway_error("OPSQ9999", "tr_id 가 유효하지 않습니다.")
        if not fake.admit(appkey):
            fake.counts["throttled"] += 1
            return _gateway_error("EGW00201", "초당 거래건수를 초과하였습니다.")
        query = {k.upper(): v for k, v in request.query.items()}
        code = query.get("FID_INPUT_ISCD", "")
        if query.get("FID_COND_MRKT_DIV_CODE") not in ("J", "NX", "UN") or not code:
            return _gateway_error("OPSQ0002", "필수항목 입력값이 누락되었습니다.")
        if answer is not None:
            body = answer(query, code)
            if isinstance(body, web.Response):
                return body
            fake.counts["served"] += 1
            return web.json_response(body, headers=_ok_headers(tr_id))
        fake.counts["served"] += 1
        envelope = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다."}
        if tr_id == TR_PRICE:
            return web.json_response({"output": fake.price_output(code), **envelope}, headers=_ok_headers(tr_id))
        book, expected = fake.book_outputs(code)
        return web.json_response({"output1": book, "output2": expected, **envelope}, headers=_ok_headers(tr_id))

    async def price(request: web.Request) -> web.Response:
        return await quote(request, TR_PRICE)

    async def book(request: web.Request) -> web.Response:
        return await quote(request, TR_BOOK)

    async def control_stats(request: web.Request) -> web.Response:
        return web.json_response(fake.stats())

    async def control_expire(request: web.Request) -> web.Response:
        return web.json_response({"expired": fake.expire_tokens()})

    async def control_reset(request: web.Request) -> web.Response:
        fake.reset()
        return web.json_response({"reset": True})

    async def control_config(request: web.Request) -> web.Response:
        body = await request.json()
        for name in ("rate", "token_interval", "move_probability", "fail_next", "slow_next", "slow_seconds"):
            if name in body:
                setattr(fake, name, type(getattr(fake, name))(body[name]))
        for name in ("halted", "unknown"):
            if name in body:
                setattr(fake, name, set(body[name]))
        return web.json_response({"ok": True, **fake.stats()})

    app = web.Application()
    app.router.add_post("/oauth2/tokenP", token)
    app.router.add_get(PRICE_PATH, price)
    app.router.add_get(BOOK_PATH, book)
    fake.minute_bars = kis_minute_bars.register(app, fake, quote, getattr(fake, "minute_bars", None)
                                                or kis_minute_bars.MinuteBarMarket(KST))
    app.router.add_get("/_fake/stats", control_stats)
    app.router.add_post("/_fake/expire_tokens", control_expire)
    app.router.add_post("/_fake/reset", control_reset)
    app.router.add_post("/_fake/config", control_config)
    return app


async def serve(fake: FakeKis, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start ``fake`` on ``host:port`` in the running loop; returns the runner and the base URL."""
    return await serve_app(make_app(fake), host, port)


class FakeKisThread(FakeAppThread):
    """Serve a :class:`FakeKis` from a background thread with its own event loop.

    For tests: the client under test (in the test's loop, or in subprocesses) talks to it over
    loopback HTTP, and the test reads/changes ``.fake`` directly::

        with FakeKisThread(FakeKis(rate=18)) as server:
            server.url, server.fake.stats()
    """

    thread_name = "fake-kis"
    fake_class = FakeKis

    def app(self) -> web.Application:
        return make_app(self.fake)

    def connection_json(self, appkey: str = DEMO_APPKEY, appsecret: str = DEMO_APPSECRET, **extra) -> str:
        """An ``AIRFLOW_CONN_KIS_DEFAULT`` value (JSON form) pointing at this server."""
        return connection_json(self.url, appkey, appsecret, env=self.fake.env, **extra)


def connection_json(url: str, appkey: str = DEMO_APPKEY, appsecret: str = DEMO_APPSECRET, **extra) -> str:
    """The ``kis_default`` Connection for a fake server at ``url`` (JSON form of AIRFLOW_CONN_*)."""
    extra.setdefault("env", "live")
    return json.dumps({"conn_type": "http", "host": url, "login": appkey, "password": appsecret, "extra": extra})


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    """The REST gateway's options, shared with :mod:`krxflow.sample.kis_ws_server`'s command line."""
    parser.add_argument("--env", choices=("live", "paper"), default="live")
    parser.add_argument("--rate", type=int, default=None, help="requests per second per appkey (18 live, 1 paper)")
    parser.add_argument("--token-interval", type=float, default=60.0, help="seconds between token issuances")
    parser.add_argument("--appkey", default=DEMO_APPKEY)
    parser.add_argument("--appsecret", default=DEMO_APPSECRET)
    parser.add_argument("--move-probability", type=float, default=0.6)
    parser.add_argument("--sample", action="store_true",
                        help="quote the offline sample market from its last close (KRXFLOW_SAMPLE_TICKERS tickers)")


def gateway_of(args: argparse.Namespace) -> FakeKis:
    """The REST fake the options of :func:`add_gateway_arguments` describe (the sample market loaded first)."""
    if args.sample:  # load the sample market before serving
        sample_base("005930")
    return FakeKis(env=args.env, rate=args.rate, accounts={args.appkey: args.appsecret},
                   token_interval=args.token_interval, move_probability=args.move_probability, sample=args.sample)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake KIS Open API gateway (loopback only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    add_gateway_arguments(parser)
    args = parser.parse_args(argv)
    fake = gateway_of(args)
    print(f"fake KIS ({args.env}, {fake.rate} req/s{', sample market' if args.sample else ''}) "
          f"on http://{args.host}:{args.port}", flush=True)
    web.run_app(make_app(fake), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
