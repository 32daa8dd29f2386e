"""An offline KRX + Naver that answers pykrx's *real* HTTP requests, for tests and the bench.

Built on the ``responses`` library (it patches ``requests``' adapter, so pykrx's own sessions,
headers and parsing code run unchanged). Answers are generated from the deterministic
:class:`~krxflow.sample.market.SampleMarket`, in the shapes KRX and Naver really send (checked
against the recorded responses in the shared reference folder):

* ``POST getJsonData.cmd`` by its ``bld`` form field: ``MDCSTAT01501`` (all tickers, one day,
  ``OutBlock_1``; on a holiday every ticker with ``"-"`` values), ``MDCSTAT01701`` (one ticker by
  ISIN, ``output``, newest first), ``finder_stkisu`` / ``finder_listdelisu`` (``block1``).
  Numbers are strings with thousands commas; halted days have open/high/low ``"0"``;
  ``Content-Type: text/html`` as KRX does.
* the other daily reports (issue 17), from the sample market's reports: ``finder_equidx``
  (index master, ``block1``), ``MDCSTAT00101`` (one index group's indices by name; the KOSPI
  group starts with "코스피 (외국주포함)" whose prices are ``"-"``), ``MDCSTAT02401`` (one investor
  type, all tickers that traded), ``MDCSTAT03501`` (fundamentals; loss makers' EPS/PER ``"-"``),
  srt ``MDCSTAT30101``/``MDCSTAT30501`` (per market, ``OutBlock_1``, ``ISU_CD`` = short code)
  and ``MDCSTAT03701`` (foreign ownership). Off-session days answer no rows.
* the universe (issue 27), from :mod:`krxflow.sample.market_universe`: ``MDCSTAT03901`` (industry
  of every ticker of one market, ``block1``), ``MDCSTAT00601`` (one index's constituents by
  ``indIdx`` + ``indIdx2``, ``output``, with ``STR_CMP_PRC`` for the change) and ``MDCSTAT23801``
  (delisted issues of a window, ``output``, rights certificates and KONEX included).
* **A session KRX has not published yet** (:meth:`KrxReplay.unpublish`; :meth:`KrxReplay.publish`
  ends it): every by-day answer of that session lists its usual rows, with the tickers, names,
  markets, industries and listed shares filled and every value of the day ``"-"``
  (``FLUC_TP_CD`` ``"3"``), as KRX answers a day without data (the recorded
  ``TestStockOhlcvByTickerTest.test_ohlcv_for_a_day_on_holiday1.yaml`` shape).
* **KONEX** (``konex=N``): N KONEX tickers in the all-market answers (``mktId`` ``ALL`` or ``KNX``)
  of MDCSTAT01501 (``MKT_NM`` "KONEX", ``MKT_ID`` "KNX"), MDCSTAT02401, MDCSTAT03501 and
  MDCSTAT03701 (which carry no market, as KRX's do not). :attr:`KrxReplay.konex_tickers` lists them.
* ETFs and ETNs (issue 27, point 4), from :mod:`krxflow.sample.market_etps`: ``MDCSTAT04301`` /
  ``MDCSTAT06401`` (every ETF / ETN of one day, ``output``; a session after ``today`` is one KRX
  has not published: every product with ``"-"`` values) and the base-info screens
  ``MDCSTAT04601`` / ``MDCSTAT06701`` (today's products, ``output``, no date).
* ``GET fchart.stock.naver.com/sise.nhn``: EUC-KR XML ``<item data="YYYYMMDD|o|h|l|c|v"/>``.
* The login, as strict as KRX: ``GET MDCCOMS001.cmd`` hands out a ``JSESSIONID`` cookie,
  ``GET login.jsp``, then ``POST MDCCOMS001D1.cmd`` with that cookie answers
  ``{"_error_code": login_code}`` (``CD001`` ok, ``CD010`` password change required). One session
  per account: while another session of the account is logged in the POST answers ``CD011``,
  and the retry with ``skipDup=Y`` logs the older session out.
  ``require_login=True`` makes data requests answer ``LOGOUT`` unless they carry a logged-in
  ``JSESSIONID``, as KRX has done since 2026-02-27; :meth:`KrxReplay.expire_sessions` ends them all.

**One KRX for several processes**: the replay's state — the log of every request with its
arrival time and process, the sessions, injected faults and blocks — lives in Redis under
:attr:`KrxReplay.wire_id`. A worker process joins the same KRX with
``KrxReplay(market, wire_id=...)`` (see :mod:`tests.fakes.krx_traffic`).

Faults are injected per kind of request: ``replay.fail("MDCSTAT01501", "logout")`` answers the
next such request with ``LOGOUT`` (also ``"403"``, ``"html"``, ``"empty"``, ``"500"``).
``replay.block("403")`` blocks the whole IP: every later request, login pages included, gets
the fault. Every request received is in :attr:`KrxReplay.received` (by kind) and
:meth:`KrxReplay.wire` (in order, with arrival times).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
import uuid
from collections import Counter
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import responses

from krxflow.sample.market import SampleMarket, isin_of, session_index, sessions
from krxflow.market_time import kst_today

KRX_DATA_URL = "https://data.krx.co.kr/comm/bldAttendant/getJsonData.cmd"
LOGIN_PAGE = "https://data.krx.co.kr/contents/MDC/COMS/client/MDCCOMS001.cmd"
LOGIN_JSP = re.compile(r"https://data\.krx\.co\.kr/contents/MDC/COMS/client/view/login\.jsp.*")
LOGIN_URL = "https://data.krx.co.kr/contents/MDC/COMS/client/MDCCOMS001D1.cmd"
NAVER_URL = re.compile(r"https?://fchart\.stock\.naver\.com/sise\.nhn.*")

_JSON_HEADERS = {"Content-Type": "text/html; charset=utf-8"}
_STAMP = "2026.01.25 PM 08:28:15"
_MARKET_IDS = {"KOSPI": "STK", "KOSDAQ": "KSQ"}
_MKT_FILTER = {"STK": {"KOSPI"}, "KSQ": {"KOSDAQ"}, "KNX": set(), "ALL": {"KOSPI", "KOSDAQ"}}
_BLOCK_PAGE = ("<!DOCTYPE html><html><head><title>KRX</title></head><body>비정상적인 접근이 감지되어 "
               "서비스 이용이 제한되었습니다.</body></html>")


def _c(value) -> str:
    """A KRX number: thousands commas, "-" for missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "-"
    return f"{int(value):,}"


def _rate(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.2f}"


def _fluc(rate) -> str:
    if rate is None or pd.isna(rate):
        return "3"
    return "1" if rate > 0 else "2" if rate < 0 else "0"


_EMPTY_KEYS = {"MDCSTAT01501": "OutBlock_1", "finder_stkisu": "block1", "finder_listdelisu": "block1",
               "finder_equidx": "block1", "MDCSTAT30101": "OutBlock_1", "MDCSTAT30501": "OutBlock_1",
               "MDCSTAT03901": "block1"}


def _idx(value) -> str:
    """An index level or change as KRX writes it: "2,936.44", "-43.83"."""
    return "-" if value is None or pd.isna(value) else f"{float(value):,.2f}"


#: The by-day answers and the form field that names their day.
_DAY_FIELDS = {"MDCSTAT01501": "trdDd", "MDCSTAT00101": "trdDd", "MDCSTAT02401": "strtDd", "MDCSTAT03501": "trdDd",
               "MDCSTAT30101": "trdDd", "MDCSTAT30501": "trdDd", "MDCSTAT03701": "trdDd", "MDCSTAT03901": "trdDd",
               "MDCSTAT00601": "trdDd"}
#: What KRX fills in the rows of a session it has not published: who, and the listing (the rest is "-").
_LISTING_KEYS = {"ISU_SRT_CD", "ISU_CD", "ISU_ABBRV", "ISU_ABBRV_STR", "ISU_NM", "MKT_NM", "MKT_TP_NM", "MKT_ID",
                 "SECT_TP_NM", "SECUGRP_NM", "IDX_IND_NM", "IDX_NM", "LIST_SHRS"}
#: The all-market answers that list KONEX tickers with ``mktId`` ALL (or KNX).
_KONEX_ANSWERS = {"MDCSTAT01501", "MDCSTAT02401", "MDCSTAT03501", "MDCSTAT03701"}


def _unpublished_row(row: dict) -> dict:
    """A row as KRX sends it for a session without data: listing fields kept, every value "-"."""
    return {k: v if k in _LISTING_KEYS else "3" if k == "FLUC_TP_CD" else "-" for k, v in row.items()}


def _kind_of(bld: str) -> str:
    return bld.rsplit("/", 1)[-1]


_FAULTS = {"logout", "403", "html", "empty", "500"}
_PASS = "pass"  # a queued "no fault" (see KrxReplay.fail's ``after``)
_KINDS_OF_LOGIN = ("login_page", "login_jsp", "login")


class KrxReplay:
    """Offline KRX/Naver. Use as a context manager (or :meth:`start`/:meth:`stop`).

    :param wire_id: join the KRX of another process (its :attr:`wire_id`); by default a new one.
    """

    def __init__(self, market: SampleMarket | None = None, *, tickers: int = 40, login_code: str = "CD001",
                 require_login: bool = False, today: dt.date | None = None, wire_id: str | None = None,
                 konex: int = 0):
        import redis

        self.market = market or SampleMarket(tickers)
        self.login_code = login_code
        self.require_login = require_login
        self.today = today or kst_today()
        self.owner = wire_id is None
        self.wire_id = wire_id or uuid.uuid4().hex[:12]
        self._redis = redis.Redis.from_url(os.environ.get("AIRFLOW_CONN_REDIS_DEFAULT", "redis://127.0.0.1:6379/0"),
                                           decode_responses=True)
        self._stopped_wire: list[dict] | None = None
        if self.owner:
            self._redis.set(self._key("konex"), konex)
        #: The KONEX tickers the all-market answers list (none unless ``konex``; a joined replay reads the owner's).
        self.konex_tickers = [f"99{i:03d}0" for i in range(int(self._redis.get(self._key("konex")) or 0))]
        assert not set(self.konex_tickers) & set(self.market.tickers)
        self._isins = {isin_of(t): t for t in self.market.tickers}
        self._mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self._mock.add_callback(responses.POST, KRX_DATA_URL, callback=self._krx_data)
        self._mock.add_callback(responses.GET, NAVER_URL, callback=self._naver)
        self._mock.add_callback(responses.GET, LOGIN_PAGE, callback=self._login_page)
        self._mock.add_callback(responses.GET, LOGIN_JSP, callback=self._login_jsp)
        self._mock.add_callback(responses.POST, LOGIN_URL, callback=self._login)

    # ----------------------------------------------------------------- control
    def start(self) -> "KrxReplay":
        self._stopped_wire = None
        self._mock.start()
        return self

    def stop(self) -> None:
        self._mock.stop()
        self._mock.reset()
        self._stopped_wire = self.wire()  # still readable after the stop
        if self.owner:
            keys = list(self._redis.scan_iter(match=self._key("*"), count=1000))
            if keys:
                self._redis.delete(*keys)
        self._redis.close()

    def __enter__(self) -> "KrxReplay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(self, kind: str, fault: str, times: int = 1, *, after: int = 0) -> None:
        """Answer the next ``times`` requests of ``kind`` (a bld name like ``MDCSTAT01501``, ``naver``,
        ``login``, or ``*`` for any data request) with ``fault``: logout, 403, html, empty or 500.
        ``after``: answer that many requests of ``kind`` normally first (a fault mid-way through a
        report of several requests of one kind)."""
        if fault not in _FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self._redis.rpush(self._key("faults", kind), *([_PASS] * after + [fault] * times))

    def block(self, fault: str = "403", *, after: int = 0) -> None:
        """Block the whole IP once ``after`` more requests were answered: from then on every request
        of any kind, logins included, answers ``fault`` (403 or html)."""
        if fault not in {"403", "html"}:
            raise ValueError(f"a block answers 403 or html, not {fault!r}")
        self._redis.set(self._key("block"), json.dumps({"fault": fault, "from": self.total + after}))

    def unblock(self) -> None:
        self._redis.delete(self._key("block"))

    def unpublish(self, *days, kinds: tuple[str, ...] = ()) -> None:
        """KRX has not published these sessions yet: their by-day answers (only those of ``kinds``,
        bld names, when given) are rows of "-"."""
        self._redis.sadd(self._key("unpublished"), *(f"{d}:{k}" if k else str(d) for d in days for k in kinds or ("",)))

    def publish(self, *days) -> None:
        """KRX published these sessions: every answer of them carries its data again."""
        marks = self._redis.smembers(self._key("unpublished"))
        gone = [m for m in marks if m.split(":")[0] in {str(d) for d in days}]
        if gone:
            self._redis.srem(self._key("unpublished"), *gone)

    def expire_sessions(self) -> None:
        """KRX forgets every login (a session timeout, a server restart): data requests answer LOGOUT."""
        self._redis.delete(self._key("sessions"), self._key("accounts"))

    def wire(self) -> list[dict]:
        """Every request received, in order: ``kind``, ``params``, ``t`` (arrival, epoch s), ``pid``, ``status``."""
        if self._stopped_wire is not None:
            return self._stopped_wire
        return [json.loads(entry) for entry in self._redis.lrange(self._key("log"), 0, -1)]

    def gaps(self, *, naver: bool = False) -> list[float]:
        """Seconds between consecutive arrivals at KRX (logins included) or, with ``naver=True``, at Naver."""
        times = [entry["t"] for entry in self.wire() if (entry["kind"] == "naver") == naver]
        return [b - a for a, b in zip(times, times[1:])]

    @property
    def log(self) -> list[tuple[str, dict]]:
        return [(entry["kind"], entry["params"]) for entry in self.wire()]

    @property
    def received(self) -> Counter:
        return Counter(entry["kind"] for entry in self.wire())

    @property
    def total(self) -> int:
        return len(self._stopped_wire) if self._stopped_wire is not None else int(self._redis.llen(self._key("log")))

    # ----------------------------------------------------------------- plumbing
    def _key(self, *parts: str) -> str:
        return ":".join(("krxreplay", self.wire_id, *parts))

    def _answer(self, kind: str, params: dict, request, respond) -> tuple:
        """Log the request, then answer an IP block, an injected fault, or ``respond()``."""
        arrived = time.time()
        block = json.loads(self._redis.get(self._key("block")) or "null")
        fault = block["fault"] if block and self.total >= block["from"] else None
        if fault is None:
            for key in (kind, "*" if kind not in _KINDS_OF_LOGIN else None):
                if key is not None and (fault := self._redis.lpop(self._key("faults", key))):
                    break
        fault = None if fault == _PASS else fault
        answer = self._fault_answer(fault, _EMPTY_KEYS.get(kind, "output")) if fault else respond()
        self._redis.rpush(self._key("log"), json.dumps({"kind": kind, "params": params, "t": arrived,
                                                        "pid": os.getpid(), "status": answer[0]}))
        return answer

    @staticmethod
    def _fault_answer(fault: str, empty_key: str):
        if fault == "logout":
            return 400, {"Content-Type": "text/html; charset=utf-8"}, "LOGOUT"
        if fault == "403":
            return 403, {"Content-Type": "text/html"}, "<html><body><h1>403 Forbidden</h1></body></html>"
        if fault == "html":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, _BLOCK_PAGE
        if fault == "500":
            return 500, {"Content-Type": "text/html"}, "Internal Server Error"
        return 200, _JSON_HEADERS, json.dumps({empty_key: [], "CURRENT_DATETIME": _STAMP})

    @staticmethod
    def _session_of(request) -> str | None:
        cookie = SimpleCookie()
        cookie.load(request.headers.get("Cookie", ""))
        return cookie["JSESSIONID"].value if "JSESSIONID" in cookie else None

    def _logged_in(self, request) -> bool:
        session = self._session_of(request)
        return bool(session) and bool(self._redis.hget(self._key("sessions"), session))

    # ----------------------------------------------------------------- login
    def _login_page(self, request):
        def respond():
            session = self._session_of(request)
            if session and self._redis.hexists(self._key("sessions"), session):
                return 200, {"Content-Type": "text/html"}, "<html></html>"
            session = uuid.uuid4().hex.upper()
            self._redis.hset(self._key("sessions"), session, "")
            return 200, {"Content-Type": "text/html", "Set-Cookie": f"JSESSIONID={session}; Path=/"}, "<html></html>"

        return self._answer("login_page", {}, request, respond)

    def _login_jsp(self, request):
        return self._answer("login_jsp", {}, request, lambda: (200, {"Content-Type": "text/html"},
                                                                "<html><body>login</body></html>"))

    def _login(self, request):
        params = {k: v[0] for k, v in parse_qs(request.body or "").items()}

        def respond():
            session, account = self._session_of(request), params.get("mbrId", "")
            code = self.login_code
            if session is None or not self._redis.hexists(self._key("sessions"), session):
                code = "CD999"  # no session from the login page: KRX's web client never does this
            elif code == "CD001":
                other = self._redis.hget(self._key("accounts"), account)
                if other and other != session and self._redis.hget(self._key("sessions"), other):
                    if params.get("skipDup") != "Y":
                        code = "CD011"
                    else:
                        self._redis.hset(self._key("sessions"), other, "")  # the older session is logged out
            if code == "CD001":
                self._redis.hset(self._key("sessions"), session, account)
                self._redis.hset(self._key("accounts"), account, session)
            message = {"CD001": "정상", "CD010": "비밀번호를 변경하세요.", "CD011": "중복 로그인"}.get(code, "오류")
            return 200, {"Content-Type": "application/json"}, json.dumps({"_error_code": code,
                                                                          "_error_message": message})

        return self._answer("login", {"mbrId": params.get("mbrId"), "skipDup": params.get("skipDup")}, request,
                            respond)

    # ----------------------------------------------------------------- KRX data
    def _krx_data(self, request):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        params = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        kind = _kind_of(params.get("bld", ""))

        def respond():
            if self.require_login and not self._logged_in(request):
                return self._fault_answer("logout", _EMPTY_KEYS.get(kind, "output"))
            if kind == "MDCSTAT01501":
                payload = {"OutBlock_1": self._all_market(params["trdDd"], params.get("mktId", "ALL"))}
            elif kind == "MDCSTAT01701":
                payload = {"output": self._one_ticker(params["isuCd"], params["strtDd"], params["endDd"],
                                                      adjusted=params.get("adjStkPrc") == "2")}
            elif kind == "finder_stkisu":
                payload = {"block1": self._finder(delisted=False)}
            elif kind == "finder_listdelisu":
                payload = {"block1": self._finder(delisted=True)}
            elif kind in _REPORT_ANSWERS:  # the other daily reports (issue 17)
                key, answer = _REPORT_ANSWERS[kind]
                payload = {key: answer(self, params)}
            else:
                return 400, {"Content-Type": "text/html"}, f"replay: unknown bld {kind}"
            if kind in _DAY_FIELDS:
                self._as_published(kind, params, payload)
            payload["CURRENT_DATETIME"] = _STAMP
            return 200, _JSON_HEADERS, json.dumps(payload, ensure_ascii=False)

        return self._answer(kind, params, request, respond)

    def _as_published(self, kind: str, params: dict, payload: dict) -> None:
        """A by-day answer as KRX has published it: KONEX rows in the all-market answers, and rows of
        "-" while the session is unpublished (or, for MDCSTAT01501, a holiday)."""
        day = dt.datetime.strptime(params[_DAY_FIELDS[kind]], "%Y%m%d").date()
        (key, rows), = payload.items()
        session = session_index(day) >= 0
        if kind in _KONEX_ANSWERS and params.get("mktId") in ("ALL", "KNX") and (session or kind == "MDCSTAT01501"):
            konex = self._konex_rows(kind)
            rows.extend(konex if session else [_unpublished_row(r) for r in konex])
        marks = self._redis.smismember(self._key("unpublished"), [day.isoformat(), f"{day}:{kind}"])
        if session and any(marks):
            payload[key] = [_unpublished_row(r) for r in rows]

    def _konex_rows(self, kind: str) -> list[dict]:
        """The KONEX tickers' rows of an all-market answer (small, steady numbers)."""
        rows = []
        for i, ticker in enumerate(self.konex_tickers):
            close, volume, shares, name = 2_000 + 500 * i, 1_000 * (i + 1), 5_000_000 + 100_000 * i, f"코넥스기업{i}"
            prices = {"TDD_CLSPRC": _c(close), "FLUC_TP_CD": "1", "CMPPREVDD_PRC": "10", "FLUC_RT": "0.50"}
            if kind == "MDCSTAT01501":
                rows.append({"ISU_SRT_CD": ticker, "ISU_CD": f"KR7{ticker}00{i % 10}", "ISU_ABBRV": name,
                             "MKT_NM": "KONEX", "SECT_TP_NM": "일반기업부", **prices, "TDD_OPNPRC": _c(close - 10),
                             "TDD_HGPRC": _c(close + 20), "TDD_LWPRC": _c(close - 20), "ACC_TRDVOL": _c(volume),
                             "ACC_TRDVAL": _c(volume * close), "MKTCAP": _c(shares * close), "LIST_SHRS": _c(shares),
                             "MKT_ID": "KNX"})
            elif kind == "MDCSTAT02401":
                rows.append({"ISU_SRT_CD": ticker, "ISU_NM": name, "ASK_TRDVOL": _c(volume), "BID_TRDVOL": _c(volume),
                             "NETBID_TRDVOL": "0", "ASK_TRDVAL": _c(volume * close),
                             "BID_TRDVAL": _c(volume * close), "NETBID_TRDVAL": "0"})
            elif kind == "MDCSTAT03501":
                rows.append({"ISU_SRT_CD": ticker, "ISU_ABBRV": name, "ISU_ABBRV_STR": f'{name} <em class ="up"></em>',
                             **prices, "EPS": _c(200), "PER": _rate(close / 200), "BPS": _c(1_500),
                             "PBR": _rate(close / 1_500), "DPS": "0", "DVD_YLD": "0.00"})
            else:  # MDCSTAT03701
                rows.append({"ISU_SRT_CD": ticker, "ISU_ABBRV": name, **prices, "LIST_SHRS": _c(shares),
                             "FORN_HD_QTY": _c(shares // 100), "FORN_SHR_RT": "1.00", "FORN_ORD_LMT_QTY": _c(shares),
                             "FORN_LMT_EXHST_RT": "1.00"})
        return rows

    def _all_market(self, trd_dd: str, mkt_id: str) -> list[dict]:
        day = dt.datetime.strptime(trd_dd, "%Y%m%d").date()
        wanted = _MKT_FILTER.get(mkt_id, set())
        if session_index(day) >= 0:
            frame = self.market.day(day)
            holiday = False
        else:  # KRX still lists every ticker on a holiday, with "-" for every value but LIST_SHRS
            previous = sessions()[max(int(np.searchsorted(sessions(), np.datetime64(day, "D"))) - 1, 0)]
            frame = self.market.day(previous.astype(dt.date))
            holiday = True
        frame = frame[frame["market"].isin(wanted)]
        rows = []
        for r in frame.itertuples(index=False):
            halted = r.open is pd.NA
            rows.append({
                "ISU_SRT_CD": r.ticker, "ISU_CD": r.isin, "ISU_ABBRV": r.name, "MKT_NM": r.market,
                "SECT_TP_NM": r.sector or "",
                "TDD_CLSPRC": "-" if holiday else _c(r.close),
                "FLUC_TP_CD": "3" if holiday else _fluc(r.change_rate),
                "CMPPREVDD_PRC": "-" if holiday else _c(r.close - r.base_price),
                "FLUC_RT": "-" if holiday else _rate(r.change_rate),
                "TDD_OPNPRC": "-" if holiday else "0" if halted else _c(r.open),
                "TDD_HGPRC": "-" if holiday else "0" if halted else _c(r.high),
                "TDD_LWPRC": "-" if holiday else "0" if halted else _c(r.low),
                "ACC_TRDVOL": "-" if holiday else _c(r.volume),
                "ACC_TRDVAL": "-" if holiday else _c(r.trading_value),
                "MKTCAP": "-" if holiday else _c(r.market_cap),
                "LIST_SHRS": _c(r.listed_shares), "MKT_ID": _MARKET_IDS[r.market],
            })
        return rows

    def _one_ticker(self, isin: str, start: str, end: str, adjusted: bool = False) -> list[dict]:
        """MDCSTAT01701: raw (``adjStkPrc=1``) or KRX-adjusted prices (``adjStkPrc=2``: the other
        fields stay as published)."""
        ticker = self._isins.get(isin)
        if ticker is None:
            return []
        first = dt.datetime.strptime(start, "%Y%m%d").date()
        last = dt.datetime.strptime(end, "%Y%m%d").date()
        frame = self.market.history(ticker, first, last, adjusted=False)
        if adjusted and len(frame):
            prices = self.market.krx_adjusted(ticker, first, last)
            frame = frame.assign(**{c: prices[c].to_numpy() for c in ("open", "high", "low", "close")})
        rows = []
        for r in frame.iloc[::-1].itertuples(index=False):  # KRX: newest first
            halted = r.open is pd.NA
            rows.append({
                "TRD_DD": r.trade_date.strftime("%Y/%m/%d"), "TDD_CLSPRC": _c(r.close), "FLUC_TP_CD": _fluc(r.change_rate),
                "CMPPREVDD_PRC": _c(r.close - r.base_price), "FLUC_RT": _rate(r.change_rate),
                "TDD_OPNPRC": "0" if halted else _c(r.open), "TDD_HGPRC": "0" if halted else _c(r.high),
                "TDD_LWPRC": "0" if halted else _c(r.low), "ACC_TRDVOL": _c(r.volume),
                "ACC_TRDVAL": _c(r.trading_value), "MKTCAP": _c(r.market_cap), "LIST_SHRS": _c(r.listed_shares),
            })
        return rows

    def _finder(self, delisted: bool) -> list[dict]:
        last = session_index(self._last_session())
        rows = []
        for ticker in self.market.tickers:
            p = self.market.profile(ticker)
            gone = p.delisted is not None and p.delisted <= last
            if gone != delisted:
                continue
            i = (p.delisted - 1) if gone else last
            market = self.market.market_on(p, i)
            rows.append({"full_code": isin_of(ticker), "short_code": ticker, "codeName": self.market.name_on(p, i),
                         "marketCode": _MARKET_IDS[market], "marketName": "코스피" if market == "KOSPI" else "코스닥",
                         "marketEngName": market, "ord1": "", "ord2": "16"})
        return rows

    # ----------------------------------------------------------------- other daily reports (issue 17)
    def _report(self, name: str, params: dict, key: str = "trdDd") -> tuple[dt.date, pd.DataFrame, pd.DataFrame]:
        """The sample report of the asked day, with the day's names and markets (empty off-session)."""
        day = dt.datetime.strptime(params[key], "%Y%m%d").date()
        if session_index(day) < 0:
            return day, pd.DataFrame(), pd.DataFrame(columns=["ticker", "name", "market"])
        return day, self.market.report(name, day), self.market.day(day)[["ticker", "name", "market"]]

    def _index_finder(self, params: dict) -> list[dict]:
        """finder_equidx ``block1``: ``mktsel`` 1 all, 2 KRX, 3 KOSPI, 4 KOSDAQ."""
        from krxflow.sample.market_reports import index_master

        wanted = {"1": {"KRX", "KOSPI", "KOSDAQ"}, "2": {"KRX"}, "3": {"KOSPI"}, "4": {"KOSDAQ"}}.get(
            params.get("mktsel", "1"), set())
        codes = {"KRX": "KRX", "KOSPI": "STK", "KOSDAQ": "KSQ"}
        return [{"full_code": r.full_code, "short_code": r.short_code, "codeName": r.name,
                 "marketCode": codes[r.index_group], "marketName": r.index_group}
                for r in index_master().itertuples(index=False) if r.index_group in wanted]

    def _index_prices(self, params: dict) -> list[dict]:
        """MDCSTAT00101 ``output``: one group's indices, by name only (KRX sends no code). The KOSPI
        group starts with "코스피 (외국주포함)", which has no prices ("-") and no finder entry."""
        from krxflow.krx.interface import INDEX_GROUPS

        group = {code: name for name, code in INDEX_GROUPS.items()}.get(params.get("idxIndMidclssCd"))
        day, frame, _ = self._report("index_prices", params)
        if frame.empty or group is None:
            return []
        frame = frame[frame["index_group"] == group]
        rows = []
        if group == "KOSPI":
            total = frame[frame["name"] == "코스피"].iloc[0]
            rows.append({"IDX_NM": "코스피 (외국주포함)", "CLSPRC_IDX": "-", "FLUC_TP_CD": "", "CMPPREVDD_IDX": "-",
                         "FLUC_RT": "-", "OPNPRC_IDX": "-", "HGPRC_IDX": "-", "LWPRC_IDX": "-",
                         "ACC_TRDVOL": _c(total.volume), "ACC_TRDVAL": _c(total.trading_value),
                         "MKTCAP": _c(total.market_cap)})
        for r in frame.itertuples(index=False):
            rows.append({"IDX_NM": r.name, "CLSPRC_IDX": _idx(r.close), "FLUC_TP_CD": _fluc(r.change),
                         "CMPPREVDD_IDX": _idx(r.change), "FLUC_RT": _rate(r.change_rate),
                         "OPNPRC_IDX": _idx(r.open), "HGPRC_IDX": _idx(r.high), "LWPRC_IDX": _idx(r.low),
                         "ACC_TRDVOL": _c(r.volume), "ACC_TRDVAL": _c(r.trading_value), "MKTCAP": _c(r.market_cap)})
        return rows

    def _investors(self, params: dict) -> list[dict]:
        """MDCSTAT02401 ``output``: one investor type's trading of every ticker, by net value descending."""
        from krxflow.krx.interface import INVESTOR_TYPES

        investor = INVESTOR_TYPES.get(params.get("invstTpCd", ""))
        day, frame, names = self._report("investor_trading", params, "strtDd")
        if frame.empty or investor is None:
            return []
        frame = frame[frame["investor"] == investor].merge(names, on="ticker")
        frame = frame[frame["market"].isin(_MKT_FILTER.get(params.get("mktId", "ALL"), set()))]
        return [{"ISU_SRT_CD": r.ticker, "ISU_NM": r.name, "ASK_TRDVOL": _c(r.sell_volume),
                 "BID_TRDVOL": _c(r.buy_volume), "NETBID_TRDVOL": _c(r.net_volume), "ASK_TRDVAL": _c(r.sell_value),
                 "BID_TRDVAL": _c(r.buy_value), "NETBID_TRDVAL": _c(r.net_value)}
                for r in frame.sort_values("net_value", ascending=False).itertuples(index=False)]

    def _prices_of(self, day: dt.date) -> pd.DataFrame:
        return self.market.day(day).set_index("ticker")

    def _priced_report(self, report: str, params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The report's rows of the market asked for (``mktId``, default all) and the day's prices by ticker."""
        day, frame, names = self._report(report, params)
        if frame.empty:
            return frame, frame
        frame = frame.merge(names, on="ticker")
        return frame[frame["market"].isin(_MKT_FILTER.get(params.get("mktId", "ALL"), set()))], self._prices_of(day)

    def _fundamentals(self, params: dict) -> list[dict]:
        """MDCSTAT03501 ``output``: loss makers have "-" for EPS and PER."""
        frame, prices = self._priced_report("fundamentals", params)
        rows = []
        for r in frame.itertuples(index=False):
            p = prices.loc[r.ticker]
            rows.append({"ISU_SRT_CD": r.ticker, "ISU_ABBRV": r.name, "ISU_ABBRV_STR": f'{r.name} <em class ="up"></em>',
                         "TDD_CLSPRC": _c(p.close), "FLUC_TP_CD": _fluc(p.change_rate),
                         "CMPPREVDD_PRC": _c(p.close - p.base_price), "FLUC_RT": _rate(p.change_rate),
                         "EPS": _c(r.eps), "PER": _rate(r.per), "BPS": _c(r.bps), "PBR": _rate(r.pbr),
                         "DPS": _c(r.dps), "DVD_YLD": _rate(r.dividend_yield)})
        return rows

    def _short_selling(self, params: dict) -> list[dict]:
        """srt MDCSTAT30101 ``OutBlock_1``: one market (STK/KSQ); ``ISU_CD`` holds the short code."""
        day, frame, names = self._report("short_selling", params)
        if frame.empty:
            return []
        frame = frame.merge(names, on="ticker")
        frame = frame[frame["market"].isin(_MKT_FILTER.get(params.get("mktId", ""), set()))]
        return [{"ISU_CD": r.ticker, "ISU_ABBRV": r.name, "SECUGRP_NM": "주권",
                 "CVSRTSELL_TRDVOL": _c(r.short_volume), "ACC_TRDVOL": _c(r.volume),
                 "TRDVOL_WT": _rate(r.short_volume / r.volume * 100 if r.volume else 0),
                 "CVSRTSELL_TRDVAL": _c(r.short_value), "ACC_TRDVAL": _c(r.trading_value),
                 "TRDVAL_WT": _rate(r.short_value / r.trading_value * 100 if r.trading_value else 0)}
                for r in frame.itertuples(index=False)]

    def _short_balance(self, params: dict) -> list[dict]:
        """srt MDCSTAT30501 ``OutBlock_1``: ``mktTpCd`` 1 KOSPI, 2 KOSDAQ."""
        day, frame, names = self._report("short_balance", params)
        market = {"1": "KOSPI", "2": "KOSDAQ"}.get(str(params.get("mktTpCd")))
        if frame.empty or market is None:
            return []
        frame = frame.merge(names, on="ticker")
        return [{"ISU_CD": r.ticker, "ISU_ABBRV": r.name, "BAL_QTY": _c(r.balance_quantity),
                 "LIST_SHRS": _c(r.listed_shares), "BAL_AMT": _c(r.balance_value), "MKTCAP": _c(r.market_cap),
                 "BAL_RTO": _rate(r.balance_ratio)}
                for r in frame[frame["market"] == market].itertuples(index=False)]

    def _foreign_ownership(self, params: dict) -> list[dict]:
        """MDCSTAT03701 ``output``."""
        frame, prices = self._priced_report("foreign_ownership", params)
        rows = []
        for r in frame.itertuples(index=False):
            p = prices.loc[r.ticker]
            rows.append({"ISU_SRT_CD": r.ticker, "ISU_ABBRV": r.name, "TDD_CLSPRC": _c(p.close),
                         "FLUC_TP_CD": _fluc(p.change_rate), "CMPPREVDD_PRC": _c(p.close - p.base_price),
                         "FLUC_RT": _rate(p.change_rate), "LIST_SHRS": _c(r.listed_shares),
                         "FORN_HD_QTY": _c(r.foreign_held), "FORN_SHR_RT": _rate(r.foreign_share_rate),
                         "FORN_ORD_LMT_QTY": _c(r.foreign_limit), "FORN_LMT_EXHST_RT": _rate(r.limit_exhaustion_rate)})
        return rows

    # ----------------------------------------------------------------- the universe (issue 27)
    def _industries(self, params: dict) -> list[dict]:
        """MDCSTAT03901 ``block1``: one market's (``mktId`` STK/KSQ) tickers with their industry."""
        from krxflow.sample.market_universe import industries

        day = dt.datetime.strptime(params["trdDd"], "%Y%m%d").date()
        if session_index(day) < 0:
            return []
        frame = industries(self.market, day)
        frame = frame[frame["market"].isin(_MKT_FILTER.get(params.get("mktId", ""), set()))]
        return [{"ISU_SRT_CD": r.ticker, "ISU_ABBRV": r.name, "MKT_TP_NM": r.market, "IDX_IND_NM": r.industry,
                 "TDD_CLSPRC": _c(r.close), "CMPPREVDD_PRC": _c(r.close - r.base_price), "FLUC_RT": _rate(r.change_rate),
                 "MKTCAP": _c(r.market_cap), "FLUC_TP_CD": _fluc(r.change_rate)}
                for r in frame.sort_values("name").itertuples(index=False)]

    def _index_members(self, params: dict) -> list[dict]:
        """MDCSTAT00601 ``output``: the constituents of index ``indIdx`` + ``indIdx2`` (e.g. 1 + 028), biggest first."""
        from krxflow.sample.market_universe import index_members

        day = dt.datetime.strptime(params["trdDd"], "%Y%m%d").date()
        if session_index(day) < 0:
            return []
        frame = index_members(self.market, f"{params.get('indIdx', '')}{params.get('indIdx2', '')}", day)
        return [{"ISU_SRT_CD": r.ticker, "ISU_ABBRV": r.name, "TDD_CLSPRC": _c(r.close), "FLUC_TP_CD": _fluc(r.change_rate),
                 "STR_CMP_PRC": _c(r.close - r.base_price), "FLUC_RT": _rate(r.change_rate), "MKTCAP": _c(r.market_cap)}
                for r in frame.itertuples(index=False)]

    def _delisted(self, params: dict) -> list[dict]:
        """MDCSTAT23801 ``output``: delisted issues with a DELIST_DD from ``strtDd`` to ``endDd``, newest first."""
        from krxflow.sample.market_universe import delisted_answer

        first = dt.datetime.strptime(params["strtDd"], "%Y%m%d").date()
        last = dt.datetime.strptime(params["endDd"], "%Y%m%d").date()
        return delisted_answer(self.market, first, last)

    # ----------------------------------------------------------------- ETFs and ETNs (issue 27, point 4)
    def _etp_day(self, kind: str, params: dict) -> list[dict]:
        from krxflow.sample.market_etps import etp_answer

        day = dt.datetime.strptime(params["trdDd"], "%Y%m%d").date()
        return etp_answer(self.market, kind, day, published=day <= self.today)

    def _etfs(self, params: dict) -> list[dict]:
        """MDCSTAT04301 ``output``: every ETF of ``trdDd``."""
        return self._etp_day("ETF", params)

    def _etns(self, params: dict) -> list[dict]:
        """MDCSTAT06401 ``output``: every ETN of ``trdDd``."""
        return self._etp_day("ETN", params)

    def _etf_info(self, params: dict) -> list[dict]:
        """MDCSTAT04601 ``output``: today's ETFs' base info."""
        from krxflow.sample.market_etps import etp_info_answer

        return etp_info_answer(self.market, "ETF", self.today)

    def _etn_info(self, params: dict) -> list[dict]:
        """MDCSTAT06701 ``output``: today's ETNs' base info."""
        from krxflow.sample.market_etps import etp_info_answer

        return etp_info_answer(self.market, "ETN", self.today)

    def _last_session(self) -> dt.date:
        all_sessions = sessions()
        i = int(np.searchsorted(all_sessions, np.datetime64(self.today, "D"), side="right")) - 1
        return all_sessions[max(i, 0)].astype(dt.date)

    # ----------------------------------------------------------------- Naver
    def _naver(self, request):
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        return self._answer("naver", query, request, lambda: self._chart(query))

    def _chart(self, query: dict):
        ticker = query.get("symbol", "")
        count = int(query.get("count", "1"))
        first = self.today - dt.timedelta(days=count)
        p = self.market.profile(ticker)
        frame = self.market.history(ticker, first, self.today, adjusted=True) if p else pd.DataFrame()
        name = p.name if p else ""
        items = "".join(
            f'\t\t\t\t<item data="{r.trade_date:%Y%m%d}|{0 if r.open is pd.NA else int(r.open)}|'
            f'{0 if r.high is pd.NA else int(r.high)}|{0 if r.low is pd.NA else int(r.low)}|{int(r.close)}|'
            f'{int(r.volume)}" />\n' for r in frame.itertuples(index=False))
        xml = ('<?xml version="1.0" encoding="EUC-KR" ?>\n\n<protocol>\n\t\t\t<chartdata symbol="'
               f'{ticker}" name="{name}" count="{len(frame)}" timeframe="day" precision="0" origintime="19900103">\n'
               f"{items}\t\t\t</chartdata>\n</protocol>\n")
        return 200, {"Content-Type": "text/xml;charset=EUC-KR"}, xml.encode("euc-kr")


#: The other daily reports (issue 17): bld → (answer key, builder), as KRX answers them.
_REPORT_ANSWERS = {
    "finder_equidx": ("block1", KrxReplay._index_finder),
    "MDCSTAT00101": ("output", KrxReplay._index_prices),
    "MDCSTAT02401": ("output", KrxReplay._investors),
    "MDCSTAT03501": ("output", KrxReplay._fundamentals),
    "MDCSTAT30101": ("OutBlock_1", KrxReplay._short_selling),
    "MDCSTAT30501": ("OutBlock_1", KrxReplay._short_balance),
    "MDCSTAT03701": ("output", KrxReplay._foreign_ownership),
    "MDCSTAT03901": ("block1", KrxReplay._industries),
    "MDCSTAT00601": ("output", KrxReplay._index_members),
    "MDCSTAT23801": ("output", KrxReplay._delisted),
    "MDCSTAT04301": ("output", KrxReplay._etfs),
    "MDCSTAT06401": ("output", KrxReplay._etns),
    "MDCSTAT04601": ("output", KrxReplay._etf_info),
    "MDCSTAT06701": ("output", KrxReplay._etn_info),
}
