"""The sample market's ETFs and ETNs (issue 27, point 4), consistent with the sample's indices.

Deterministic (the same market, kind and day give the same rows). A market of ``count`` tickers
lists about ``0.3 × count`` ETFs and ``0.14 × count`` ETNs (810 and 378 at 2,700 tickers, as KRX's
812 and 376), each tracking one of the sample's priced indices (KOSPI 200 most often; KOSDAQ 150,
KRX 300, KRX 100, 코스피, 코스피 대형주, 코스닥) with a multiplier of 1, 2, -1 or -2:

* **NAV** (an ETN's IV) is ``unit × (index close / 1000) ** multiplier`` less the yearly fee, so a
  product's NAV moves with the sample index of the day (:func:`krxflow.sample.market_reports.index_prices`)
  — exactly ``multiplier ×`` its change for a 1x product, within its square for the others
  (a daily-rebalanced product's drift);
* the **close** is the NAV with a small premium or discount (±0.2 % typical), on KRX's 5-won
  tick; open, high and low around it; units, market cap and net assets follow;
* **listings**: most products trade from the sample's first session, the others list later; a
  few ETFs are liquidated, and an ETN stops trading after its last trading day (10 years after its
  listing) or an early redemption.

:func:`etp_answer` writes a day as KRX's screens do (MDCSTAT04301 / MDCSTAT06401 ``output``: text,
thousands commas, ``"-"`` for missing; ``published=False`` gives KRX's rows of ``"-"`` for a day
it has not published), :func:`etp_info_answer` KRX's base-info screens (MDCSTAT04601 / 06701).
The offline replay and :class:`~krxflow.sample.market.SampleSource` both answer from these.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from krxflow.sample.codes import isin_of
from krxflow.sample.sessions import UNIVERSE_START, session_index, sessions

#: ETFs and ETNs per ticker of the sample market.
PER_TICKER = {"ETF": 0.3, "ETN": 0.14}
#: The indices the sample's products track (codes of the sample's index master); repeats weigh.
TRACKED = ("1028", "1028", "1028", "1028", "2203", "2203", "5300", "5042", "1001", "1002", "2001")
MULTIPLIERS = {"ETF": (1, 1, 1, 1, 1, 1, 2, -1, -2), "ETN": (1, 1, 1, 2, -1)}
#: (brand, issuer): ETF 운용사 and ETN 발행사.
ISSUERS = {"ETF": (("KODEX", "삼성자산운용"), ("TIGER", "미래에셋자산운용"), ("KBSTAR", "케이비자산운용"),
                   ("ARIRANG", "한화자산운용"), ("KOSEF", "키움투자자산운용"), ("HANARO", "엔에이치아문디자산운용")),
           "ETN": (("신한", "신한투자증권"), ("삼성", "삼성증권"), ("미래에셋", "미래에셋증권"), ("KB", "KB증권"),
                   ("NH", "NH투자증권"), ("한투", "한국투자증권"))}
#: KRX's words for the exposure in its base info, per kind.
MULTIPLIER_TEXT = {"ETF": {1: "일반 (1)", 2: "2X 레버리지 (2)", -1: "1X 인버스 (-1)", -2: "2X 인버스 (-2)"},
                   "ETN": {1: "일반", 2: "2X 레버리지", -1: "-1X 인버스", -2: "-2X 인버스"}}
_NAME_SUFFIX = {1: "", 2: " 레버리지", -1: " 인버스", -2: " 인버스2X"}
_CODE_BASE = {"ETF": 400_000, "ETN": 550_000}
_TICK = 5


def _unit(code: str, salt: str) -> float:
    return zlib.crc32(f"krxflow-sample-etp:{code}:{salt}".encode()) / 2**32


@dataclass(frozen=True)
class Product:
    """One sample ETF or ETN over the life of the sample market (indices into sessions())."""

    code: str
    kind: str
    position: int
    name: str
    index_code: str
    multiplier: int
    brand: str
    issuer: str
    unit: float  # NAV at an index level of 1000
    fee: float  # yearly
    units: int
    volume: float  # typical daily volume
    listed: int
    delisted: int | None  # first session it no longer trades
    listed_on: dt.date  # KRX's listing date (before the sample's start for most)
    last_trading_on: dt.date | None  # an ETN's last trading day


def count_of(market, kind: str) -> int:
    return max(3, round(PER_TICKER[kind] * market.count))


@lru_cache(maxsize=8)
def products(market, kind: str) -> tuple[Product, ...]:
    """The sample market's ETFs or ETNs."""
    from krxflow.sample.market_reports import index_master

    names = index_master().set_index("index_code")["name"]
    all_sessions = sessions()
    n = len(all_sessions)
    out = []
    for position in range(count_of(market, kind)):
        code = f"{_CODE_BASE[kind] + 3 * position:06d}"
        index_code = TRACKED[int(_unit(code, "index") * len(TRACKED))]
        multiplier = MULTIPLIERS[kind][int(_unit(code, "multiplier") * len(MULTIPLIERS[kind]))]
        brand, issuer = ISSUERS[kind][int(_unit(code, "issuer") * len(ISSUERS[kind]))]
        listed = 0 if _unit(code, "listed") < 0.85 else 20 + int(_unit(code, "listed-at") * (n - 60))
        listed_on = (UNIVERSE_START - dt.timedelta(days=30 + int(_unit(code, "age") * 3000)) if listed == 0
                     else all_sessions[listed].astype(dt.date))
        delisted, last_trading_on = None, None
        lasting = position == 0  # every kind always lists one product: a small sample's answer is never empty
        if lasting:
            listed, listed_on = 0, UNIVERSE_START - dt.timedelta(days=365)
        if not lasting and _unit(code, "delisted") < 0.06 and listed + 60 < n:
            delisted = listed + 60 + int(_unit(code, "delisted-at") * (n - listed - 60))
        if kind == "ETN":
            term = 10 if _unit(code, "term") < 0.3 and not lasting else 20  # years to the last trading day
            last_trading_on = dt.date(listed_on.year + term, listed_on.month, min(listed_on.day, 28))
            after = int(np.searchsorted(all_sessions, np.datetime64(last_trading_on, "D"), side="right"))
            if after < n and (delisted is None or after < delisted):
                delisted = after
        if delisted is not None:
            last_trading_on = all_sessions[delisted - 1].astype(dt.date) if kind == "ETN" else None
        name = f"{brand} {names[index_code]}{_NAME_SUFFIX[multiplier]}" + (" ETN" if kind == "ETN" else "")
        out.append(Product(code, kind, position, name, index_code, multiplier, brand, issuer,
                           unit=float(np.exp(np.log(5_000) + _unit(code, "unit") * np.log(12))),
                           fee=0.0005 + _unit(code, "fee") * 0.0075,
                           units=int(10 ** (5 + 2.5 * _unit(code, "units"))),
                           volume=float(10 ** (2 + 4 * _unit(code, "volume"))),
                           listed=listed, delisted=delisted, listed_on=listed_on, last_trading_on=last_trading_on))
    return tuple(out)


@lru_cache(maxsize=16)
def _index_of_day(market, day: dt.date) -> pd.DataFrame:
    """The sample's index closes of session ``day`` with the previous session's (by index code)."""
    from krxflow.sample.market_reports import index_prices

    frame = index_prices(market, day).set_index("index_code")
    previous = (frame["close"] - frame["change"]).where(frame["change"].notna(), frame["close"])
    return pd.DataFrame({"close": frame["close"], "previous": previous, "change": frame["change"].fillna(0.0),
                         "change_rate": frame["change_rate"].fillna(0.0), "name": frame["name"]})


def _ticked(price: np.ndarray) -> np.ndarray:
    price = np.maximum(price, 1.0)
    tick = np.where(price >= 2_000, _TICK, 1)
    return (np.rint(price / tick) * tick).astype(np.int64)


def _noise(kind: str, i: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(f"krxflow-sample-etp:{kind}:{i}".encode()))
    return rng.standard_normal((n, 5))


def _nav(p: Product, level: float, i: int) -> float:
    return p.unit * (level / 1000.0) ** p.multiplier * (1 - p.fee) ** (i / 250)


@lru_cache(maxsize=32)
def day_frame(market, kind: str, day: dt.date) -> pd.DataFrame:
    """Every product of ``kind`` trading on session ``day`` with its figures (numbers, not text; cached:
    callers must not modify it)."""
    i = session_index(day)
    every = products(market, kind)
    trading = [p for p in every if i >= 0 and p.listed <= i and (p.delisted is None or i < p.delisted)]
    if not trading:
        return pd.DataFrame()
    index = _index_of_day(market, day)
    today, before = _noise(kind, i, len(every)), _noise(kind, i - 1, len(every))
    rows = []
    for p in trading:
        level, previous = float(index.at[p.index_code, "close"]), float(index.at[p.index_code, "previous"])
        nav = _nav(p, level, i)
        close = int(_ticked(np.array([nav * (1 + 0.002 * np.clip(today[p.position, 0], -3, 3))]))[0])
        if i > p.listed:
            prev_nav = _nav(p, previous, i - 1)
            prev_close = int(_ticked(np.array([prev_nav * (1 + 0.002 * np.clip(before[p.position, 0], -3, 3))]))[0])
        else:  # the listing day: the change is measured against the day's own close
            prev_close = close
        z = today[p.position]
        open_ = int(_ticked(np.array([prev_close * (1 + 0.003 * np.clip(z[1], -3, 3))]))[0])
        high = max(open_, close, int(_ticked(np.array([max(open_, close) * (1 + 0.002 * abs(z[2]))]))[0]))
        low = min(open_, close, int(_ticked(np.array([min(open_, close) * (1 - 0.002 * abs(z[3]))]))[0]))
        volume = int(p.volume * np.exp(0.8 * np.clip(z[4], -3, 3)))
        rows.append({"code": p.code, "name": p.name, "isin": isin_of(p.code, "KR7" if kind == "ETF" else "KRG"),
                     "open": open_, "high": high, "low": low, "close": close, "change": close - prev_close,
                     "change_rate": round((close - prev_close) / prev_close * 100, 2), "nav": round(nav, 2),
                     "volume": volume, "trading_value": int(volume * (open_ + high + low + close) / 4),
                     "market_cap": close * p.units, "net_assets": int(round(nav * p.units)), "listed_units": p.units,
                     "index_name": index.at[p.index_code, "name"], "index_close": level,
                     "index_change": float(index.at[p.index_code, "change"]),
                     "index_change_rate": float(index.at[p.index_code, "change_rate"])})
    return pd.DataFrame(rows)


def _c(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{int(value):,}"


def _d(value, places: int = 2) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):,.{places}f}"


def _fluc(change) -> str:
    return "1" if change > 0 else "2" if change < 0 else "3"


def etp_answer(market, kind: str, day: dt.date, *, published: bool = True) -> list[dict]:
    """KRX's one-day screen of ``kind`` (MDCSTAT04301 / MDCSTAT06401 ``output``) as text rows: empty
    off-session; with ``published=False`` every product with ``"-"`` values (a day KRX has not published)."""
    frame = day_frame(market, kind, day)
    if frame.empty:
        return []
    nav_field, assets_field = ("NAV", "INVSTASST_NETASST_TOTAMT") if kind == "ETF" else \
        ("PER1SECU_INDIC_VAL", "INDIC_VAL_AMT")
    rows = []
    for r in frame.itertuples(index=False):
        row = {"ISU_SRT_CD": r.code, "ISU_CD": r.isin, "SECUGRP_ID": "EF" if kind == "ETF" else "EN",
               "ISU_ABBRV": r.name, "TDD_CLSPRC": _c(r.close), "CMPPREVDD_PRC": _c(r.change),
               "FLUC_TP_CD": _fluc(r.change), "FLUC_RT": _d(r.change_rate), nav_field: _d(r.nav),
               "TDD_OPNPRC": _c(r.open), "TDD_HGPRC": _c(r.high), "TDD_LWPRC": _c(r.low),
               "ACC_TRDVOL": _c(r.volume), "ACC_TRDVAL": _c(r.trading_value), "MKTCAP": _c(r.market_cap),
               assets_field: _c(r.net_assets), "LIST_SHRS": _c(r.listed_units), "IDX_IND_NM": r.index_name,
               "OBJ_STKPRC_IDX": _d(r.index_close), "CMPPREVDD_IDX": _d(r.index_change),
               "FLUC_TP_CD1": _fluc(r.index_change), "FLUC_RT1": _d(r.index_change_rate)}
        if not published:
            row = {k: (v if k in ("ISU_SRT_CD", "ISU_CD", "SECUGRP_ID", "ISU_ABBRV", "IDX_IND_NM") else "-")
                   for k, v in row.items()}
        rows.append(row)
    return rows


def etp_info_answer(market, kind: str, today: dt.date) -> list[dict]:
    """KRX's base-info screen of ``kind`` (MDCSTAT04601 / MDCSTAT06701 ``output``): the products
    listed on the last sample session up to ``today``."""
    from krxflow.sample.market_reports import index_master

    all_sessions = sessions()
    last = max(int(np.searchsorted(all_sessions, np.datetime64(today, "D"), side="right")) - 1, 0)
    names = index_master().set_index("index_code")["name"]
    rows = []
    for p in products(market, kind):
        if not (p.listed <= last and (p.delisted is None or last < p.delisted)):
            continue
        common = {"ISU_CD": isin_of(p.code, "KR7" if kind == "ETF" else "KRG"), "ISU_SRT_CD": p.code,
                  "ISU_NM": f"{p.issuer} {p.name}", "ISU_ABBRV": p.name, "ISU_ENG_NM": f"{p.brand} {p.code}",
                  "LIST_DD": p.listed_on.strftime("%Y/%m/%d"), "IDX_MKT_CLSS_NM": "국내", "IDX_ASST_CLSS_NM": "주식",
                  "LIST_SHRS": _c(p.units), "TAX_TP_CD": "비과세"}
        if kind == "ETF":
            rows.append({**common, "ETF_OBJ_IDX_NM": names[p.index_code], "IDX_CALC_INST_NM1": "KRX",
                         "IDX_CALC_INST_NM2": MULTIPLIER_TEXT[kind][p.multiplier],
                         "ETF_REPLICA_METHD_TP_CD": "실물", "COM_ABBRV": p.issuer,
                         "CU_QTY": "50,000", "ETF_TOT_FEE": f"{p.fee * 100:.3f}"})
        else:
            rows.append({**common, "LSTTRD_DD": p.last_trading_on.strftime("%Y/%m/%d"), "TRACE_IDX_NM": names[p.index_code],
                         "IDX_CALC_INST_NM": "KRX", "IDX_LVRG_INVRS_TP_CD": MULTIPLIER_TEXT[kind][p.multiplier],
                         "ETP_PROD_TP_CD": "ETN", "ISUR_NM": p.issuer, "EXPS_RTO": f"{p.fee * 100:.2f}"})
    return rows
