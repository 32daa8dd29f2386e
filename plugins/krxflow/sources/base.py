"""The one interface every KRX data source answers, and the row shapes it returns.

DAGs only ever see :class:`KrxSource`; which implementation runs is configuration
(:func:`krxflow.sources.get_source`). Every method returns a pandas DataFrame whose columns are
exactly those of the target table (see the ``*_COLUMNS`` constants), so that a frame goes
straight into ``BatchedPostgresHook.upsert``.

Holidays are not errors: asking for a day that is not an XKRX session returns an empty frame
(and sends no request). Real failures raise the typed errors of :mod:`krxflow.sources.errors`.
"""

from __future__ import annotations

import abc
import datetime as dt

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


def as_date(day) -> dt.date:
    """A KST date from a date, a datetime (converted to KST) or 'YYYY-MM-DD' / 'YYYYMMDD'."""
    from krxflow.calendar import _as_date

    return _as_date(day)


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

        KRX's all-market answer carries both. A source that gets them in one answer either overrides
        this or provides ``_market_day(session)`` returning that answer as :data:`MARKET_DAY_COLUMNS`
        (as :class:`~krxflow.sources.pykrx_source.PykrxSource` does); otherwise the prices and the
        listing are asked for separately.
        """
        import pandas as pd

        from krxflow.calendar import is_trading_day

        day = as_date(day)
        if not is_trading_day(day):
            return pd.DataFrame(columns=MARKET_DAY_COLUMNS)
        one_answer = getattr(self, "_market_day", None)
        if one_answer is not None:
            return one_answer(day)[MARKET_DAY_COLUMNS].reset_index(drop=True)
        prices = self.daily_prices(day)
        if prices.empty:
            return pd.DataFrame(columns=MARKET_DAY_COLUMNS)
        listing = self.listing(day).drop(columns=["listed_shares", "market_cap"])
        return prices.merge(listing, on="ticker", how="inner")[MARKET_DAY_COLUMNS]

    def requests_sent(self) -> int:
        """HTTP requests this source object sent so far (0 for offline sources)."""
        return 0
