"""The one interface every KRX data source answers, and the row shapes it returns.

DAGs only ever see :class:`KrxSource`; which implementation runs is configuration
(:func:`krxflow.sources.get_source`). Every method returns a pandas DataFrame whose columns are
exactly those of the target table (see the ``*_COLUMNS`` constants), so that a frame goes
straight into ``BatchedPostgresHook.upsert``.

Holidays are not errors: asking for a day that is not an XKRX session returns an empty frame
(and sends no request). Real failures raise the typed errors of :mod:`krxflow.krx.errors`.
"""

from __future__ import annotations

import abc

from krxflow.market_time import kst_date

#: ``stocks`` columns a listing provides (first_seen/last_seen/delisted are the DAG's business).
LISTING_COLUMNS = ["ticker", "name", "market", "isin", "sector", "listed_shares", "market_cap"]
#: Known delisted tickers (the date is often unknown: KRX's finder does not give it).
DELISTED_COLUMNS = ["ticker", "name", "market", "isin"]
#: ``daily_prices`` columns (unadjusted, as KRX publishes them). ``base_price`` is the day's base
#: price (기준가) the change is measured against: the previous close, except on an ex-date.
DAILY_COLUMNS = ["ticker", "trade_date", "open", "high", "low", "close", "volume", "trading_value",
                 "change_rate", "base_price", "market_cap", "listed_shares"]
#: KRX's own adjusted prices (the cross-check's reference).
KRX_ADJUSTED_COLUMNS = ["ticker", "trade_date", "open", "high", "low", "close"]
#: One session of the whole market with each ticker's listing (what KRX's all-market answer carries).
MARKET_DAY_COLUMNS = DAILY_COLUMNS + ["name", "market", "isin", "sector"]
#: ``daily_prices_adjusted`` columns (split-adjusted series).
ADJUSTED_COLUMNS = ["ticker", "trade_date", "open", "high", "low", "close", "volume", "change_rate"]
#: The markets krxflow keeps.
MARKETS = ("KOSPI", "KOSDAQ")

# ---- the other all-tickers-one-day reports (issue 17); each frame's columns are its table's.
#: The index groups krxflow keeps, with KRX's ``idxIndMidclssCd`` (MDCSTAT00101).
INDEX_GROUPS = {"KRX": "01", "KOSPI": "02", "KOSDAQ": "03"}
#: ``krx_index_prices`` (MDCSTAT00101 joined to the finder_equidx master by group and name).
INDEX_PRICE_COLUMNS = ["index_code", "trade_date", "open", "high", "low", "close", "change", "change_rate",
                       "volume", "trading_value", "market_cap"]
#: ``krx_indices``: the index master (code = finder_equidx ``full_code`` + ``short_code``, e.g. 1001).
INDEX_COLUMNS = ["index_code", "name", "index_group"]
#: Investor types of MDCSTAT02401 (``invstTpCd``) that partition every trade: their net buys sum
#: to zero per ticker and day. 7050 (institutions total) is the sum of the first seven; 9999 is all.
INVESTOR_TYPES = {"1000": "financial_investment", "2000": "insurance", "3000": "investment_trust",
                  "3100": "private_equity", "4000": "bank", "5000": "other_financial", "6000": "pension_fund",
                  "7100": "other_corporation", "8000": "individual", "9000": "foreign", "9001": "other_foreign"}
#: The investor types that make up KRX's "institutions" (기관합계, 7050).
INSTITUTIONS = ("financial_investment", "insurance", "investment_trust", "private_equity", "bank",
                "other_financial", "pension_fund")
#: ``krx_investor_trading`` (MDCSTAT02401, once per investor type).
INVESTOR_COLUMNS = ["ticker", "trade_date", "investor", "sell_volume", "buy_volume", "net_volume", "sell_value",
                    "buy_value", "net_value"]
#: ``krx_fundamentals`` (MDCSTAT03501). ``-`` (a loss: no PER) is NULL, never 0 as pykrx makes it.
FUNDAMENTAL_COLUMNS = ["ticker", "trade_date", "eps", "per", "bps", "pbr", "dps", "dividend_yield"]
#: ``krx_short_selling`` (srt MDCSTAT30101, per market): short sales among the day's trading.
SHORT_SELLING_COLUMNS = ["ticker", "trade_date", "short_volume", "volume", "short_value", "trading_value"]
#: ``krx_short_balance`` (srt MDCSTAT30501, per market): outstanding short positions.
SHORT_BALANCE_COLUMNS = ["ticker", "trade_date", "balance_quantity", "balance_value", "listed_shares", "market_cap",
                         "balance_ratio"]
#: ``krx_foreign_ownership`` (MDCSTAT03701).
FOREIGN_OWNERSHIP_COLUMNS = ["ticker", "trade_date", "listed_shares", "foreign_held", "foreign_share_rate",
                             "foreign_limit", "limit_exhaustion_rate"]

# ---- the universe (issue 27): industries, index constituents, delistings.
#: One session's industry of every KOSPI/KOSDAQ ticker (MDCSTAT03901 per market).
INDUSTRY_COLUMNS = ["ticker", "market", "industry"]
#: One session's constituents of one index (MDCSTAT00601).
INDEX_MEMBER_COLUMNS = ["index_code", "ticker"]
#: ``krx_delistings`` (MDCSTAT23801): KRX's delisted issues with reason and successor code.
DELISTING_COLUMNS = ["ticker", "delisted_on", "name", "market", "security_group", "share_kind", "listed_on",
                     "reason", "successor_ticker", "successor_name", "arranged_trading_from", "arranged_trading_to",
                     "industry", "par_value", "listed_shares"]

# ---- ETFs and ETNs (issue 27, point 4): exchange-traded products, one all-product request a kind.
#: The kinds of exchange-traded products krxflow keeps (KRX's ETF and ETN screens).
ETP_KINDS = ("ETF", "ETN")
#: ``krx_etp_prices``: one session of every ETF or ETN (MDCSTAT04301 / MDCSTAT06401). ``nav`` is an
#: ETF's NAV or an ETN's indicative value (IV); ``net_assets`` its 순자산총액 / 지표가치총액.
ETP_PRICE_COLUMNS = ["code", "trade_date", "open", "high", "low", "close", "change", "change_rate", "nav", "volume",
                     "trading_value", "market_cap", "net_assets", "listed_units", "index_close", "index_change",
                     "index_change_rate"]
#: A session's answer also names each product: what the master takes from it.
ETP_DAY_COLUMNS = ETP_PRICE_COLUMNS + ["kind", "name", "isin", "underlying_index"]
#: KRX's base information of the products listed today (MDCSTAT04601 / MDCSTAT06701; no date).
ETP_INFO_COLUMNS = ["code", "kind", "name", "isin", "underlying_index", "issuer", "multiplier", "listed_on",
                    "last_trading_on"]


class KrxSource(abc.ABC):
    """KOSPI/KOSDAQ daily data: the ticker master, one day of the whole market, one ticker's history."""

    #: Short name used in logs and load_stats details.
    name: str = "abstract"

    @abc.abstractmethod
    def listing(self, day) -> "pd.DataFrame":  # noqa: F821
        """Every KOSPI/KOSDAQ ticker listed on session ``day`` (:data:`LISTING_COLUMNS`).

        On a holiday the listing of the previous session is returned.
        """

    @abc.abstractmethod
    def delisted(self) -> "pd.DataFrame":  # noqa: F821
        """Tickers the source knows to be delisted (:data:`DELISTED_COLUMNS`)."""

    @abc.abstractmethod
    def daily_prices(self, day) -> "pd.DataFrame":  # noqa: F821
        """The whole market on session ``day`` in one request (:data:`DAILY_COLUMNS`); empty on holidays."""

    @abc.abstractmethod
    def history(self, ticker: str, first, last, *, adjusted: bool = True,
                isin: str | None = None) -> "pd.DataFrame":  # noqa: F821
        """One ticker's sessions from ``first`` to ``last`` inclusive, oldest first.

        ``adjusted=True``: the split-adjusted series (:data:`ADJUSTED_COLUMNS`; like Naver, it
        does not cover delisted tickers). ``adjusted=False``: the raw KRX series
        (:data:`DAILY_COLUMNS`). An empty frame means the source has no data for the ticker.
        """

    @abc.abstractmethod
    def krx_adjusted(self, ticker: str, first, last, *, isin: str | None = None) -> "pd.DataFrame":  # noqa: F821
        """KRX's own adjusted prices of one ticker (MDCSTAT01701 with ``adjStkPrc=2``), oldest first:
        ``ticker, trade_date, open, high, low, close`` — the reference krxflow's derived series is
        checked against."""

    def market_day(self, day) -> "pd.DataFrame":  # noqa: F821
        """Session ``day`` of the whole market with each ticker's listing (:data:`MARKET_DAY_COLUMNS`;
        empty on holidays).

        KRX's all-market answer carries both: a source that gets them in one answer overrides this
        (as :class:`~krxflow.krx.source.PykrxSource` and the sample source do); this
        default asks for the prices and the listing separately.
        """
        import pandas as pd

        from krxflow.calendar import is_trading_day

        day = kst_date(day)
        if not is_trading_day(day):
            return pd.DataFrame(columns=MARKET_DAY_COLUMNS)
        prices = self.daily_prices(day)
        if prices.empty:
            return pd.DataFrame(columns=MARKET_DAY_COLUMNS)
        listing = self.listing(day).drop(columns=["listed_shares", "market_cap"])
        return prices.merge(listing, on="ticker", how="inner")[MARKET_DAY_COLUMNS]

    # ---- reports (issue 17): one session of the whole market each; empty frames on holidays.
    @abc.abstractmethod
    def index_prices(self, day) -> "pd.DataFrame":  # noqa: F821
        """Every index of the :data:`INDEX_GROUPS` on session ``day``: :data:`INDEX_PRICE_COLUMNS` plus
        ``name`` and ``index_group`` (the master). Indices KRX publishes without prices have NULLs."""

    @abc.abstractmethod
    def investor_trading(self, day) -> "pd.DataFrame":  # noqa: F821
        """Each ticker's trading by investor type on session ``day`` (:data:`INVESTOR_COLUMNS`); a
        ticker that did not trade has no rows."""

    @abc.abstractmethod
    def fundamentals(self, day) -> "pd.DataFrame":  # noqa: F821
        """EPS/PER/BPS/PBR/DPS/dividend yield of every ticker on session ``day`` (:data:`FUNDAMENTAL_COLUMNS`)."""

    @abc.abstractmethod
    def short_selling(self, day) -> "pd.DataFrame":  # noqa: F821
        """Short sales of every shortable ticker on session ``day`` (:data:`SHORT_SELLING_COLUMNS`)."""

    @abc.abstractmethod
    def short_balance(self, day) -> "pd.DataFrame":  # noqa: F821
        """Outstanding short balances on session ``day`` (:data:`SHORT_BALANCE_COLUMNS`)."""

    @abc.abstractmethod
    def foreign_ownership(self, day) -> "pd.DataFrame":  # noqa: F821
        """Foreign holdings and limits of every ticker on session ``day`` (:data:`FOREIGN_OWNERSHIP_COLUMNS`)."""

    # ---- the universe (issue 27)
    @abc.abstractmethod
    def industries(self, day) -> "pd.DataFrame":  # noqa: F821
        """KRX's industry (업종) of every KOSPI/KOSDAQ ticker on session ``day`` (:data:`INDUSTRY_COLUMNS`;
        empty on holidays). One request per market."""

    @abc.abstractmethod
    def index_members(self, index_code: str, day) -> "pd.DataFrame":  # noqa: F821
        """The constituents of index ``index_code`` (e.g. 1028) on session ``day``
        (:data:`INDEX_MEMBER_COLUMNS`; empty on holidays). One request."""

    @abc.abstractmethod
    def index_master(self) -> "pd.DataFrame":  # noqa: F821
        """Every index of the KRX, KOSPI and KOSDAQ groups: :data:`INDEX_COLUMNS`. One request."""

    @abc.abstractmethod
    def delistings(self, first, last) -> "pd.DataFrame":  # noqa: F821
        """KRX's delisted shares of KOSPI, KOSDAQ and KONEX with a delisting date from ``first`` to
        ``last`` (:data:`DELISTING_COLUMNS`). One request per 730 days."""

    # ---- ETFs and ETNs (issue 27, point 4)
    @abc.abstractmethod
    def etp_day(self, kind: str, day) -> "pd.DataFrame":  # noqa: F821
        """Every ETF (``kind="ETF"``) or ETN (``"ETN"``) of session ``day`` in one request
        (:data:`ETP_DAY_COLUMNS`; empty on holidays, no request). An answer without a single price
        (KRX's rows of ``"-"`` for a day it has not published) raises :class:`KrxEmptyAnswerError`."""

    @abc.abstractmethod
    def etp_info(self, kind: str) -> "pd.DataFrame":  # noqa: F821
        """KRX's base information of every ETF or ETN listed today (:data:`ETP_INFO_COLUMNS`): issuer,
        KRX listing date, multiplier. One request; it has no date (today's products only)."""

    def requests_sent(self) -> int:
        """HTTP requests this source object sent so far (0 for offline sources)."""
        return 0
