"""The read API: the ticker master and price history, mounted by the krxflow plugin under ``/krx``.

Routes (all require an Airflow login, see :mod:`krxflow.api.auth`):

``GET /krx/stocks?market=&q=&include_delisted=&limit=&offset=``
    The ticker master in ticker order, a page at a time (``limit`` ≤ 1000, ``next_offset``).
``GET /krx/stocks/{ticker}/prices?start=&end=&interval=day|week|month&adjusted=&limit=``
    Daily prices (``daily_prices`` or, adjusted, ``daily_prices_adjusted``) or week/month candles
    (the ``period_candles`` view; weeks start on the KST Monday), oldest
    first, at most ``limit`` (≤ 5000) rows; ``next_start`` continues a longer range. The adjusted
    series is derived from KRX's base prices and covers delisted tickers too.
``GET /krx/stocks/{ticker}/factors``
    The ticker's ex-dates and adjustment factors (why the adjusted chart differs from the raw one).
``GET /krx/indices/{code}/members?date=`` and ``GET /krx/industries?date=&market=``
    An index's constituents and the industries as they were on a date (docs/universe.md).
``GET /krx/etfs?date=&kind=`` and ``GET /krx/etfs/{code}/prices?start=&end=&limit=``
    The ETFs/ETNs listed on a date, and one product's prices, NAV/IV and tracking figures (docs/etf.md).
``GET /krx/stocks/{ticker}/disclosures?start=&end=&after=&limit=``
    The ticker's OpenDART filings by receipt date, oldest first, with DART's viewer URL; ``next_after``
    (a receipt number) continues a longer range (docs/dart.md).

Bad input gets a 4xx with a message saying what is wrong (422 for malformed or out-of-range
parameters, 400 for an empty/inverted range, 404 for an unknown ticker): every number and date has
bounds, so nothing a caller sends reaches PostgreSQL out of its types' range. Search text is
matched literally (``%`` and ``_`` are not wildcards). Dates are KST trading dates.

Money has one representation in every response: raw KRX prices and values are integers (won), the
split-adjusted series exact decimal strings with four places (``"9070.5000"``); see
:data:`DESCRIPTION`, the text the ``/krx/docs`` page shows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, status
from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from krxflow.api import docs
from krxflow.api.auth import require_reader
from krxflow.api.db import read_only_connection
from krxflow.market_time import kst_today
from krxflow.sqlfiles import template

MARKETS = ("KOSPI", "KOSDAQ", "KONEX")
MAX_STOCKS_PAGE = 1000
MAX_PRICES_PAGE = 5000
#: Far more than the ticker master will ever hold (~2,800 listed plus the delisted); keeps offsets in bigint.
MAX_STOCKS_OFFSET = 1_000_000
DEFAULT_PRICES_DAYS = 365
#: Dates outside these are refused: KRX opened in 1956, and nothing is dated past 2999.
MIN_DATE, MAX_DATE = dt.date(1956, 1, 1), dt.date(2999, 12, 31)
TICKER_PATTERN = r"^[0-9A-Z]{6}$"
#: Search text: no control characters (PostgreSQL text cannot even hold NUL).
SEARCH_PATTERN = r"^[^\x00-\x1f\x7f]+$"
ADJUSTED_PLACES = Decimal("0.0001")

DESCRIPTION = """\
The KOSPI/KOSDAQ ticker master and daily, weekly and monthly prices that krxflow keeps in its
PostgreSQL database, read-only.

**Login.** Every data route needs an Airflow login: the Airflow UI's session cookie (so this page's
*Try it out* works once you are logged in to Airflow), or `Authorization: Bearer <token>` with a
token from Airflow's `POST /auth/token`. The user needs read access to Airflow assets.

**Money.** Raw prices and values (as KRX publishes them) are integers in won. Split-adjusted prices
(`adjusted=true`) are exact decimal strings with four places, e.g. `"9070.5000"`: parse them as
decimals, not floats. `change_rate` is a percentage.

**Dates** are KST trading dates (`YYYY-MM-DD`). Weeks start on the Monday, months on the 1st.

**Errors.** 422 for a malformed or out-of-range parameter, 400 for an inverted date range, 404 for
an unknown ticker; the body's `detail` says what is wrong.
"""

#: Raw won: an integer.
Won = Annotated[int, Field(description="won (integer)")]
#: Adjusted won: an exact decimal, sent as a string with four places.
AdjustedWon = Annotated[
    Decimal,
    PlainSerializer(lambda v: str(v.quantize(ADJUSTED_PLACES)), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{4}$", "examples": ["9070.5000"],
                    "description": "split-adjusted won: exact decimal string, four places"}, mode="serialization"),
]


class Interval(str, Enum):
    day = "day"
    week = "week"
    month = "month"


class Stock(BaseModel):
    ticker: str
    name: str
    market: str
    isin: str | None = None
    sector: str | None = None
    listed_shares: int | None = None
    market_cap: int | None = None
    first_seen: dt.date | None = None
    last_seen: dt.date | None = None
    delisted: bool
    delisted_on: dt.date | None = None


class StocksPage(BaseModel):
    items: list[Stock]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class RawPrice(BaseModel):
    """A day, week or month of prices as KRX published them: integer won (open/high/low null on a halted day)."""

    date: dt.date
    open: Won | None
    high: Won | None
    low: Won | None
    close: Won
    volume: int
    trading_value: Won | None = None
    change_rate: float | None = Field(None, description="percent (days only)")
    market_cap: Won | None = None
    trading_days: int


class AdjustedPrice(BaseModel):
    """A day, week or month of the split-adjusted series: exact decimal strings (``"9070.5000"``)."""

    date: dt.date
    open: AdjustedWon | None
    high: AdjustedWon | None
    low: AdjustedWon | None
    close: AdjustedWon
    volume: int
    change_rate: float | None = Field(None, description="percent (days only)")
    trading_days: int


class PricesPage(BaseModel):
    ticker: str
    name: str
    market: str
    interval: Interval
    adjusted: bool
    start: dt.date
    end: dt.date
    items: list[RawPrice] | list[AdjustedPrice] = Field(
        description="RawPrice rows (integer won) when adjusted is false, AdjustedPrice rows (decimal strings) "
                    "when it is true")
    next_start: dt.date | None


Db = Annotated[psycopg.Connection, Depends(read_only_connection)]

app = FastAPI(
    title="krxflow read API",
    summary="KOSPI/KOSDAQ ticker master and prices from the krxflow database.",
    description=DESCRIPTION,
    version="1",
    dependencies=[Depends(require_reader)],
    docs_url=None,  # served from local files by krxflow.api.docs: no CDN
    redoc_url=None,
)
docs.install(app)


def _bad_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, message)


@app.get("/stocks", response_model=StocksPage, summary="List tickers")
def list_stocks(
    db: Db,
    market: Annotated[str | None, Query(description="KOSPI, KOSDAQ or KONEX (any case); all when omitted")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=50, pattern=SEARCH_PATTERN,
                                   description="code prefix or part of the name, matched literally")] = None,
    include_delisted: Annotated[bool, Query(description="include delisted tickers")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_STOCKS_PAGE, description="page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_STOCKS_OFFSET, description="tickers to skip")] = 0,
) -> StocksPage:
    """The ticker master, in ticker order, one page at a time."""
    search = like_literal(q) if q is not None else None
    if market is not None:
        market = market.strip().upper()
        if market not in MARKETS:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"market must be one of {', '.join(MARKETS)} (got {market!r})")
    rows = db.execute(template("queries/api/stocks_page.sql"), {
        "market": market, "search": search, "include_delisted": include_delisted, "limit": limit, "offset": offset,
    }).fetchall()
    total = rows[0]["total"] if rows else _count_without_page(db, market, search, include_delisted)
    items = [Stock(**{k: v for k, v in row.items() if k != "total"}) for row in rows]
    next_offset = offset + len(items) if offset + len(items) < total else None
    return StocksPage(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)


def _count_without_page(db: psycopg.Connection, market, search, include_delisted) -> int:
    """The total when the requested page is past the end (the windowed count came back empty)."""
    row = db.execute(template("queries/api/stocks_page.sql"), {
        "market": market, "search": search, "include_delisted": include_delisted, "limit": 1, "offset": 0,
    }).fetchone()
    return row["total"] if row else 0


def like_literal(text: str) -> str:
    """``text`` for a LIKE pattern that matches it literally (``\\`` escapes ``%``, ``_`` and itself)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@app.get("/stocks/{ticker}/prices", response_model=PricesPage, summary="Price history of one ticker")
def stock_prices(
    db: Db,
    ticker: Annotated[str, Path(pattern=TICKER_PATTERN, description="6-character KRX code, e.g. 005930")],
    start: Annotated[dt.date | None, Query(ge=MIN_DATE, le=MAX_DATE,
                                           description="first date (KST), default: a year before end")] = None,
    end: Annotated[dt.date | None, Query(ge=MIN_DATE, le=MAX_DATE, description="last date (KST), default: today")] = None,
    interval: Annotated[Interval, Query(description="day, week (KST Monday) or month")] = Interval.day,
    adjusted: Annotated[bool, Query(description="split-adjusted series (decimal strings) instead of KRX's raw "
                                                "prices (integers)")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PRICES_PAGE, description="most rows in the answer")] = 1000,
) -> PricesPage:
    """Prices of ``ticker`` from ``start`` to ``end``, oldest first, at most ``limit`` rows."""
    end = end or kst_today()
    start = start or max(MIN_DATE, end - dt.timedelta(days=DEFAULT_PRICES_DAYS))
    if start > end:
        raise _bad_request(f"start ({start}) is after end ({end})")
    stock = db.execute(template("queries/api/stock.sql"), {"ticker": ticker}).fetchone()
    if stock is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown ticker {ticker}")
    first = _period_start(start, interval)
    params = {"ticker": ticker, "start": first, "end": end, "adjusted": adjusted, "limit": limit + 1}
    if interval is Interval.day:
        statement = template("queries/api/prices_day_adjusted.sql" if adjusted else "queries/api/prices_day_raw.sql")
    else:
        statement = template("queries/api/prices_period.sql")
        params["period"] = interval.value
    rows = db.execute(statement, params).fetchall()
    next_start = rows[limit]["date"] if len(rows) > limit else None
    model = AdjustedPrice if adjusted else RawPrice
    return PricesPage(ticker=ticker, name=stock["name"], market=stock["market"], interval=interval,
                      adjusted=adjusted, start=first, end=end, items=[model(**row) for row in rows[:limit]],
                      next_start=next_start)


def _period_start(day: dt.date, interval: Interval) -> dt.date:
    """The first day of the week (Monday) or month containing ``day``; ``day`` itself for days."""
    if interval is Interval.week:
        return day - dt.timedelta(days=day.weekday())
    if interval is Interval.month:
        return day.replace(day=1)
    return day


class Factor(BaseModel):
    """One ex-date: KRX set the day's base price to ``base_price`` instead of the previous close."""

    ex_date: dt.date
    previous_date: dt.date
    previous_close: int
    base_price: int
    factor: float
    shares_before: int | None
    shares_after: int | None
    kind: str
    flagged: bool
    note: str | None


class FactorsPage(BaseModel):
    ticker: str
    items: list[Factor]


@app.get("/stocks/{ticker}/factors", response_model=FactorsPage, summary="Adjustment factors of one ticker")
def stock_factors(
    db: Db,
    ticker: Annotated[str, Path(pattern=TICKER_PATTERN, description="6-character KRX code, e.g. 005930")],
) -> FactorsPage:
    """Every ex-date of ``ticker`` (splits, consolidations, bonus/rights issues) with its factor
    (base price / previous close): the adjusted price of a day is the raw one times the factors of
    every later ex-date. ``flagged`` factors hold more than the change in shares explains."""
    if db.execute(template("queries/api/stock.sql"), {"ticker": ticker}).fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown ticker {ticker}")
    rows = db.execute(template("queries/api/factors.sql"), {"ticker": ticker}).fetchall()
    return FactorsPage(ticker=ticker, items=[Factor(**row) for row in rows])


# ================================================================================================
# The other daily KRX reports (issue 17): indices, investor trading, fundamentals, shorts.
# Same auth (the app's require_reader), same bad input answers: 422 malformed, 400 empty or
# inverted range, 404 unknown ticker or index. Dates are KST trading dates; pages continue with
# ``next_offset`` (lists) or ``next_start`` (series).
from krxflow.krx.interface import INDEX_GROUPS as _INDEX_GROUPS, INVESTOR_TYPES as _INVESTOR_TYPES  # noqa: E402

INDEX_GROUPS = tuple(_INDEX_GROUPS)
INDEX_CODE_PATTERN = r"^[0-9]{4}$"
INVESTORS = tuple(_INVESTOR_TYPES.values())


class KrxIndex(BaseModel):
    code: str
    name: str
    group: str
    first_seen: dt.date | None = None
    last_seen: dt.date | None = None


class IndicesPage(BaseModel):
    items: list[KrxIndex]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class IndexPrice(BaseModel):
    date: dt.date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    change: float | None
    change_rate: float | None
    volume: int | None
    trading_value: Won | None
    market_cap: Won | None


class IndexPricesPage(BaseModel):
    code: str
    name: str
    group: str
    start: dt.date
    end: dt.date
    items: list[IndexPrice]
    next_start: dt.date | None


class InvestorTrading(BaseModel):
    date: dt.date
    investor: str
    sell_volume: int
    buy_volume: int
    net_volume: int
    sell_value: Won
    buy_value: Won
    net_value: Won


class Fundamentals(BaseModel):
    date: dt.date
    eps: Won | None
    per: float | None
    bps: Won | None
    pbr: float | None
    dps: Won | None
    dividend_yield: float | None


class Shorts(BaseModel):
    date: dt.date
    short_volume: int | None
    volume: int | None
    short_value: Won | None
    trading_value: Won | None
    balance_quantity: int | None
    balance_value: Won | None
    balance_ratio: float | None


class StockReportPage(BaseModel):
    ticker: str
    start: dt.date
    end: dt.date
    items: list[InvestorTrading] | list[Fundamentals] | list[Shorts]
    next_start: dt.date | None


Ticker = Annotated[str, Path(pattern=TICKER_PATTERN, description="6-character KRX code, e.g. 005930")]
Start = Annotated[dt.date | None, Query(description="first date (KST), default: a year before end")]
End = Annotated[dt.date | None, Query(description="last date (KST), default: today")]
Limit = Annotated[int, Query(ge=1, le=MAX_PRICES_PAGE, description="rows (sessions for investors) per page")]


def _report_range(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    end = end or kst_today()
    start = start or end - dt.timedelta(days=DEFAULT_PRICES_DAYS)
    if start > end:
        raise _bad_request(f"start ({start}) is after end ({end})")
    return start, end


def _known_ticker(db: psycopg.Connection, ticker: str) -> None:
    if db.execute(template("queries/api/stock.sql"), {"ticker": ticker}).fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown ticker {ticker}")


def _series_page(db: psycopg.Connection, query: str, ticker: str, start, end, limit: int, model, **params):
    """Rows of a per-ticker report, oldest first; one more row than a page gives ``next_start``."""
    start, end = _report_range(start, end)
    _known_ticker(db, ticker)
    rows = db.execute(template(query), {"ticker": ticker, "start": start, "end": end, "limit": limit + 1,
                                        **params}).fetchall()
    next_start = rows[limit]["date"] if len(rows) > limit else None
    return StockReportPage(ticker=ticker, start=start, end=end, items=[model(**row) for row in rows[:limit]],
                           next_start=next_start)


@app.get("/indices", response_model=IndicesPage, summary="List KRX, KOSPI and KOSDAQ indices")
def list_indices(
    db: Db,
    group: Annotated[str | None, Query(description="KRX, KOSPI or KOSDAQ (any case); all when omitted")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_STOCKS_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> IndicesPage:
    """The index master (codes as pykrx's index tickers, e.g. 1001 = 코스피), one page at a time."""
    if group is not None:
        group = group.strip().upper()
        if group not in INDEX_GROUPS:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"group must be one of {', '.join(INDEX_GROUPS)} (got {group!r})")
    params = {"index_group": group, "limit": limit, "offset": offset}
    rows = db.execute(template("queries/api/indices_page.sql"), params).fetchall()
    if rows:
        total = rows[0]["total"]
    else:
        first = db.execute(template("queries/api/indices_page.sql"), {**params, "limit": 1, "offset": 0}).fetchone()
        total = first["total"] if first else 0
    items = [KrxIndex(**{k: v for k, v in row.items() if k != "total"}) for row in rows]
    next_offset = offset + len(items) if offset + len(items) < total else None
    return IndicesPage(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)


@app.get("/indices/{code}/prices", response_model=IndexPricesPage, summary="Daily OHLCV of one index")
def index_prices(
    db: Db,
    code: Annotated[str, Path(pattern=INDEX_CODE_PATTERN, description="4-digit index code, e.g. 1001 (코스피)")],
    start: Start = None,
    end: End = None,
    limit: Limit = 1000,
) -> IndexPricesPage:
    """The index's daily levels (KRX's 2 decimals), volume, value and market cap, oldest first."""
    start, end = _report_range(start, end)
    index = db.execute(template("queries/api/index.sql"), {"code": code}).fetchone()
    if index is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown index {code}")
    rows = db.execute(template("queries/api/index_prices.sql"),
                      {"code": code, "start": start, "end": end, "limit": limit + 1}).fetchall()
    next_start = rows[limit]["date"] if len(rows) > limit else None
    return IndexPricesPage(code=code, name=index["name"], group=index["group"], start=start, end=end,
                           items=[IndexPrice(**row) for row in rows[:limit]], next_start=next_start)


@app.get("/stocks/{ticker}/investors", response_model=StockReportPage, summary="Trading by investor type")
def stock_investors(
    db: Db,
    ticker: Ticker,
    start: Start = None,
    end: End = None,
    investor: Annotated[str | None, Query(description=f"one of {', '.join(INVESTORS)}; all when omitted")] = None,
    limit: Limit = 100,
) -> StockReportPage:
    """Sells, buys and net buys (shares and won) of each investor type, per session, oldest first;
    ``limit`` counts sessions. Net buys of all types sum to zero on every session."""
    if investor is not None and investor not in INVESTORS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"investor must be one of {', '.join(INVESTORS)} (got {investor!r})")
    start, end = _report_range(start, end)
    _known_ticker(db, ticker)
    rows = db.execute(template("queries/api/stock_investors.sql"),
                      {"ticker": ticker, "start": start, "end": end, "limit": limit + 1, "investor": None}).fetchall()
    days = sorted({row["date"] for row in rows})
    next_start = days[limit] if len(days) > limit else None
    kept = [row for row in rows if (next_start is None or row["date"] < next_start)
            and (investor is None or row["investor"] == investor)]
    return StockReportPage(ticker=ticker, start=start, end=end, items=[InvestorTrading(**row) for row in kept],
                           next_start=next_start)


@app.get("/stocks/{ticker}/fundamentals", response_model=StockReportPage, summary="EPS, PER, BPS, PBR, DPS, yield")
def stock_fundamentals(db: Db, ticker: Ticker, start: Start = None, end: End = None,
                       limit: Limit = 1000) -> StockReportPage:
    """KRX's per-share figures and ratios at each session's close, oldest first (a loss maker has
    no EPS and no PER: null, not 0)."""
    return _series_page(db, "queries/api/stock_fundamentals.sql", ticker, start, end, limit, Fundamentals)


@app.get("/stocks/{ticker}/shorts", response_model=StockReportPage, summary="Short selling and short balance")
def stock_shorts(db: Db, ticker: Ticker, start: Start = None, end: End = None, limit: Limit = 1000) -> StockReportPage:
    """Short sales among each session's trading and the outstanding short balance, oldest first
    (KRX publishes balances two sessions late: the newest days may have none yet)."""
    return _series_page(db, "queries/api/stock_shorts.sql", ticker, start, end, limit, Shorts)


# The universe (issue 27): index constituents and industries on a date, point in time (the
# universe_on / industries_on functions of migration 1400). Same auth and bad-input answers.
class IndexMember(BaseModel):
    ticker: str
    name: str | None = None
    industry: str | None = Field(None, description="KRX's industry of the ticker on the date")
    entered_on: dt.date
    market_cap: Won | None = Field(None, description="on the date, when it is a session krxflow has prices of")


class IndexMembers(BaseModel):
    code: str
    name: str | None
    group: str | None
    date: dt.date
    items: list[IndexMember]


class Industry(BaseModel):
    market: str
    industry: str
    tickers: int
    market_cap: Won | None = None
    change_rate: float | None = Field(None, description="cap-weighted return of the day, percent")


class Industries(BaseModel):
    date: dt.date
    items: list[Industry]


Day = Annotated[dt.date | None, Query(ge=MIN_DATE, le=MAX_DATE, description="the date (KST), default: today")]


@app.get("/indices/{code}/members", response_model=IndexMembers, summary="Constituents of an index on a date")
def index_members(
    db: Db,
    code: Annotated[str, Path(pattern=INDEX_CODE_PATTERN, description="4-digit index code, e.g. 1028 (코스피 200)")],
    date: Day = None,
) -> IndexMembers:
    """KOSPI 200 (1028), KOSDAQ 150 (2203), KRX 300 (5300) or a sector index, as it was on ``date``."""
    day = date or kst_today()
    index = db.execute(template("queries/api/index_known.sql"), {"code": code}).fetchone()
    if index is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"unknown index code {code}: GET /krx/indices lists the known ones (e.g. 1028 코스피 200)")
    rows = db.execute(template("queries/api/index_members.sql"), {"code": code, "day": day}).fetchall()
    return IndexMembers(code=code, name=index["name"], group=index["group"], date=day,
                        items=[IndexMember(**row) for row in rows])


@app.get("/industries", response_model=Industries, summary="Industries on a date, with the day's return")
def industries(
    db: Db,
    date: Day = None,
    market: Annotated[str | None, Query(description="KOSPI or KOSDAQ (any case); both when omitted")] = None,
) -> Industries:
    """KRX's industries on ``date``: tickers, market cap and cap-weighted return (when the date is a loaded session)."""
    if market is not None:
        market = market.strip().upper()
        if market not in ("KOSPI", "KOSDAQ"):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"market must be KOSPI or KOSDAQ (got {market!r})")
    day = date or kst_today()
    rows = db.execute(template("queries/api/industries.sql"), {"day": day, "market": market}).fetchall()
    return Industries(date=day, items=[Industry(**row) for row in rows])


# ETFs and ETNs (issue 27, point 4): the products listed on a date (etps_on of migration 1450) and
# one product's sessions with its NAV and tracking figures. Same auth and bad-input answers.
ETP_KINDS = ("ETF", "ETN")


class ListedEtp(BaseModel):
    code: str
    kind: str = Field(description="ETF or ETN")
    name: str
    underlying_index: str | None = None
    issuer: str | None = None
    multiplier: float | None = Field(None, description="exposure to the index: 1, 2, -1, -2 (null: unknown)")
    close: Won | None = Field(None, description="on the date, when it is a loaded session")
    nav: float | None = Field(None, description="NAV (an ETN's indicative value), won with 2 decimals")
    deviation_rate: float | None = Field(None, description="(close - NAV) / NAV, percent (KRX's 괴리율)")
    market_cap: Won | None = None


class ListedEtps(BaseModel):
    date: dt.date
    items: list[ListedEtp]


class EtpPrice(BaseModel):
    date: dt.date
    open: Won | None
    high: Won | None
    low: Won | None
    close: Won
    change: Won | None = None
    change_rate: float | None = Field(None, description="percent")
    volume: int
    trading_value: Won | None = None
    market_cap: Won | None = None
    nav: float | None = Field(None, description="NAV (an ETN's indicative value), won with 2 decimals")
    net_assets: Won | None = None
    listed_units: int | None = None
    index_close: float | None = None
    index_change_rate: float | None = Field(None, description="the underlying index's change, percent")
    deviation_rate: float | None = Field(None, description="(close - NAV) / NAV, percent")
    tracking_difference: float | None = Field(
        None, description="NAV change - multiplier x index change, percentage points (null: multiplier unknown)")


class EtpPricesPage(BaseModel):
    code: str
    kind: str
    name: str
    underlying_index: str | None
    issuer: str | None
    start: dt.date
    end: dt.date
    items: list[EtpPrice]
    next_start: dt.date | None


@app.get("/etfs", response_model=ListedEtps, summary="ETFs and ETNs listed on a date")
def list_etfs(
    db: Db,
    date: Day = None,
    kind: Annotated[str | None, Query(description="ETF or ETN (any case); both when omitted")] = None,
) -> ListedEtps:
    """Every ETF/ETN listed on ``date`` with the day's close, NAV and deviation (when it is a loaded session)."""
    if kind is not None:
        kind = kind.strip().upper()
        if kind not in ETP_KINDS:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"kind must be ETF or ETN (got {kind!r})")
    day = date or kst_today()
    rows = db.execute(template("queries/api/etfs_on.sql"), {"day": day, "kind": kind}).fetchall()
    return ListedEtps(date=day, items=[ListedEtp(**row) for row in rows])


@app.get("/etfs/{code}/prices", response_model=EtpPricesPage, summary="Prices, NAV and tracking of one ETF/ETN")
def etf_prices(
    db: Db,
    code: Annotated[str, Path(pattern=TICKER_PATTERN, description="6-character KRX code, e.g. 069500")],
    start: Start = None,
    end: End = None,
    limit: Limit = 1000,
) -> EtpPricesPage:
    """The product's sessions, oldest first: OHLCV, NAV/IV, the index, deviation and tracking difference."""
    start, end = _report_range(start, end)
    etp = db.execute(template("queries/api/etf.sql"), {"code": code}).fetchone()
    if etp is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown ETF/ETN {code}: GET /krx/etfs lists the listed ones")
    rows = db.execute(template("queries/api/etf_prices.sql"),
                      {"code": code, "start": start, "end": end, "limit": limit + 1}).fetchall()
    next_start = rows[limit]["date"] if len(rows) > limit else None
    return EtpPricesPage(code=code, kind=etp["kind"], name=etp["name"], underlying_index=etp["underlying_index"],
                         issuer=etp["issuer"], start=start, end=end, items=[EtpPrice(**row) for row in rows[:limit]],
                         next_start=next_start)


# OpenDART (issue 28): a ticker's filings.
class Disclosure(BaseModel):
    rcept_no: str = Field(description="OpenDART's receipt number (14 digits)")
    date: dt.date = Field(description="receipt date (KST)")
    report: str = Field(description="report name as filed, e.g. 사업보고서 (2025.12)")
    corp_code: str
    corp_name: str
    filer: str
    remarks: str = Field(description="OpenDART's rm flags as received (e.g. 유, 연, 정)")
    url: str = Field(description="the filing in DART's viewer")


class DisclosuresPage(BaseModel):
    ticker: str
    start: dt.date
    end: dt.date
    items: list[Disclosure]
    next_after: str | None


@app.get("/stocks/{ticker}/disclosures", response_model=DisclosuresPage, summary="OpenDART filings of one stock")
def stock_disclosures(
    db: Db,
    ticker: Ticker,
    start: Start = None,
    end: End = None,
    after: Annotated[str | None, Query(pattern=r"^[0-9]{14}$",
                                       description="receipt number of the last filing already read")] = None,
    limit: Limit = 100,
) -> DisclosuresPage:
    """The filings of the ticker's company received from ``start`` to ``end``, oldest first (receipt order)."""
    start, end = _report_range(start, end)
    _known_ticker(db, ticker)
    rows = db.execute(template("queries/api/stock_disclosures.sql"),
                      {"ticker": ticker, "start": start, "end": end, "after": after, "limit": limit + 1}).fetchall()
    next_after = rows[limit - 1]["rcept_no"] if len(rows) > limit else None
    return DisclosuresPage(ticker=ticker, start=start, end=end, items=[Disclosure(**row) for row in rows[:limit]],
                           next_after=next_after)
