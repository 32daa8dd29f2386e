"""A deterministic, offline KOSPI/KOSDAQ market: for demos, tests and benches.

The same inputs always give the same rows, on any machine, with no network. The market is
built to exercise everything the real one throws at krxflow:

* ~2,700 tickers (``KRXFLOW_SAMPLE_TICKERS`` or ``tickers=``), about 35 % KOSPI and 65 % KOSDAQ,
  trading on the XKRX sessions of :mod:`krxflow.calendar` from :data:`UNIVERSE_START`;
* KRX tick sizes and the ±30 % daily price limit;
* trading halts (open/high/low empty, close carried, volume 0), new listings, delistings,
  renames and KOSDAQ→KOSPI moves;
* **ex-dates** with KRX's base price (기준가): on an ex-date the day's change is measured
  against a base other than the previous close, as KRX publishes it (``CMPPREVDD_PRC``).
  Random stock splits, and one ticker of each kind at a fixed place in the universe
  (:data:`EVENT_TICKERS`): a reverse split relisted after a long halt with an opening-auction
  base (a factor that contains a market move), a bonus issue, a rights issue at a discount, and
  a split of a ticker that is delisted later;
* ``005930`` behaves like Samsung Electronics in 2018: halted 2018-04-30..05-03 and split 50:1,
  its ex-date the first session after the halt (2018-05-04); ``010000`` trades more than 2^31
  shares a day.

Each ticker's path is generated from its own seed, so one ticker's history costs a few hundred
microseconds and never depends on which other tickers exist. The whole market on one day is
computed in blocks of sessions, cached per process.
"""

from __future__ import annotations

import datetime as dt
import os
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from krxflow.krx.interface import (ADJUSTED_COLUMNS, DAILY_COLUMNS, DELISTED_COLUMNS, INDEX_COLUMNS,
                                   INDEX_MEMBER_COLUMNS, INDUSTRY_COLUMNS, KRX_ADJUSTED_COLUMNS, LISTING_COLUMNS,
                                   MARKET_DAY_COLUMNS, KrxSource)
from krxflow.market_time import kst_date, kst_today
from krxflow.sample.codes import isin_of
from krxflow.sample.sessions import UNIVERSE_START, session_index, sessions

DEFAULT_TICKERS = 2_700
SAMSUNG = "005930"
HUGE_VOLUME = "010000"
_BLOCK = 64  # sessions per cached whole-market block

#: Universe positions of the tickers with one corporate action of each kind (any market of 7+).
EVENT_TICKERS = {"reverse_split": 2, "bonus": 3, "rights": 4, "split_then_delisted": 5}
#: Sessions between a bonus/rights ex-date and the listing of the new shares.
_NEW_SHARES_LAG = 15

_KOSDAQ_SECTIONS = ("우량기업부", "벤처기업부", "중견기업부", "기술성장기업부")
_NAME_PARTS = ("한빛", "대성", "동양", "세진", "미래", "코리아", "태평양", "신한", "광명", "우리", "금강", "서해",
               "누리", "가온", "나래", "다온", "해솔", "아라", "라온", "비전")
_NAME_KINDS = ("전자", "화학", "바이오", "건설", "제약", "테크", "소재", "에너지", "물산", "반도체", "식품", "로보틱스")


_TICK_THRESHOLDS = np.array([2_000, 5_000, 20_000, 50_000, 200_000, 500_000])
_TICKS = np.array([1, 5, 10, 50, 100, 500, 1_000], dtype=np.int64)


def tick_size(price: np.ndarray) -> np.ndarray:
    """KRX tick sizes (since 2023) for prices in won."""
    return _TICKS[np.searchsorted(_TICK_THRESHOLDS, price, side="right")]


def to_tick(price: np.ndarray) -> np.ndarray:
    """``price`` rounded to the nearest valid tick (at least 1 won)."""
    price = np.maximum(np.asarray(price, dtype=float), 1.0)
    tick = tick_size(price)
    return (np.rint(price / tick) * tick).astype(np.int64)


def universe(count: int) -> list[str]:
    """The ``count`` tickers of the market: 005930 first, then unique 6-digit codes."""
    return [SAMSUNG] + [f"{10_000 + i * 97:06d}" for i in range(count - 1)]


@dataclass(frozen=True)
class Event:
    """A corporate action on session ``index``: the base price is ``price_factor`` × the previous
    close (before rounding to the tick), the listed shares change by ``shares_factor``."""

    index: int
    kind: str
    price_factor: float
    shares_factor: float


@dataclass(frozen=True)
class Profile:
    """What happens to one ticker over the life of the sample market (indices into sessions())."""

    ticker: str
    index: int
    market: str
    name: str
    sector: str | None
    listed: int
    delisted: int | None  # first session it no longer trades
    base_price: float
    shares: int
    sigma: float
    events: tuple[Event, ...]
    halt: tuple[int, int] | None  # [start, end) sessions without trading
    renamed_at: int | None
    new_name: str | None
    moved_at: int | None  # KOSDAQ → KOSPI


def _seed(ticker: str, salt: str = "") -> int:
    return zlib.crc32(f"krxflow-sample:{ticker}:{salt}".encode())


@lru_cache(maxsize=8192)
def profile(ticker: str, index: int) -> Profile:
    rng = np.random.default_rng(_seed(ticker, "profile"))
    n = len(sessions())
    market = "KOSPI" if index % 20 < 7 else "KOSDAQ"
    name = f"{_NAME_PARTS[rng.integers(len(_NAME_PARTS))]}{_NAME_KINDS[rng.integers(len(_NAME_KINDS))]}{index:04d}"
    sector = None if market == "KOSPI" else _KOSDAQ_SECTIONS[rng.integers(len(_KOSDAQ_SECTIONS))]
    listed = 0 if rng.random() < 0.9 else int(rng.integers(20, n - 40))
    delisted = int(rng.integers(listed + 60, n)) if rng.random() < 0.05 and listed + 60 < n else None
    split_at, factor = None, 1
    if rng.random() < 0.03:
        split_at, factor = int(rng.integers(listed + 5, n)), int(rng.choice([2, 5, 10]))
    halt = None
    if rng.random() < 0.04:
        start = int(rng.integers(listed + 1, n - 1))
        halt = (start, min(n, start + int(rng.integers(1, 11))))
    renamed_at = int(rng.integers(listed + 1, n)) if rng.random() < 0.02 else None
    moved_at = int(rng.integers(listed + 1, n)) if market == "KOSDAQ" and rng.random() < 0.01 else None
    base_price = float(np.exp(rng.uniform(7.0, 11.5)))
    shares = int(10 ** rng.uniform(6.5, 8.3))
    sigma = float(rng.uniform(0.01, 0.035))
    events = (Event(split_at, "split", 1 / factor, factor),) if split_at is not None else ()
    if ticker == SAMSUNG:
        name, sector, listed, delisted, base_price, shares, sigma = "삼성전자", None, 0, None, 50_000.0, 6_419_324_700, 0.015
        renamed_at = moved_at = None
        resume = session_index(dt.date(2018, 5, 4))
        events, halt = (Event(resume, "split", 1 / 50, 50),), (session_index(dt.date(2018, 4, 30)), resume)
    elif ticker == HUGE_VOLUME:
        base_price, shares, listed, delisted, halt, events = 600.0, 3_000_000_000, 0, None, None, ()
    elif index in EVENT_TICKERS.values():
        listed, delisted, renamed_at, moved_at, halt = 0, None, None, None, None
        events, halt, delisted = _designated_events(index)
    return Profile(ticker, index, market, name, sector, listed, delisted, base_price, shares, sigma, events,
                   halt, renamed_at, f"뉴{name}" if renamed_at is not None else None, moved_at)


def _designated_events(index: int) -> tuple[tuple[Event, ...], tuple[int, int] | None, int | None]:
    """Events, halt and delisting of the :data:`EVENT_TICKERS` (their ex-dates are inside 5 years)."""
    at = session_index
    if index == EVENT_TICKERS["reverse_split"]:
        # 1:5 share consolidation (감자): halted for the record date, relisted on 2022-03-14 with an
        # opening-auction base 40 % above the consolidated price — the factor holds a market move.
        resume = at(dt.date(2022, 3, 14))
        return (Event(resume, "reverse_split", 5 * 1.4, 1 / 5),), (at(dt.date(2022, 2, 21)), resume), None
    if index == EVENT_TICKERS["bonus"]:  # 무상증자 1 new share per held share
        return (Event(at(dt.date(2023, 6, 15)), "bonus", 1 / 2, 2),), None, None
    if index == EVENT_TICKERS["rights"]:  # 유상증자 0.2 new shares per share at 75 % of the price
        return (Event(at(dt.date(2024, 9, 10)), "rights", (1 + 0.75 * 0.2) / 1.2, 1.2),), None, None
    # a 2:1 split in 2021, then delisted in 2024
    return (Event(at(dt.date(2021, 11, 2)), "split", 1 / 2, 2),), None, at(dt.date(2024, 5, 2))


@lru_cache(maxsize=16)
def series(ticker: str, index: int) -> dict[str, np.ndarray]:
    """The full raw path of one ticker over every session (trading or not), with KRX's base prices.

    ``cum`` is what a raw price is worth in today's units' inverse: raw = adjusted × ``cum``,
    where ``cum`` on a day is the product of ``1 / price_factor`` over every later ex-date.
    """
    p = profile(ticker, index)
    n = len(sessions())
    rng = np.random.default_rng(_seed(ticker, "path"))
    noise = rng.standard_normal((5, n))
    trading = np.zeros(n, dtype=bool)
    trading[p.listed:p.delisted if p.delisted is not None else n] = True
    halted = np.zeros(n, dtype=bool)
    if p.halt:
        halted[p.halt[0]:p.halt[1]] = True
    # Daily log-returns, bounded so that a close never moves more than ±30 % (KRX's limit).
    returns = np.clip(noise[0] * p.sigma, -0.25, 0.25)
    returns[~trading | halted] = 0.0
    returns[:p.listed + 1] = 0.0
    adjusted_close = p.base_price * np.exp(np.cumsum(returns))
    cum = np.ones(n)
    shares_cum = np.ones(n)
    for event in p.events:
        cum[:event.index] /= event.price_factor
        # new shares of a split list on the ex-date; those of a bonus or rights issue weeks later
        listed_from = event.index + (_NEW_SHARES_LAG if event.kind in ("bonus", "rights") else 0)
        shares_cum[:listed_from] /= event.shares_factor
    close = to_tick(adjusted_close * cum)
    # The base price (기준가): the previous close, or on an ex-date that close times the event's
    # factor, rounded to the tick as KRX does; on the first listed day the day's own close.
    base = np.concatenate([[close[0]], close[:-1]])
    for event in p.events:
        base[event.index] = to_tick(np.array([close[event.index - 1] * event.price_factor]))[0]
    base[p.listed] = close[p.listed]
    low_limit, high_limit = base * 0.7, base * 1.3
    open_ = to_tick(np.clip(base * np.exp(noise[1] * p.sigma / 2), low_limit, high_limit))
    high = to_tick(np.clip(np.maximum(open_, close) * np.exp(np.abs(noise[2]) * p.sigma / 2), low_limit, high_limit))
    low = to_tick(np.clip(np.minimum(open_, close) * np.exp(-np.abs(noise[3]) * p.sigma / 2), low_limit, high_limit))
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    shares = np.rint(p.shares * shares_cum).astype(np.int64)
    turnover = (0.8 + 0.2 * np.abs(noise[4])) if ticker == HUGE_VOLUME else np.exp(noise[4] * 0.6) * 0.004
    volume = np.rint(shares * turnover).astype(np.int64)
    volume[halted] = 0
    trading_value = (volume * (open_ + high + low + close) / 4).astype(np.int64)
    change_rate = np.round((close - base) / base * 100, 2)
    return {"trading": trading, "halted": halted, "open": open_, "high": high, "low": low, "close": close,
            "base_price": base, "volume": volume, "trading_value": trading_value, "change_rate": change_rate,
            "listed_shares": shares, "market_cap": close * shares, "cum": cum}


class SampleMarket:
    """The sample market of ``count`` tickers (deterministic; cheap to create)."""

    def __init__(self, count: int | None = None):
        self.count = int(count or os.environ.get("KRXFLOW_SAMPLE_TICKERS") or DEFAULT_TICKERS)
        if self.count < 1:
            raise ValueError("the sample market needs at least one ticker")
        self.tickers = universe(self.count)
        self.index = {t: i for i, t in enumerate(self.tickers)}

    # ----------------------------------------------------------------- per ticker
    def profile(self, ticker: str) -> Profile | None:
        i = self.index.get(ticker)
        return None if i is None else profile(ticker, i)

    def series(self, ticker: str) -> dict[str, np.ndarray]:
        return series(ticker, self.index[ticker])

    def name_on(self, p: Profile, i: int) -> str:
        return p.new_name if p.renamed_at is not None and i >= p.renamed_at else p.name

    def market_on(self, p: Profile, i: int) -> str:
        return "KOSPI" if p.moved_at is not None and i >= p.moved_at else p.market

    def history(self, ticker: str, first: dt.date, last: dt.date, adjusted: bool) -> pd.DataFrame:
        columns = ADJUSTED_COLUMNS if adjusted else DAILY_COLUMNS
        p = self.profile(ticker)
        if p is None or (adjusted and p.delisted is not None):
            return pd.DataFrame(columns=columns)
        all_sessions = sessions()
        lo = int(np.searchsorted(all_sessions, np.datetime64(first, "D")))
        hi = int(np.searchsorted(all_sessions, np.datetime64(last, "D"), side="right"))
        s = self.series(ticker)
        if not adjusted:
            picked = np.arange(lo, hi)
            return self._rows(ticker, s, picked[s["trading"][lo:hi]], all_sessions)[columns]
        # Like Naver: whole-won adjusted prices; the change is computed from the adjusted closes.
        picked = np.flatnonzero(s["trading"])
        frame = self._rows(ticker, s, picked, all_sessions)
        cum = s["cum"][picked]
        for col in ("open", "high", "low", "close"):
            frame[col] = pd.array(np.rint(frame[col].astype("float64") / cum), dtype="Int64")
        frame["volume"] = np.rint(frame["volume"] * cum).astype("int64")
        close = frame["close"].astype("float64")
        frame["change_rate"] = ((close - close.shift(1)) / close.shift(1) * 100).round(2)
        return frame[(picked >= lo) & (picked < hi)][columns]

    def krx_adjusted(self, ticker: str, first: dt.date, last: dt.date) -> pd.DataFrame:
        """What KRX answers with ``adjStkPrc=2``: raw prices times the product of
        ``base / previous close`` over the later ex-dates, in whole won."""
        raw = self.history(ticker, first, last, adjusted=False)
        p = self.profile(ticker)
        if raw.empty or p is None:
            return pd.DataFrame(columns=KRX_ADJUSTED_COLUMNS)
        s = self.series(ticker)
        days = raw["trade_date"].to_numpy().astype("datetime64[D]")
        multiplier = np.ones(len(raw))
        for event in p.events:
            ex_date = sessions()[event.index]
            multiplier[days < ex_date] *= s["base_price"][event.index] / s["close"][event.index - 1]
        for col in ("open", "high", "low", "close"):
            raw[col] = pd.array(np.rint(raw[col].astype("float64") * multiplier), dtype="Int64")
        return raw[KRX_ADJUSTED_COLUMNS].reset_index(drop=True)

    @staticmethod
    def _rows(ticker: str, s, picked: np.ndarray, all_sessions) -> pd.DataFrame:
        halted = s["halted"][picked]
        frame = pd.DataFrame({
            "ticker": ticker,
            "trade_date": all_sessions[picked].astype(object),  # datetime64[D] -> datetime.date
            "open": pd.array(np.where(halted, 0, s["open"][picked]), dtype="Int64"),
            "high": pd.array(np.where(halted, 0, s["high"][picked]), dtype="Int64"),
            "low": pd.array(np.where(halted, 0, s["low"][picked]), dtype="Int64"),
            "close": s["close"][picked], "volume": s["volume"][picked],
            "trading_value": s["trading_value"][picked], "change_rate": s["change_rate"][picked],
            "base_price": s["base_price"][picked],
            "market_cap": s["market_cap"][picked], "listed_shares": s["listed_shares"][picked],
        })
        for col in ("open", "high", "low"):
            frame.loc[halted, col] = pd.NA
        return frame

    # ----------------------------------------------------------------- whole market
    def day(self, day: dt.date) -> pd.DataFrame:
        """Every ticker trading on session ``day`` (:data:`DAILY_COLUMNS` plus name/market/isin/sector)."""
        i = session_index(day)
        if i < 0:
            return pd.DataFrame(columns=DAILY_COLUMNS + ["name", "market", "isin", "sector"])
        block = self._block(i // _BLOCK)
        return block[block["_i"] == i].drop(columns="_i").reset_index(drop=True)

    @lru_cache(maxsize=2)
    def _block(self, number: int) -> pd.DataFrame:
        all_sessions = sessions()
        lo, hi = number * _BLOCK, min(len(all_sessions), (number + 1) * _BLOCK)
        parts = {k: [] for k in ("ticker", "_i", "open", "high", "low", "close", "volume", "trading_value",
                                 "change_rate", "base_price", "market_cap", "listed_shares", "halted", "name",
                                 "market", "isin", "sector")}
        for ticker in self.tickers:
            p = self.profile(ticker)
            s = self.series(ticker)
            idx = np.arange(lo, hi)[s["trading"][lo:hi]]
            if not len(idx):
                continue
            parts["ticker"].append(np.full(len(idx), ticker, dtype=object))
            parts["_i"].append(idx)
            for col in ("open", "high", "low", "close", "volume", "trading_value", "change_rate", "base_price",
                        "market_cap", "listed_shares", "halted"):
                parts[col].append(s[col][idx])
            parts["name"].append(np.array([self.name_on(p, i) for i in idx], dtype=object))
            parts["market"].append(np.array([self.market_on(p, i) for i in idx], dtype=object))
            parts["isin"].append(np.full(len(idx), isin_of(ticker), dtype=object))
            parts["sector"].append(np.full(len(idx), p.sector, dtype=object))
        if not parts["ticker"]:
            return pd.DataFrame(columns=list(parts) + ["trade_date"])
        frame = pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
        frame["trade_date"] = all_sessions[frame["_i"].to_numpy()].astype(object)
        halted = frame.pop("halted").to_numpy()
        for col in ("open", "high", "low"):
            frame[col] = pd.array(frame[col], dtype="Int64")
            frame.loc[halted, col] = pd.NA
        return frame

    # ----------------------------------------------------------------- other daily reports (issue 17)
    def report(self, name: str, day: dt.date) -> pd.DataFrame:
        """One of the other daily reports of session ``day`` (see :mod:`krxflow.sample.market_reports`):
        ``index_prices``, ``investor_trading``, ``fundamentals``, ``short_selling``, ``short_balance``
        or ``foreign_ownership``; empty when ``day`` is not a session."""
        from krxflow.sample import market_reports as sample_reports

        if name not in _REPORTS:
            raise ValueError(f"the sample market has no report {name!r}")
        return getattr(sample_reports, name)(self, day)

    def __hash__(self):
        return hash(("SampleMarket", self.count))

    def __eq__(self, other):
        return isinstance(other, SampleMarket) and other.count == self.count


_REPORTS = ("index_prices", "investor_trading", "fundamentals", "short_selling", "short_balance", "foreign_ownership")


def _previous_session(day: dt.date) -> dt.date:
    from krxflow.calendar import is_trading_day, previous_trading_day

    return day if is_trading_day(day) else previous_trading_day(day)


class SampleSource(KrxSource):
    """:class:`KrxSource` over :class:`SampleMarket`: no network, no pacing, same row shapes as pykrx."""

    name = "sample"

    def __init__(self, tickers: int | None = None):
        self.market = SampleMarket(tickers)

    def listing(self, day) -> pd.DataFrame:
        frame = self.market.day(_previous_session(kst_date(day)))
        return frame[LISTING_COLUMNS].reset_index(drop=True)

    def delisted(self) -> pd.DataFrame:
        today_index = session_index(_previous_session(min(kst_today(), sessions()[-1].astype(dt.date))))
        rows = []
        for ticker in self.market.tickers:
            p = self.market.profile(ticker)
            if p.delisted is not None and p.delisted <= today_index:
                rows.append((ticker, self.market.name_on(p, p.delisted - 1), self.market.market_on(p, p.delisted - 1),
                             isin_of(ticker)))
        return pd.DataFrame(rows, columns=DELISTED_COLUMNS)

    def daily_prices(self, day) -> pd.DataFrame:
        return self.market.day(kst_date(day))[DAILY_COLUMNS].reset_index(drop=True)

    def market_day(self, day) -> pd.DataFrame:
        return self.market.day(kst_date(day))[MARKET_DAY_COLUMNS].reset_index(drop=True)

    def history(self, ticker: str, first, last, *, adjusted: bool = True, isin: str | None = None) -> pd.DataFrame:
        return self.market.history(ticker, kst_date(first), kst_date(last), adjusted).reset_index(drop=True)

    def krx_adjusted(self, ticker: str, first, last, *, isin: str | None = None) -> pd.DataFrame:
        return self.market.krx_adjusted(ticker, kst_date(first), kst_date(last))

    def index_prices(self, day) -> pd.DataFrame:
        return self.market.report("index_prices", kst_date(day))

    def investor_trading(self, day) -> pd.DataFrame:
        return self.market.report("investor_trading", kst_date(day))

    def fundamentals(self, day) -> pd.DataFrame:
        return self.market.report("fundamentals", kst_date(day))

    def short_selling(self, day) -> pd.DataFrame:
        return self.market.report("short_selling", kst_date(day))

    def short_balance(self, day) -> pd.DataFrame:
        return self.market.report("short_balance", kst_date(day))

    def foreign_ownership(self, day) -> pd.DataFrame:
        return self.market.report("foreign_ownership", kst_date(day))

    # ---- the universe (issue 27): see krxflow.sample.market_universe
    def industries(self, day) -> pd.DataFrame:
        from krxflow.sample.market_universe import industries

        return industries(self.market, kst_date(day))[INDUSTRY_COLUMNS]

    def index_members(self, index_code: str, day) -> pd.DataFrame:
        from krxflow.sample.market_universe import index_members

        members = index_members(self.market, index_code, kst_date(day))
        return pd.DataFrame({"index_code": index_code, "ticker": members.get("ticker", pd.Series(dtype=object))},
                            columns=INDEX_MEMBER_COLUMNS)

    def index_master(self) -> pd.DataFrame:
        from krxflow.sample.market_reports import index_master

        return index_master()[INDEX_COLUMNS]

    def delistings(self, first, last) -> pd.DataFrame:
        """What KRX's delisted-issues answer of the window parses to (the same parser as the pykrx source)."""
        from krxflow.krx.universe_parsing import delistings_frame
        from krxflow.sample.market_universe import delisted_answer

        return delistings_frame(pd.DataFrame(delisted_answer(self.market, kst_date(first), kst_date(last))))

    # ---- ETFs and ETNs (issue 27, point 4): see krxflow.sample.market_etps
    def etp_day(self, kind: str, day) -> pd.DataFrame:
        """What KRX's one-day screen of ``kind`` parses to (the pykrx source's parser); a session the
        sample has no product of is KRX's empty answer, an error."""
        from krxflow.calendar import is_trading_day
        from krxflow.krx.errors import KrxEmptyAnswerError
        from krxflow.krx.etp_parsing import etp_day_frame
        from krxflow.krx.interface import ETP_DAY_COLUMNS, ETP_KINDS
        from krxflow.sample.market_etps import etp_answer

        if kind not in ETP_KINDS:
            raise ValueError(f"kind must be one of {ETP_KINDS} (got {kind!r})")
        day = kst_date(day)
        if not is_trading_day(day):
            return pd.DataFrame(columns=ETP_DAY_COLUMNS)
        frame = etp_day_frame(pd.DataFrame(etp_answer(self.market, kind, day)), kind, day)
        if frame.empty:
            raise KrxEmptyAnswerError(f"the sample market has no {kind} prices for {day}")
        return frame

    def etp_info(self, kind: str) -> pd.DataFrame:
        from krxflow.krx.etp_parsing import etp_info_frame
        from krxflow.sample.market_etps import etp_info_answer

        today = min(kst_today(), sessions()[-1].astype(dt.date))
        return etp_info_frame(pd.DataFrame(etp_info_answer(self.market, kind, today)), kind)
