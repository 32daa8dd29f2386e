"""The official KRX Open API (openapi.krx.co.kr) as a :class:`~krxflow.krx.interface.KrxSource`: a second,
sanctioned path to KRX's daily data that never touches the member portal (data.krx.co.kr).

Wire: ``GET {host}/svc/apis/sto/{api_id}.json?basDd=YYYYMMDD`` with the header ``AUTH_KEY`` (see
``shared/reference/dart-krx-openapi-universes.md`` §2). Exactly one date per call; every value a
string, ``"-"`` missing; a session is published the next morning, and until then (and on
holidays) the answer is an empty ``OutBlock_1``.

* **Configuration**: the ``krx_openapi_default`` Airflow Connection — the key in its password, the
  host (default :data:`DEFAULT_HOST`) overridable for the local fake
  (:mod:`krxflow.sample.krx_openapi_server`).
* **Its own gate**: a :class:`~krxflow.krx.pacing.Pacer` of the service ``krx_openapi`` (one request
  in flight installation-wide, ``KRXFLOW_KRX_OPENAPI_MIN_INTERVAL`` seconds between answer and next
  send, default 0.2), independent of the portal's circuit.
* **A daily budget counted in Redis** (:class:`DailyBudget`): every call takes one unit of the KST
  day's count *before* it is sent; past ``KRXFLOW_KRX_OPENAPI_DAILY_BUDGET`` (default 9,500, short of
  KRX's 10,000 calls/key/day) nothing is sent and :class:`KrxOpenApiBudgetError` says so.
* **One session** = per market the daily trading (``stk_bydd_trd`` / ``ksq_bydd_trd``): two calls. The
  daily trading carries the short code but no ISIN; the ISINs are kept installation-wide in Redis
  (:func:`isin_key`, short code → ISIN, a code's ISIN does not change) and the base information
  (``*_isu_base_info``) is asked only for a market whose session lists a code not known yet: first,
  once a day, that of the newest published session (every code listed today), then, if the code is
  still unknown (listed and delisted since), that of the session itself. An empty answer
  for a session the XKRX calendar says was open is :class:`~krxflow.krx.errors.KrxNotPublishedError`:
  nothing is written, the task's retries load it once KRX has published it.

The rows go through the portal's parser (:func:`krxflow.krx.parsing.market_day_frame`), so both
paths give the same columns and conversions.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter

import pandas as pd

from krxflow import redis_client
from krxflow.krx.errors import (KrxBadAnswerError, KrxHttpError, KrxNotPublishedError, KrxOpenApiBudgetError,
                                KrxOpenApiKeyError, KrxSourceError)
from krxflow.krx.interface import (DAILY_COLUMNS, DELISTED_COLUMNS, KRX_ADJUSTED_COLUMNS, LISTING_COLUMNS,
                                   MARKET_DAY_COLUMNS, KrxSource)
from krxflow.krx.pacing import Pacer, take_from_daily_budget
from krxflow.settings import number_setting
from krxflow.market_time import kst_date, kst_today

log = logging.getLogger(__name__)

CONN_ID = "krx_openapi_default"
DEFAULT_HOST = "https://data-dbg.krx.co.kr"
SERVICE = "krx_openapi"
#: KRX's terms: 10,000 calls per key per day (00-24 h KST).
KRX_DAILY_LIMIT = 10_000
DEFAULT_DAILY_BUDGET = 9_500
DEFAULT_MIN_INTERVAL = 0.2
#: The services of one market's session: (daily trading, base information).
MARKET_SERVICES = {"KOSPI": ("stk_bydd_trd", "stk_isu_base_info"), "KOSDAQ": ("ksq_bydd_trd", "ksq_isu_base_info")}

_ISIN = re.compile(r"^KR[0-9A-Z]{10}$")

#: Sessions before today whose base information the daily ISIN warm-up tries (the newest may be unpublished).
WARM_UP_TRIES = 2


def daily_budget() -> int:
    """Calls krxflow allows itself per KST day (``KRXFLOW_KRX_OPENAPI_DAILY_BUDGET``, default 9,500)."""
    budget = int(number_setting("KRXFLOW_KRX_OPENAPI_DAILY_BUDGET", DEFAULT_DAILY_BUDGET))
    if not 0 < budget <= KRX_DAILY_LIMIT:
        raise ValueError(f"KRXFLOW_KRX_OPENAPI_DAILY_BUDGET must be 1..{KRX_DAILY_LIMIT}, got {budget}")
    return budget


def budget_key(day: dt.date) -> str:
    return redis_client.key("krx_openapi", "calls", day.isoformat())


class DailyBudget:
    """The installation-wide count of Open API calls of each KST day, in Redis."""

    def __init__(self, redis=None, budget: int | None = None):
        self._redis = redis
        self.budget = daily_budget() if budget is None else int(budget)

    @property
    def redis(self):
        if self._redis is None:
            self._redis = redis_client.client()
        return self._redis

    @staticmethod
    def today() -> dt.date:
        return kst_today()

    def used(self, day: dt.date | None = None) -> int:
        return int(self.redis.get(budget_key(day or self.today())) or 0)

    def take(self) -> int:
        """One call of today's budget; :class:`KrxOpenApiBudgetError` (nothing sent) when it is spent."""
        day = self.today()
        used = take_from_daily_budget(self.redis, budget_key(day), self.budget, 2 * 86400)
        if used < 0:
            raise self.spent(day)
        return used

    def exhaust(self) -> None:
        """KRX answered 429: today's count is at least the budget, for every worker."""
        key = budget_key(self.today())
        self.redis.set(key, max(self.used(), self.budget), ex=2 * 86400)

    def spent(self, day: dt.date, why: str = "") -> KrxOpenApiBudgetError:
        return KrxOpenApiBudgetError(
            f"KRX Open API daily budget spent{why}: {self.used(day)} of {self.budget} calls on {day} (KST; KRX allows "
            f"{KRX_DAILY_LIMIT}/key/day). Nothing more is sent today; the count resets at 00:00 KST "
            f"(Redis key {budget_key(day)}; budget: KRXFLOW_KRX_OPENAPI_DAILY_BUDGET).")


def openapi_connection(conn_id: str = CONN_ID) -> tuple[str, str]:
    """(base URL, key) of the ``krx_openapi_default`` Connection; a clear error when it has no key."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise KrxOpenApiKeyError(f"no {conn_id} Connection: create it with the KRX Open API key as its password "
                                 f"(apply for a key and the 주식 service at openapi.krx.co.kr)") from exc
    if not conn.password:
        raise KrxOpenApiKeyError(f"the {conn_id} Connection has no password: put the KRX Open API key there")
    host = (conn.host or DEFAULT_HOST).rstrip("/")
    if "://" not in host:
        host = f"https://{host}" + (f":{conn.port}" if conn.port else "")
    return host, conn.password


class OpenApiClient:
    """One Open API call at a time through the ``krx_openapi`` gate and the daily budget."""

    def __init__(self, base_url: str, key: str, *, pacer: Pacer | None = None, budget: DailyBudget | None = None,
                 timeout: float | None = None):
        import requests

        self.base_url, self.key = base_url.rstrip("/"), key
        self.pacer = pacer or Pacer(SERVICE, interval=number_setting("KRXFLOW_KRX_OPENAPI_MIN_INTERVAL",
                                                                     DEFAULT_MIN_INTERVAL))
        self.budget = budget or DailyBudget(self.pacer.redis)
        self.timeout = timeout or number_setting("KRXFLOW_KRX_TIMEOUT", 30.0)
        self.session = requests.Session()
        self.sent: Counter = Counter()

    def call(self, category: str, api_id: str, day: dt.date) -> list[dict]:
        """``OutBlock_1`` of ``{category}/{api_id}`` for ``basDd=day`` (empty list: nothing published)."""
        import requests

        url = f"{self.base_url}/svc/apis/{category}/{api_id}.json"
        self.budget.take()
        with self.pacer.turn():
            try:
                response = self.session.get(url, params={"basDd": day.strftime("%Y%m%d")},
                                            headers={"AUTH_KEY": self.key}, timeout=self.timeout,
                                            allow_redirects=False)
            except requests.RequestException as exc:
                raise KrxHttpError(f"could not reach the KRX Open API ({url}): {exc}") from exc
            self.sent[api_id] += 1
        return self._read(response, f"{category}/{api_id} basDd={day:%Y%m%d}")

    def _read(self, response, what: str) -> list[dict]:
        status = response.status_code
        if status == 403:
            raise KrxOpenApiKeyError(f"the KRX Open API refused the key of {CONN_ID} (HTTP 403) for {what}: a wrong "
                                     "or expired key (keys last one year), or a wrong URL. Not retrying.")
        if status == 429:
            self.budget.exhaust()
            raise self.budget.spent(self.budget.today(), " (KRX answered HTTP 429)")
        if status != 200:
            raise KrxHttpError(f"the KRX Open API answered HTTP {status} for {what}: {response.text[:200]!r}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise KrxBadAnswerError(f"the KRX Open API answered {what} with no JSON: {response.text[:120]!r}") from exc
        code = str(payload.get("respCode") or "").strip() if isinstance(payload, dict) else ""
        if code == "401":
            raise KrxOpenApiKeyError(f"the key of {CONN_ID} is not approved for {what} (respCode 401: "
                                     f"{payload.get('respMsg')}); apply for the service at openapi.krx.co.kr")
        if code:
            raise KrxHttpError(f"the KRX Open API answered {what} with respCode {code}: {payload.get('respMsg')}")
        rows = payload.get("OutBlock_1") if isinstance(payload, dict) else None
        if not isinstance(rows, list):
            raise KrxBadAnswerError(f"the KRX Open API's answer to {what} has no OutBlock_1 list: site change?")
        return rows


def isins_of(base_info: list[dict]) -> dict[str, str]:
    """Short code → ISIN from ``*_isu_base_info`` rows (there ``ISU_CD`` is the ISIN, ``ISU_SRT_CD`` the code)."""
    pairs = ((str(r.get("ISU_SRT_CD", "")).strip(), str(r.get("ISU_CD", "")).strip()) for r in base_info)
    return {code: isin for code, isin in pairs if code and _ISIN.match(isin)}


def isin_key() -> str:
    return redis_client.key("krx_openapi", "isin")


def market_rows_frame(trading: list[dict], isins: dict[str, str | None], day: dt.date) -> pd.DataFrame:
    """One market's ``*_bydd_trd`` rows as :data:`MARKET_DAY_COLUMNS` with ``isins`` (short code → ISIN),
    parsed by the portal's parser (the Open API's short-code ``ISU_CD`` is the portal's ``ISU_SRT_CD``)."""
    from krxflow.krx.parsing import market_day_frame, require_fields

    raw = pd.DataFrame(trading)
    require_fields(raw, {"ISU_CD", "ISU_NM", "MKT_NM", "SECT_TP_NM", "TDD_CLSPRC", "CMPPREVDD_PRC", "FLUC_RT",
                         "TDD_OPNPRC", "TDD_HGPRC", "TDD_LWPRC", "ACC_TRDVOL", "ACC_TRDVAL", "MKTCAP", "LIST_SHRS"},
                   "Open API daily trading (*_bydd_trd)")
    short = raw["ISU_CD"].astype(str).str.strip()
    portal = raw.drop(columns=["ISU_CD"]).rename(columns={"ISU_NM": "ISU_ABBRV"})
    portal["ISU_SRT_CD"] = short
    portal["ISU_CD"] = short.map(isins)
    portal["SECT_TP_NM"] = portal["SECT_TP_NM"].replace("-", "")
    frame = market_day_frame(portal, day)
    valid = frame["isin"].astype("string").str.match(r"^KR[0-9A-Z]{10}$").fillna(False).astype(bool)
    frame["isin"] = frame["isin"].astype(object).where(valid, None)
    return frame[MARKET_DAY_COLUMNS]


def _not_served(what: str):
    raise KrxSourceError(f"the KRX Open API source does not serve {what} (yet): load it from the portal "
                         "(KRXFLOW_SOURCE=pykrx) or the sample source")


class OpenApiSource(KrxSource):
    """Daily trading of KOSPI and KOSDAQ by date from the KRX Open API (two calls a session, plus the base
    information of a market whose session lists a code without a known ISIN)."""

    name = "krx_openapi"

    def __init__(self, client: OpenApiClient | None = None, conn_id: str = CONN_ID):
        if client is None:
            client = OpenApiClient(*openapi_connection(conn_id))
        self.client = client

    # ---------------------------------------------------------------- by date
    def market_day(self, day) -> pd.DataFrame:
        from krxflow.calendar import is_trading_day

        day = kst_date(day)
        if not is_trading_day(day):
            return pd.DataFrame(columns=MARKET_DAY_COLUMNS)
        if kst_today() <= day:
            raise KrxNotPublishedError(f"the KRX Open API has not published {day} yet: it publishes a session the "
                                       "next morning (KST). Nothing written; a later try loads it.")
        parts = []
        for market, (trading_api, info_api) in MARKET_SERVICES.items():
            trading = self.client.call("sto", trading_api, day)
            if not trading:
                raise KrxNotPublishedError(
                    f"the KRX Open API answered no {market} rows for {day}, an XKRX trading day: not published yet "
                    "(KRX publishes a session the next morning). Nothing written; a later try loads it.")
            parts.append(market_rows_frame(trading, self._isins(trading, info_api, day), day))
        frame = pd.concat(parts, ignore_index=True)
        return frame.sort_values("ticker", kind="stable").reset_index(drop=True)

    def _isins(self, trading: list[dict], info_api: str, day: dt.date) -> dict[str, str | None]:
        """The ISIN of every code of ``trading``: from the Redis map, else one base-information call."""
        redis = self.client.pacer.redis
        codes = sorted({str(r.get("ISU_CD", "")).strip() for r in trading})
        known = dict(zip(codes, redis.hmget(isin_key(), codes))) if codes else {}
        if any(v is None for v in known.values()):
            known.update(self._warm_up(info_api, codes))
        if any(v is None for v in known.values()):
            fetched = isins_of(self.client.call("sto", info_api, day))
            if fetched:
                redis.hset(isin_key(), mapping=fetched)
            known.update({c: fetched[c] for c in codes if c in fetched})
        return known

    def _warm_up(self, info_api: str, codes: list[str]) -> dict[str, str]:
        """Once per KST day and market: the base information of the newest published session, which
        names every code listed today — a by-date history then asks the base information of a past
        session only for codes listed and delisted since (:data:`WARM_UP_TRIES` sessions tried)."""
        from krxflow.calendar import previous_trading_day

        redis = self.client.pacer.redis
        today = kst_today()
        if not redis.set(redis_client.key("krx_openapi", "isin_warm_up", info_api, today.isoformat()), 1,
                         nx=True, ex=86400):
            return {}
        session = today
        for _ in range(WARM_UP_TRIES):
            session = previous_trading_day(session)
            fetched = isins_of(self.client.call("sto", info_api, session))
            if fetched:
                redis.hset(isin_key(), mapping=fetched)
                return {c: fetched[c] for c in codes if c in fetched}
        return {}

    def daily_prices(self, day) -> pd.DataFrame:
        return self.market_day(day)[DAILY_COLUMNS]

    def listing(self, day) -> pd.DataFrame:
        from krxflow.calendar import is_trading_day, previous_trading_day

        day = kst_date(day)
        session = day if is_trading_day(day) and kst_today() > day else previous_trading_day(day)
        return self.market_day(session)[LISTING_COLUMNS].reset_index(drop=True)

    def delisted(self) -> pd.DataFrame:
        """The Open API has no delisted-issue finder: none known (the master's own rules delist)."""
        return pd.DataFrame(columns=DELISTED_COLUMNS)

    def krx_adjusted(self, ticker: str, first, last, *, isin: str | None = None) -> pd.DataFrame:
        """The Open API publishes no adjusted prices: no reference (the cross-check compares nothing)."""
        return pd.DataFrame(columns=KRX_ADJUSTED_COLUMNS)

    def history(self, ticker: str, first, last, *, adjusted: bool = True, isin: str | None = None):
        _not_served("one ticker's history (it answers one date per call: load history by date)")

    def index_prices(self, day):
        _not_served("index prices")

    def investor_trading(self, day):
        _not_served("investor trading")

    def fundamentals(self, day):
        _not_served("fundamentals")

    def short_selling(self, day):
        _not_served("short selling")

    def short_balance(self, day):
        _not_served("short balances")

    def foreign_ownership(self, day):
        _not_served("foreign ownership")

    def industries(self, day):
        _not_served("industries")

    def index_members(self, index_code, day):
        _not_served("index constituents")

    def index_master(self):
        _not_served("the index master")

    def delistings(self, first, last):
        _not_served("delistings")

    def etp_day(self, kind, day):
        _not_served("ETF/ETN prices")

    def etp_info(self, kind):
        _not_served("ETF/ETN base information")

    def requests_sent(self) -> int:
        return sum(self.client.sent.values())
