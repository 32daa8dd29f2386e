"""The real KRX (and Naver, for adjusted prices) through pykrx, made safe to run unattended.

pykrx is a scraper of KRX's web site and was written for notebooks: it logs in at import time
from ``KRX_ID``/``KRX_PW``, has no timeouts, turns almost every failure into an empty DataFrame,
keeps a broken ticker table for the life of the process and spams the root logger. This module
keeps pykrx's request code (so the requests are exactly pykrx's), parses the answers itself
(:mod:`krxflow.krx.parsing`, :mod:`krxflow.krx.report_parsing`: pure functions) and adds what an
Airflow deployment needs:

* **One shared KRX session** (:mod:`krxflow.krx.login`): the ``krx_default``
  Connection's login logs in once for the whole installation and every worker reuses its cookies
  through Redis; pykrx never logs in itself (its ``KRX_ID``/``KRX_PW`` import-time login is kept
  out: the variables are hidden while pykrx is imported) and gets krxflow's session injected
  through ``pykrx.website.comm.auth.set_auth_session`` before every fetch
  (:mod:`krxflow.krx.pykrx_session`). A refused login raises
  :class:`KrxLoginError` (``CD010`` = KRX wants a password change). On ``LOGOUT`` the shared
  session is dropped and renewed once.
* **Every request gated** (:mod:`krxflow.krx.gated_http`): the circuit checked and the
  interval honoured at the moment of sending, across all workers, pykrx's own requests (its
  >730-day split) and the login's included; timeouts on every request.
* **Typed errors** instead of empty frames, decided from the HTTP answer itself: ``LOGOUT``
  (:class:`KrxLogoutError`), HTTP 403 or an HTML page (:class:`KrxBlockedError`, which opens the
  circuit), other statuses and timeouts (:class:`KrxHttpError`), an empty answer on a trading day
  (:class:`KrxEmptyAnswerError`), rows whose every value is ``"-"`` on a trading day — KRX's answer
  for a session it has not published yet — (:class:`KrxNotPublishedError`: nothing of the day is
  returned, so nothing is written), an unexpected shape (:class:`KrxBadAnswerError`).
  Holidays are not errors: the XKRX calendar decides, and no request is sent for them.
* pykrx's ``StockTicker`` singleton is reset after a failure; its prints and broken log calls
  are silenced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import logging
from collections import Counter
from typing import Callable

import pandas as pd

from krxflow.krx import report_parsing as frames
from krxflow.krx import etp_parsing, universe_parsing
from krxflow.krx.gated_http import GatedSession
from krxflow.krx.login import KrxLoginState, SharedKrxLogin
from krxflow.krx.pacing import Pacer
from krxflow.krx.parsing import market_day_frame, naver_frame, raw_without_values, ticker_history_frame, without_values
from krxflow.krx.pykrx_session import (Credentials, bind_session, import_pykrx, known_isins, krx_credentials,
                                       login_error, remember_isins, reset_pykrx_state)
from krxflow.market_time import kst_date, kst_today
from krxflow.settings import KRX_CONN_ID
from krxflow.krx.interface import (ETP_DAY_COLUMNS, ETP_INFO_COLUMNS, ETP_KINDS, INDEX_COLUMNS, INDEX_MEMBER_COLUMNS,
                                  INDUSTRY_COLUMNS)
from krxflow.krx.interface import (DAILY_COLUMNS, DELISTED_COLUMNS, FOREIGN_OWNERSHIP_COLUMNS, FUNDAMENTAL_COLUMNS,
                                  INDEX_GROUPS, INDEX_PRICE_COLUMNS, INVESTOR_COLUMNS, INVESTOR_TYPES,
                                  KRX_ADJUSTED_COLUMNS, LISTING_COLUMNS, MARKET_DAY_COLUMNS, SHORT_BALANCE_COLUMNS,
                                  SHORT_SELLING_COLUMNS, KrxSource)
from krxflow.krx.errors import (KrxBadAnswerError, KrxEmptyAnswerError, KrxLogoutError, KrxNotPublishedError,
                                KrxSourceError)

log = logging.getLogger(__name__)

_MARKET_CODES = {"STK": "KOSPI", "KSQ": "KOSDAQ"}
#: ``mktId`` of the short-selling report per market (it has no "ALL").
_SHORT_MARKETS = ("STK", "KSQ")
#: ``inqCond`` of shares (주권) in the short-selling report: pykrx's "STMFRTSCIFDRFS".
_SHARES = "STMFRTSCIFDRFS"


class PykrxSource(KrxSource):
    """:class:`KrxSource` over pykrx 1.2.x (KRX ``getJsonData.cmd`` and Naver ``sise.nhn``).

    :param timeout: seconds per request (default ``KRXFLOW_KRX_TIMEOUT`` or 30).
    :param min_interval: seconds between two sends to one service (default
        ``KRXFLOW_KRX_MIN_INTERVAL`` or 1); the circuit and one-in-flight rules hold even at 0.
    """

    name = "pykrx"

    def __init__(self, conn_id: str = KRX_CONN_ID, *, timeout: float | None = None, min_interval: float | None = None,
                 redis_client=None):
        self.conn_id = conn_id
        self.pacers = {"krx": Pacer("krx", redis_client, min_interval),
                       "naver": Pacer("naver", redis_client, min_interval)}
        #: Requests this source sent, by kind (``krx``, ``naver``, ``login``).
        self.sent: Counter = Counter()
        self.http = GatedSession(self.pacers, timeout=timeout, counter=self.sent)
        for pacer in self.pacers.values():
            pacer.in_flight_ttl = self.http.timeout + 30
        self._creds: Credentials | None | bool = False  # False = not read yet
        self._shared_login: SharedKrxLogin | None = None

    # ------------------------------------------------------------------ interface
    def listing(self, day) -> pd.DataFrame:
        from krxflow.calendar import is_trading_day, previous_trading_day

        day = kst_date(day)
        session = day if is_trading_day(day) else previous_trading_day(day)
        return self._market_day(session)[LISTING_COLUMNS].reset_index(drop=True)

    def delisted(self) -> pd.DataFrame:
        import_pykrx()
        from pykrx.website.krx.market.core import 상폐종목검색

        raw = self._call(lambda: 상폐종목검색().fetch(mktsel="ALL"))
        if raw.empty:
            return pd.DataFrame(columns=DELISTED_COLUMNS)
        frame = pd.DataFrame({"ticker": raw["short_code"], "name": raw["codeName"],
                              "market": raw["marketCode"].map(_MARKET_CODES), "isin": raw["full_code"]})
        return frame[frame["market"].notna()].reset_index(drop=True)

    def market_day(self, day) -> pd.DataFrame:
        """Prices and listing of session ``day`` from KRX's one all-market answer (one request)."""
        from krxflow.calendar import is_trading_day

        day = kst_date(day)
        if not is_trading_day(day):
            return pd.DataFrame(columns=MARKET_DAY_COLUMNS)
        return self._market_day(day)[MARKET_DAY_COLUMNS].reset_index(drop=True)

    def daily_prices(self, day) -> pd.DataFrame:
        from krxflow.calendar import is_trading_day

        day = kst_date(day)
        if not is_trading_day(day):
            log.info("%s is not an XKRX session: no prices, no request", day)
            return pd.DataFrame(columns=DAILY_COLUMNS)
        return self._market_day(day)[DAILY_COLUMNS].reset_index(drop=True)

    def history(self, ticker: str, first, last, *, adjusted: bool = True, isin: str | None = None) -> pd.DataFrame:
        first, last = kst_date(first), kst_date(last)
        if adjusted:
            return self._naver_history(ticker, first, last)
        import_pykrx()
        from pykrx.website.krx.market.core import 개별종목시세

        isin = isin or self._isin(ticker)
        if isin is None:
            log.info("KRX knows no ISIN for %s: no history", ticker)
            return pd.DataFrame(columns=DAILY_COLUMNS)
        raw = self._call(lambda: 개별종목시세().fetch(strtDd=first.strftime("%Y%m%d"), endDd=last.strftime("%Y%m%d"),
                                                    isuCd=isin, adjStkPrc=1))
        return ticker_history_frame(raw, ticker)

    def krx_adjusted(self, ticker: str, first, last, *, isin: str | None = None) -> pd.DataFrame:
        first, last = kst_date(first), kst_date(last)
        import_pykrx()
        from pykrx.website.krx.market.core import 개별종목시세

        isin = isin or self._isin(ticker)
        if isin is None:
            return pd.DataFrame(columns=KRX_ADJUSTED_COLUMNS)
        raw = self._call(lambda: 개별종목시세().fetch(strtDd=first.strftime("%Y%m%d"), endDd=last.strftime("%Y%m%d"),
                                                    isuCd=isin, adjStkPrc=2))
        return ticker_history_frame(raw, ticker)[KRX_ADJUSTED_COLUMNS]

    def requests_sent(self) -> int:
        return sum(self.sent.values())

    # ------------------------------------------------------------------ other daily reports (issue 17)
    # Each report asks for every part of the day before returning: a failure on any request (LOGOUT
    # after the re-login, a block, an empty answer) raises and nothing of the day is returned.
    def index_prices(self, day) -> pd.DataFrame:
        """finder_equidx (the master, 1 request) + MDCSTAT00101 per group (3 requests)."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 전체지수시세, 주가지수검색

        day = self._session_or_none(day)
        if day is None:
            return pd.DataFrame(columns=INDEX_PRICE_COLUMNS + ["name", "index_group"])
        master = frames.index_master_frame(self._call(lambda: 주가지수검색().fetch("1")))
        parts = []
        for group, code in INDEX_GROUPS.items():
            raw = self._call(lambda: 전체지수시세().fetch(trdDd=day.strftime("%Y%m%d"), idxIndMidclssCd=code))
            part = frames.index_prices_frame(raw, group, master, day)
            if without_values(part):
                raise _not_published(f"the {group} index prices", day, len(part))
            if part.empty or part["close"].isna().all():
                raise KrxEmptyAnswerError(f"KRX answered no {group} index prices for {day}, an XKRX trading day")
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def investor_trading(self, day) -> pd.DataFrame:
        """MDCSTAT02401 once per investor type (11 requests), all tickers of both markets each."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 투자자별_순매수상위종목

        day = self._session_or_none(day)
        if day is None:
            return pd.DataFrame(columns=INVESTOR_COLUMNS)
        text = day.strftime("%Y%m%d")
        parts = []
        for code, investor in INVESTOR_TYPES.items():
            raw = self._call(lambda: 투자자별_순매수상위종목().fetch(strtDd=text, endDd=text, mktId="ALL", invstTpCd=code))
            part = frames.investor_frame(raw, investor, day)
            if without_values(part):
                raise _not_published(f"the trading of investor type {investor} ({code})", day, len(part))
            if part.empty:
                raise KrxEmptyAnswerError(f"KRX answered no trading of investor type {investor} ({code}) on {day}, "
                                          "an XKRX trading day")
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def fundamentals(self, day) -> pd.DataFrame:
        """MDCSTAT03501, all tickers (1 request)."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import PER_PBR_배당수익률_전종목

        return self._one_report(day, "fundamentals", FUNDAMENTAL_COLUMNS, frames.fundamentals_frame,
                                [lambda d: PER_PBR_배당수익률_전종목().fetch(trdDd=d, mktId="ALL")])

    def short_selling(self, day) -> pd.DataFrame:
        """srt MDCSTAT30101 per market (2 requests; KRX has no "ALL" here), shares only."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 개별종목_공매도_거래_전종목

        return self._one_report(day, "short selling", SHORT_SELLING_COLUMNS, frames.short_selling_frame,
                                [lambda d, m=mkt: 개별종목_공매도_거래_전종목().fetch(trdDd=d, mktId=m,
                                                                                secugrpId=[_SHARES])
                                 for mkt in _SHORT_MARKETS])

    def short_balance(self, day) -> pd.DataFrame:
        """srt MDCSTAT30501 per market (2 requests; ``mktTpCd`` 1 KOSPI, 2 KOSDAQ)."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 전종목_공매도_잔고

        return self._one_report(day, "short balances", SHORT_BALANCE_COLUMNS, frames.short_balance_frame,
                                [lambda d, m=tp: 전종목_공매도_잔고().fetch(trdDd=d, mktTpCd=m) for tp in (1, 2)])

    def foreign_ownership(self, day) -> pd.DataFrame:
        """MDCSTAT03701, all tickers (1 request)."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 외국인보유량_전종목

        return self._one_report(day, "foreign ownership", FOREIGN_OWNERSHIP_COLUMNS, frames.foreign_ownership_frame,
                                [lambda d: 외국인보유량_전종목().fetch(trdDd=d, mktId="ALL", isuLmtRto=0)])

    # ------------------------------------------------------------------ the universe (issue 27)
    def industries(self, day) -> pd.DataFrame:
        """MDCSTAT03901 per market (2 requests): every ticker's industry. Empty or changed: an error."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 업종분류현황

        from krxflow.krx.universe_catalog import INDUSTRY_MARKETS

        day = self._session_or_none(day)
        if day is None:
            return pd.DataFrame(columns=INDUSTRY_COLUMNS)
        parts = []
        for market, mkt_id in INDUSTRY_MARKETS.items():
            raw = self._call(lambda: 업종분류현황().fetch(trdDd=day.strftime("%Y%m%d"), mktId=mkt_id))
            if raw_without_values(raw, universe_parsing.INDUSTRY_DAY_FIELDS):
                raise _not_published(f"the {market} industries", day, len(raw))
            part = universe_parsing.industries_frame(raw, market)
            if part.empty:
                raise KrxEmptyAnswerError(f"KRX answered no {market} industries for {day}, an XKRX trading day: "
                                          "not published yet, or a site change")
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def index_members(self, index_code: str, day) -> pd.DataFrame:
        """MDCSTAT00601 (1 request): the index's constituents. Empty: an error (no index has none)."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 지수구성종목

        day = self._session_or_none(day)
        if day is None:
            return pd.DataFrame(columns=INDEX_MEMBER_COLUMNS)
        raw = self._call(lambda: 지수구성종목().fetch(day.strftime("%Y%m%d"), index_code[1:], group_id=index_code[0]))
        if raw_without_values(raw, universe_parsing.MEMBER_DAY_FIELDS):
            raise _not_published(f"the constituents of index {index_code}", day, len(raw))
        frame = universe_parsing.index_members_frame(raw, index_code)
        if frame.empty:
            raise KrxEmptyAnswerError(f"KRX answered no constituents of index {index_code} for {day}, an XKRX "
                                      "trading day: not published yet, an index KRX no longer calculates, or a site change")
        return frame

    def index_master(self) -> pd.DataFrame:
        """finder_equidx (1 request): every index of the KRX, KOSPI and KOSDAQ groups."""
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.market.core import 주가지수검색

        master = frames.index_master_frame(self._call(lambda: 주가지수검색().fetch("1")))
        if master.empty:
            raise KrxEmptyAnswerError("KRX's index finder (finder_equidx) answered no index: site change?")
        return master[INDEX_COLUMNS]

    def delistings(self, first, last) -> pd.DataFrame:
        """MDCSTAT23801 (1 request per 730 days, pykrx's split): delisted shares of the window."""
        first, last = kst_date(first), kst_date(last)
        raw = self._call(lambda: _delisted_issues()().fetch(first.strftime("%Y%m%d"), last.strftime("%Y%m%d")))
        return universe_parsing.delistings_frame(raw)

    # ------------------------------------------------------------------ ETFs and ETNs (issue 27, point 4)
    def etp_day(self, kind: str, day) -> pd.DataFrame:
        """MDCSTAT04301 (ETF) or MDCSTAT06401 (ETN), one request: every product of the session.
        No priced row (an empty answer, or KRX's rows of "-" for a day it has not published): an error."""
        if kind not in ETP_KINDS:
            raise ValueError(f"kind must be one of {ETP_KINDS} (got {kind!r})")
        day = self._session_or_none(day)
        if day is None:
            return pd.DataFrame(columns=ETP_DAY_COLUMNS)
        fetch = _etp_screens()[kind]
        raw = self._call(lambda: fetch().fetch(day.strftime("%Y%m%d")))
        frame = etp_parsing.etp_day_frame(raw, kind, day)
        if frame.empty:
            raise KrxEmptyAnswerError(f"KRX answered no {kind} prices for {day}, an XKRX trading day ({len(raw)} rows, "
                                      "none with a close): not published yet, or a site change. Nothing written.")
        return frame

    def etp_info(self, kind: str) -> pd.DataFrame:
        """MDCSTAT04601 (ETF) or MDCSTAT06701 (ETN), one request: today's products' base information."""
        if kind not in ETP_KINDS:
            raise ValueError(f"kind must be one of {ETP_KINDS} (got {kind!r})")
        import_pykrx()  # first: pykrx must never be imported with KRX_ID/KRX_PW visible
        from pykrx.website.krx.etx.core import ETF_전종목기본종목, ETN_전종목기본종목

        screen = {"ETF": ETF_전종목기본종목, "ETN": ETN_전종목기본종목}[kind]
        frame = etp_parsing.etp_info_frame(self._call(lambda: screen().fetch()), kind)
        if frame.empty:
            raise KrxEmptyAnswerError(f"KRX's {kind} base info answered no product: site change?")
        return frame[ETP_INFO_COLUMNS]

    def _session_or_none(self, day) -> dt.date | None:
        from krxflow.calendar import is_trading_day

        day = kst_date(day)
        if not is_trading_day(day):
            log.info("%s is not an XKRX session: no report, no request", day)
            return None
        import_pykrx()
        return day

    def _one_report(self, day, what: str, columns: list[str], parse: Callable, fetches: list[Callable]) -> pd.DataFrame:
        """A report of one or more all-ticker requests (``fetches``, one per market, each given the
        ``YYYYMMDD`` day and sent through :meth:`_call`): every part, or an error."""
        day = self._session_or_none(day)
        if day is None:
            return pd.DataFrame(columns=columns)
        text = day.strftime("%Y%m%d")
        parts = []
        for fetch in fetches:
            part = parse(self._call(lambda: fetch(text)), day)
            if without_values(part):
                raise _not_published(what, day, len(part))
            if part.empty:
                raise KrxEmptyAnswerError(f"KRX answered no {what} for {day}, an XKRX trading day: not published "
                                          "yet, or a site change")
            parts.append(part)
        return pd.concat(parts, ignore_index=True)[columns]

    # ------------------------------------------------------------------ internals
    def _market_day(self, day: dt.date) -> pd.DataFrame:
        import_pykrx()
        from pykrx.website.krx.market.core import 전종목시세

        raw = self._call(lambda: 전종목시세().fetch(trdDd=day.strftime("%Y%m%d"), mktId="ALL"))
        frame = market_day_frame(raw, day) if not raw.empty else pd.DataFrame(columns=DAILY_COLUMNS)
        if without_values(frame):
            raise _not_published("the prices", day, len(frame))
        if frame.empty or frame["close"].isna().all():
            raise KrxEmptyAnswerError(f"KRX answered no prices for {day}, an XKRX trading day "
                                      f"({len(raw)} rows, all without a close): not published yet, or a site change")
        return frame[frame["close"].notna()]

    def _naver_history(self, ticker: str, first: dt.date, last: dt.date) -> pd.DataFrame:
        import_pykrx()
        from pykrx.website.naver.core import Sise

        # pykrx asks Naver for the number of calendar days back from today (plus 2 for the first change).
        count = max((kst_today() - first).days + 2, 1)
        xml_text = self._call(lambda: Sise().fetch(ticker, count), krx_login=False)
        return naver_frame(xml_text, ticker, first, last)

    def _isin(self, ticker: str) -> str | None:
        if known_isins() is None:
            import_pykrx()
            from pykrx.website.krx.market.core import 상장종목검색, 상폐종목검색

            isins: dict[str, str] = {}
            for finder in (상폐종목검색, 상장종목검색):  # listed last: a reused code maps to the live issue
                raw = self._call(lambda: finder().fetch(mktsel="ALL"))
                if not raw.empty:
                    isins.update(zip(raw["short_code"], raw["full_code"]))
            remember_isins(isins)
        return known_isins().get(ticker)

    def _call(self, fetch: Callable, *, krx_login: bool = True):
        """Run one pykrx fetch on krxflow's session; pykrx's silent failures become typed errors.

        With credentials, the shared login's cookies are sent; a ``LOGOUT`` drops that session and
        the fetch is tried once more on a renewed one. Naver needs no login (``krx_login=False``).
        """
        creds = self._credentials() if krx_login else None
        for attempt in (1, 2):
            state = self._login().current() if creds else None
            self.bind_pykrx(state)
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    return fetch()
            except KrxLogoutError as exc:
                reset_pykrx_state()
                if state is None:
                    raise KrxLogoutError(
                        "KRX answered LOGOUT: its data service needs a logged-in session. Set login/password on "
                        f"the {self.conn_id} Connection. Not retrying.") from exc
                if attempt == 2:
                    raise KrxLogoutError(
                        "KRX answered LOGOUT again right after a new login: is the account logged in elsewhere "
                        "(KRX keeps one session per account)? Not retrying.") from exc
                self._login().invalidate(state)
            except KrxSourceError:
                reset_pykrx_state()
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # incl. JSONDecodeError
                reset_pykrx_state()
                raise KrxBadAnswerError(f"unexpected answer from KRX/Naver ({type(exc).__name__}: {exc})") from exc
            finally:
                if printed.getvalue().strip():
                    log.debug("pykrx printed: %s", printed.getvalue().strip()[:500])
        raise AssertionError("unreachable")  # pragma: no cover

    def bind_pykrx(self, state: KrxLoginState | None) -> None:
        """Make pykrx send through this source's gated session, with ``state``'s cookies (none: anonymous)."""
        bind_session(self.http, state)

    def _credentials(self) -> Credentials | None:
        if self._creds is False:
            self._creds = krx_credentials(self.conn_id)
        return self._creds or None

    def _login(self) -> SharedKrxLogin:
        if self._shared_login is None:
            creds = self._credentials()
            self._shared_login = SharedKrxLogin(creds.login, creds.password, self._perform_login, self.pacers["krx"])
        return self._shared_login

    def _perform_login(self) -> dict[str, str]:
        """pykrx's own login (GET page, GET login.jsp, POST) on a fresh gated session; its cookies."""
        import_pykrx()
        from pykrx.website.comm import auth

        creds = self._credentials()
        http = GatedSession(self.pacers, timeout=self.http.timeout, counter=self.sent)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                ok = auth.login_krx(creds.login, creds.password, session=http)
        except ValueError as exc:  # not JSON, yet not a block page either (those raise KrxBlockedError)
            raise KrxBadAnswerError(f"KRX's login answered something that is not JSON ({exc}): site change?") from exc
        if not ok:
            raise login_error(printed.getvalue())
        return {cookie.name: cookie.value for cookie in http.cookies}


def _not_published(what: str, day: dt.date, rows: int) -> KrxNotPublishedError:
    return KrxNotPublishedError(
        f"KRX has not published {day} yet: it answered {what} of that XKRX trading day with {rows} rows whose "
        'values are all "-" (its answer for a day without data). Nothing of the day is written and the load is '
        "not done; a later try (the task's retries, a rerun) loads it once KRX publishes it.")


@functools.lru_cache(maxsize=1)
def _delisted_issues():
    """KRX's delisted-issues screen (상장폐지종목 현황, MDCSTAT23801) on pykrx's request code.

    pykrx 1.2.9 lists the bld (``path_bld_information.json``) but has no class for it; this one is
    written as its core classes are (a ``KrxWebIo``: same session, form and >730-day split).
    """
    import_pykrx()
    from pykrx.website.krx.krxio import KrxWebIo

    class 상장폐지종목현황(KrxWebIo):
        @property
        def bld(self):
            return "dbms/MDC/STAT/issue/MDCSTAT23801"

        def fetch(self, strtDd: str, endDd: str) -> pd.DataFrame:
            result = self.read(mktId="ALL", isuCd="ALL", isuCd2="ALL", strtDd=strtDd, endDd=endDd, share="1",
                               csvxls_isNo="true")
            return pd.DataFrame(result["output"])

    return 상장폐지종목현황


@functools.lru_cache(maxsize=1)
def _etp_screens() -> dict:
    """KRX's all-product screens of one day: pykrx's ETF class (전종목시세_ETF, MDCSTAT04301) and an
    ETN one written as pykrx's core classes are (pykrx 1.2.9 has no class for MDCSTAT06401, KRX's
    ETN screen [13201]; its form is the screen's: ``trdDd``, ``share``, ``money``)."""
    import_pykrx()
    from pykrx.website.krx.etx.core import 전종목시세_ETF
    from pykrx.website.krx.krxio import KrxWebIo

    class 전종목시세_ETN(KrxWebIo):
        @property
        def bld(self):
            return "dbms/MDC/STAT/standard/MDCSTAT06401"

        def fetch(self, date: str) -> pd.DataFrame:
            result = self.read(trdDd=date, share="1", money="1")
            return pd.DataFrame(result["output"])

    return {"ETF": 전종목시세_ETF, "ETN": 전종목시세_ETN}


__all__ = ["PykrxSource"]
