"""The sample market's universe (issue 27): industries, index constituents and delistings.

Deterministic and consistent with the sample prices of :class:`~krxflow.sample.market.SampleMarket`:

* **industries** — every ticker has one industry of its market each session (KRX's 업종 names);
  about 3 % are reclassified once, and a KOSDAQ→KOSPI move takes the ticker to the KOSPI industry
  of the same rank. Each industry is also a **sector index** (:data:`SECTOR_INDICES`) whose members
  are exactly the tickers of that industry trading that session, so the sector indices' market
  caps add up to the market's composite (코스피, 코스닥);
* **KOSPI 200, KOSDAQ 150, KRX 300** — the largest tickers of their market by market cap 15
  sessions before each regular change (:func:`krxflow.krx.universe_catalog.rebalance_dates`; the
  first composition on the sample's first session), sized in proportion to the sample
  (200 of 2,700 tickers' KOSPI, ...). Between changes a member leaves the day it is delisted or
  moves market; nobody enters. Every member trades on every day it is a member;
* **delistings** — each delisted sample ticker with KRX's date (its first session without trading),
  a reason, and for a merger (피흡수합병) the successor ticker that absorbed it, trading that day;
  KOSDAQ listings that moved up from KONEX have their KONEX code's delisting with the KOSDAQ
  ticker as successor; rights certificates (신주인수권증서) are delisted too (not shares:
  krxflow leaves them out).
"""

from __future__ import annotations

import datetime as dt
import zlib
from functools import lru_cache

import numpy as np
import pandas as pd

from krxflow.krx.universe_catalog import CORE_INDICES, rebalance_dates
from krxflow.sample.sessions import UNIVERSE_START, session_index, sessions

#: Industries of each market (KRX's names), each also a sector index: (short code, name).
KOSPI_INDUSTRIES = (("008", "화학"), ("009", "의약품"), ("012", "기계"), ("013", "전기전자"), ("015", "운수장비"),
                    ("016", "유통업"), ("021", "금융업"), ("026", "서비스업"))
KOSDAQ_INDUSTRIES = (("015", "IT 서비스"), ("024", "제조"), ("026", "건설"), ("027", "유통"), ("029", "운송"),
                     ("031", "금융"), ("037", "제약"), ("041", "화학"))
#: The sample's sector indices: (group, finder full_code, short_code, name).
SECTOR_INDICES = tuple(("KOSPI", "1", short, name) for short, name in KOSPI_INDUSTRIES) + \
    tuple(("KOSDAQ", "2", short, name) for short, name in KOSDAQ_INDUSTRIES)
_INDUSTRIES = {"KOSPI": [n for _, n in KOSPI_INDUSTRIES], "KOSDAQ": [n for _, n in KOSDAQ_INDUSTRIES]}
#: Full size of each core index in a market of :data:`FULL_MARKET` tickers.
_CORE_SIZES = {"1028": 200, "2203": 150, "5300": 300}
FULL_MARKET = 2_700
_REVIEW_LAG = 15  # sessions between the review (the caps compared) and the change
#: Reasons of the sample's delistings (KRX's wording); a merger has a successor.
MERGER = "피흡수합병"
_REASONS = ("감사의견 거절(의견거절)", MERGER, "신청에 의한 상장폐지", "자본전액잠식",
            "상장폐지 사유 발생(기업의 계속성 등 불인정)")
KONEX_MOVE = "코스닥시장 이전상장"
RIGHTS_CERTIFICATE = "신주인수권증서"


def _unit(ticker: str, salt: str) -> float:
    return zlib.crc32(f"krxflow-sample:{ticker}:{salt}".encode()) / 2**32


def _trading(p, i: int) -> bool:
    return p.listed <= i and (p.delisted is None or i < p.delisted)


# ---------------------------------------------------------------------------- industries
def _reclassified_at(p) -> int | None:
    """The session a ticker changes industry (about 3 % of tickers), or None."""
    if p.ticker == "005930" or _unit(p.ticker, "reclassified") >= 0.03:
        return None
    n = len(sessions())
    return min(n - 1, p.listed + 1 + int(_unit(p.ticker, "reclassified-at") * (n - p.listed - 1)))


def industry_on(market_obj, p, i: int) -> str:
    """The industry of ticker profile ``p`` on session ``i`` (its market's KRX industry name)."""
    market = market_obj.market_on(p, i)
    names = _INDUSTRIES[market]
    if p.ticker == "005930":
        return "전기전자"
    rank = int(_unit(p.ticker, "industry") * len(names))
    at = _reclassified_at(p)
    if at is not None and i >= at:
        rank = (rank + 1 + int(_unit(p.ticker, "industry-2") * (len(names) - 1))) % len(names)
    return names[rank]


def industries(market_obj, day: dt.date) -> pd.DataFrame:
    """Every ticker trading on session ``day`` with its industry (and the day's close, change and cap)."""
    frame = market_obj.day(day)
    columns = ["ticker", "name", "market", "industry", "close", "base_price", "change_rate", "market_cap"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    of_day = _industry_map(market_obj, day)
    frame = frame.assign(industry=frame["ticker"].map(of_day))
    return frame[columns].reset_index(drop=True)


# ---------------------------------------------------------------------------- index members
def core_size(code: str, count: int) -> int:
    """Members of core index ``code`` in a sample of ``count`` tickers (its full size at 2,700)."""
    return max(1, round(_CORE_SIZES[code] * count / FULL_MARKET))


def _changes() -> list[int]:
    """Sessions (indices) of the core indices' compositions: the first session, then each regular change."""
    last = sessions()[-1].astype(dt.date)
    return [0] + [session_index(d) for d in rebalance_dates(UNIVERSE_START + dt.timedelta(days=1), last)]


@lru_cache(maxsize=64)
def _composition(market_obj, code: str, change: int) -> tuple[str, ...]:
    """The tickers chosen for core index ``code`` at the change on session ``change``."""
    review = sessions()[max(0, change - _REVIEW_LAG)].astype(dt.date)
    frame = market_obj.day(review)
    wanted = CORE_INDICES[code][1]
    keep = []
    for r in frame.itertuples(index=False):
        p = market_obj.profile(r.ticker)
        if _trading(p, change) and (wanted is None or market_obj.market_on(p, change) == wanted):
            keep.append((r.market_cap, r.ticker))
    keep.sort(key=lambda c: (-c[0], c[1]))
    return tuple(t for _, t in keep[:core_size(code, market_obj.count)])


def core_members(market_obj, code: str, day: dt.date) -> list[str]:
    """Members of core index ``code`` on session ``day`` (empty off-session)."""
    i = session_index(day)
    if i < 0:
        return []
    changes = _changes()
    change = changes[int(np.searchsorted(changes, i, side="right")) - 1]
    wanted = CORE_INDICES[code][1]
    members = []
    for ticker in _composition(market_obj, code, change):
        p = market_obj.profile(ticker)
        if _trading(p, i) and (wanted is None or market_obj.market_on(p, i) == wanted):
            members.append(ticker)
    return members


def sector_index(code: str) -> tuple[str, str] | None:
    """(market, industry) of a sample sector index code, or None."""
    for group, full, short, name in SECTOR_INDICES:
        if f"{full}{short}" == code:
            return group, name
    return None


def members_mask(market_obj, code: str, frame: pd.DataFrame, day: dt.date) -> np.ndarray | None:
    """Which rows of the day's market ``frame`` are members of ``code`` (None: not a universe index)."""
    if code in CORE_INDICES:
        return frame["ticker"].isin(set(core_members(market_obj, code, day))).to_numpy()
    sector = sector_index(code)
    if sector is None:
        return None
    of_day = _industry_map(market_obj, day)
    groups = frame["market"].to_numpy()
    names = np.array([of_day.get(t) for t in frame["ticker"]], dtype=object)
    return (groups == sector[0]) & (names == sector[1])


@lru_cache(maxsize=4)
def _industry_map(market_obj, day: dt.date) -> dict[str, str]:
    """ticker → industry of every ticker trading on session ``day``."""
    i = session_index(day)
    return {t: industry_on(market_obj, market_obj.profile(t), i) for t in market_obj.day(day)["ticker"]}


def index_members(market_obj, code: str, day: dt.date) -> pd.DataFrame:
    """Members of index ``code`` on session ``day`` with their prices of the day (empty: unknown or off-session)."""
    frame = market_obj.day(day)
    if frame.empty:
        return frame
    mask = members_mask(market_obj, code, frame, day)
    if mask is None:
        return frame.iloc[0:0]
    return frame[mask].sort_values("market_cap", ascending=False).reset_index(drop=True)


# ---------------------------------------------------------------------------- delistings
def _successor(market_obj, p, i: int):
    """The ticker that absorbs ``p`` on session ``i``: the next one in the universe trading through that day."""
    n = market_obj.count
    for step in range(1, n):
        q = market_obj.profile(market_obj.tickers[(p.index + step) % n])
        if q.delisted is None and _trading(q, i):
            return q
    return None


def delistings(market_obj, first: dt.date, last: dt.date) -> list[dict]:
    """The delisted-issues report's rows (KRX's fields, Python values) with a delisting date in [first, last]."""
    all_sessions = sessions()
    rows = []

    def add(**row):
        if first <= row["DELIST_DD"] <= last:
            rows.append(row)

    for ticker in market_obj.tickers:
        p = market_obj.profile(ticker)
        if p.delisted is not None:
            i = p.delisted
            reason = "피흡수합병" if p.index == 5 else _REASONS[int(_unit(ticker, "reason") * len(_REASONS))]
            successor = _successor(market_obj, p, i) if reason == MERGER else None
            arranged = (all_sessions[max(p.listed, i - 7)].astype(dt.date), all_sessions[i - 1].astype(dt.date)) \
                if reason != MERGER else (None, None)
            add(ISU_CD=ticker, ISU_NM=market_obj.name_on(p, i - 1), MKT_NM=market_obj.market_on(p, i - 1),
                SECUGRP_NM="주권", KIND_STKCERT_TP_NM="보통주", LIST_DD=all_sessions[p.listed].astype(dt.date),
                DELIST_DD=all_sessions[i].astype(dt.date), DELIST_RSN_DSC=reason,
                ARRANTRD_MKTACT_ENFORCE_DD=arranged[0], ARRANTRD_END_DD=arranged[1],
                IDX_IND_NM=industry_on(market_obj, p, i - 1), PARVAL=500,
                LIST_SHRS=int(market_obj.series(ticker)["listed_shares"][i - 1]),
                TO_ISU_SRT_CD=successor.ticker if successor else None,
                TO_ISU_ABBRV=market_obj.name_on(successor, i) if successor else None)
        if p.listed > 0 and p.market == "KOSDAQ" and _unit(ticker, "konex") < 0.3:
            day = all_sessions[p.listed].astype(dt.date)
            add(ISU_CD=f"9{ticker[1:]}", ISU_NM=p.name, MKT_NM="KONEX", SECUGRP_NM="주권",
                KIND_STKCERT_TP_NM="보통주", LIST_DD=day - dt.timedelta(days=730), DELIST_DD=day,
                DELIST_RSN_DSC=KONEX_MOVE, ARRANTRD_MKTACT_ENFORCE_DD=None, ARRANTRD_END_DD=None,
                IDX_IND_NM=industry_on(market_obj, p, p.listed), PARVAL=500, LIST_SHRS=p.shares,
                TO_ISU_SRT_CD=ticker, TO_ISU_ABBRV=p.name)
        for event in p.events:
            if event.kind == "rights":  # the rights certificates trade a few sessions, then are delisted
                day = all_sessions[min(len(all_sessions) - 1, event.index + 5)].astype(dt.date)
                add(ISU_CD=f"{ticker[:5]}R", ISU_NM=f"{p.name} {RIGHTS_CERTIFICATE[:5]}", MKT_NM=p.market,
                    SECUGRP_NM=RIGHTS_CERTIFICATE, KIND_STKCERT_TP_NM="", LIST_DD=all_sessions[event.index].astype(dt.date),
                    DELIST_DD=day, DELIST_RSN_DSC="", ARRANTRD_MKTACT_ENFORCE_DD=None, ARRANTRD_END_DD=None,
                    IDX_IND_NM="", PARVAL=None, LIST_SHRS=None, TO_ISU_SRT_CD=None, TO_ISU_ABBRV=None)
    return sorted(rows, key=lambda r: (r["DELIST_DD"], r["ISU_CD"]), reverse=True)


def _krx_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.strftime("%Y/%m/%d")
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


def delisted_answer(market_obj, first: dt.date, last: dt.date) -> list[dict]:
    """MDCSTAT23801's ``output`` rows as KRX writes them: text, dates ``YYYY/MM/DD``, numbers with commas."""
    return [{k: _krx_text(v) for k, v in row.items()} for row in delistings(market_obj, first, last)]
