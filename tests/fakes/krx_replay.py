"""An offline KRX + Naver that answers pykrx's *real* HTTP requests, for tests and the bench.

Built on the ``responses`` library (it patches ``requests``' adapter, so pykrx's own sessions,
headers and parsing code run unchanged). Answers are generated from the deterministic
:class:`~krxflow.sources.sample.SampleMarket`, in the shapes KRX and Naver really send (checked
against the recorded responses in the shared reference folder):

* ``POST getJsonData.cmd`` by its ``bld`` form field: ``MDCSTAT01501`` (all tickers, one day,
  ``OutBlock_1``; on a holiday every ticker with ``"-"`` values), ``MDCSTAT01701`` (one ticker by
  ISIN, ``output``, newest first), ``finder_stkisu`` / ``finder_listdelisu`` (``block1``).
  Numbers are strings with thousands commas; halted days have open/high/low ``"0"``;
  ``Content-Type: text/html`` as KRX does.
* ``GET fchart.stock.naver.com/sise.nhn``: EUC-KR XML ``<item data="YYYYMMDD|o|h|l|c|v"/>``.
* The login: ``GET MDCCOMS001.cmd``, ``GET login.jsp``, ``POST MDCCOMS001D1.cmd`` answering
  ``{"_error_code": login_code}`` (``CD001`` ok, ``CD010`` password change required).

Faults are injected per kind of request: ``replay.fail("MDCSTAT01501", "logout")`` answers the
next such request with ``LOGOUT`` (also ``"403"``, ``"html"``, ``"empty"``, ``"500"``).
``require_login=True`` makes data requests answer ``LOGOUT`` until a login succeeded, as KRX
has done since 2026-02-27. Every request received is counted in :attr:`KrxReplay.received`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections import Counter, defaultdict
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import responses

from krxflow.sources.sample import SampleMarket, isin_of, session_index, sessions

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


def _kind_of(bld: str) -> str:
    return bld.rsplit("/", 1)[-1]


class KrxReplay:
    """Offline KRX/Naver. Use as a context manager (or :meth:`start`/:meth:`stop`)."""

    def __init__(self, market: SampleMarket | None = None, *, tickers: int = 40, login_code: str = "CD001",
                 require_login: bool = False, today: dt.date | None = None):
        self.market = market or SampleMarket(tickers)
        self.login_code = login_code
        self.require_login = require_login
        self.logged_in = False
        self.today = today or dt.date.today()
        self.received: Counter = Counter()
        self.log: list[tuple[str, dict]] = []
        self._faults: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        self._isins = {isin_of(t): t for t in self.market.tickers}
        self._mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self._mock.add_callback(responses.POST, KRX_DATA_URL, callback=self._krx_data)
        self._mock.add_callback(responses.GET, NAVER_URL, callback=self._naver)
        self._mock.add_callback(responses.GET, LOGIN_PAGE, callback=self._login_page)
        self._mock.add_callback(responses.GET, LOGIN_JSP, callback=self._login_jsp)
        self._mock.add_callback(responses.POST, LOGIN_URL, callback=self._login)

    # ----------------------------------------------------------------- control
    def start(self) -> "KrxReplay":
        self._mock.start()
        return self

    def stop(self) -> None:
        self._mock.stop()
        self._mock.reset()

    def __enter__(self) -> "KrxReplay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(self, kind: str, fault: str, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``kind`` (a bld name like ``MDCSTAT01501``, ``naver``,
        or ``*`` for any data request) with ``fault``: logout, 403, html, empty or 500."""
        if fault not in {"logout", "403", "html", "empty", "500"}:
            raise ValueError(f"unknown fault {fault!r}")
        self._faults[kind].extend([fault] * times)

    @property
    def total(self) -> int:
        return sum(self.received.values())

    # ----------------------------------------------------------------- plumbing
    def _note(self, kind: str, params: dict) -> str | None:
        with self._lock:
            self.received[kind] += 1
            self.log.append((kind, params))
            for key in (kind, "*"):
                if self._faults.get(key):
                    return self._faults[key].pop(0)
        return None

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

    # ----------------------------------------------------------------- login
    def _login_page(self, request):
        self._note("login_page", {})
        return 200, {"Content-Type": "text/html", "Set-Cookie": "JSESSIONID=replay-session; Path=/"}, "<html></html>"

    def _login_jsp(self, request):
        self._note("login_jsp", {})
        return 200, {"Content-Type": "text/html"}, "<html><body>login</body></html>"

    def _login(self, request):
        params = {k: v[0] for k, v in parse_qs(request.body or "").items()}
        self._note("login", {"mbrId": params.get("mbrId")})
        code = self.login_code
        if code == "CD011" and params.get("skipDup") == "Y":
            code = "CD001"
        self.logged_in = code == "CD001"
        message = {"CD001": "정상", "CD010": "비밀번호를 변경하세요.", "CD011": "중복 로그인"}.get(code, "오류")
        return 200, {"Content-Type": "application/json"}, json.dumps({"_error_code": code, "_error_message": message})

    # ----------------------------------------------------------------- KRX data
    def _krx_data(self, request):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        params = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        kind = _kind_of(params.get("bld", ""))
        fault = self._note(kind, params)
        empty_key = "block1" if kind.startswith("finder") else "OutBlock_1" if kind == "MDCSTAT01501" else "output"
        if fault:
            return self._fault_answer(fault, empty_key)
        if self.require_login and not self.logged_in:
            return self._fault_answer("logout", empty_key)
        if kind == "MDCSTAT01501":
            payload = {"OutBlock_1": self._all_market(params["trdDd"], params.get("mktId", "ALL"))}
        elif kind == "MDCSTAT01701":
            payload = {"output": self._one_ticker(params["isuCd"], params["strtDd"], params["endDd"])}
        elif kind == "finder_stkisu":
            payload = {"block1": self._finder(delisted=False)}
        elif kind == "finder_listdelisu":
            payload = {"block1": self._finder(delisted=True)}
        else:
            return 400, {"Content-Type": "text/html"}, f"replay: unknown bld {kind}"
        payload["CURRENT_DATETIME"] = _STAMP
        return 200, _JSON_HEADERS, json.dumps(payload, ensure_ascii=False)

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
            prev = None if holiday else r.close / (1 + r.change_rate / 100)
            rows.append({
                "ISU_SRT_CD": r.ticker, "ISU_CD": r.isin, "ISU_ABBRV": r.name, "MKT_NM": r.market,
                "SECT_TP_NM": r.sector or "",
                "TDD_CLSPRC": "-" if holiday else _c(r.close),
                "FLUC_TP_CD": "3" if holiday else _fluc(r.change_rate),
                "CMPPREVDD_PRC": "-" if holiday else _c(round(r.close - prev)),
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

    def _one_ticker(self, isin: str, start: str, end: str) -> list[dict]:
        ticker = self._isins.get(isin)
        if ticker is None:
            return []
        first = dt.datetime.strptime(start, "%Y%m%d").date()
        last = dt.datetime.strptime(end, "%Y%m%d").date()
        frame = self.market.history(ticker, first, last, adjusted=False)
        rows = []
        for r in frame.iloc[::-1].itertuples(index=False):  # KRX: newest first
            halted = r.open is pd.NA
            prev = r.close / (1 + r.change_rate / 100)
            rows.append({
                "TRD_DD": r.trade_date.strftime("%Y/%m/%d"), "TDD_CLSPRC": _c(r.close), "FLUC_TP_CD": _fluc(r.change_rate),
                "CMPPREVDD_PRC": _c(round(r.close - prev)), "FLUC_RT": _rate(r.change_rate),
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

    def _last_session(self) -> dt.date:
        all_sessions = sessions()
        i = int(np.searchsorted(all_sessions, np.datetime64(self.today, "D"), side="right")) - 1
        return all_sessions[max(i, 0)].astype(dt.date)

    # ----------------------------------------------------------------- Naver
    def _naver(self, request):
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        ticker = query.get("symbol", "")
        fault = self._note("naver", query)
        if fault:
            return self._fault_answer(fault, "output")
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
