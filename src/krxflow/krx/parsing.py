"""KRX's and Naver's price answers as krxflow's rows: pure functions, no I/O.

Each takes what pykrx's core class returned (every field KRX sent, as text) and returns the
columns of the target table (:mod:`krxflow.krx.interface`). KRX's ``"-"`` and empty strings are
NULL; halted days' ``0`` open/high/low are NULL too; a field an answer must have and lacks is a
site change (:class:`~krxflow.krx.errors.KrxBadAnswerError`). The report answers' parsers
(:mod:`krxflow.krx.report_parsing`) use the same number helpers.

Tested on KRX's recorded answers (``../shared/reference/krx-recorded/``) in
``tests/test_sources_pykrx.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
import xml.etree.ElementTree as ElementTree

import pandas as pd

from krxflow.krx.interface import ADJUSTED_COLUMNS, DAILY_COLUMNS, MARKETS
from krxflow.krx.errors import KrxBadAnswerError

log = logging.getLogger(__name__)


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.replace(",", "", regex=False).str.strip()
    return text.mask(text.isin(["-", ""]))


def whole(values: pd.Series) -> pd.Series:
    """KRX's text integers ("1,234", "-", "") as nullable integers."""
    return pd.to_numeric(_text(values), errors="coerce").astype("Int64")


def decimal(values: pd.Series) -> pd.Series:
    """KRX's text decimals ("1,234.56", "-") as floats rounded to KRX's 2 decimals (NULL for "-")."""
    return pd.to_numeric(_text(values), errors="coerce").astype("float64").round(2)


#: Columns a row carries whether or not KRX has published the session (who, and the listing's shares):
#: KRX answers a session it has not published with its usual rows, these filled and every value "-".
LISTING_FIELDS = frozenset({"ticker", "trade_date", "investor", "index_code", "name", "index_group", "market",
                            "isin", "sector", "listed_shares", "industry"})


def without_values(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` (a parsed answer) has rows and not one value of the day in any of them:
    the shape of KRX's answer for a session it has not published yet."""
    values = frame[[c for c in frame.columns if c not in LISTING_FIELDS]]
    return len(frame) > 0 and values.shape[1] > 0 and bool(values.isna().all().all())


def raw_without_values(raw: pd.DataFrame, fields: tuple[str, ...]) -> bool:
    """:func:`without_values` on a raw answer whose parsed rows keep no value of the day (industries,
    index constituents): rows, and ``"-"`` in every one of ``fields`` that the answer has."""
    present = [f for f in fields if f in raw.columns]
    return len(raw) > 0 and bool(present) and all(_text(raw[f]).isna().all() for f in present)


def require_fields(raw: pd.DataFrame, fields: set[str], what: str) -> None:
    """A field an answer must have and lacks is a site change: :class:`KrxBadAnswerError`."""
    missing = fields - set(raw.columns)
    if missing:
        raise KrxBadAnswerError(f"KRX's {what} answer lacks {sorted(missing)}: site change?")


def _krx_date(value: str) -> dt.date:
    return dt.datetime.strptime(value.replace("/", "").replace("-", ""), "%Y%m%d").date()


def _zero_as_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Halted days come as open/high/low "0": krxflow stores them as NULL (close carried, volume 0)."""
    for col in ("open", "high", "low"):
        frame[col] = frame[col].mask(frame[col] == 0)
    return frame


def _base_prices(raw: pd.DataFrame) -> pd.Series:
    """The day's base price (기준가): ``TDD_CLSPRC - CMPPREVDD_PRC`` (the signed change against it)."""
    if "CMPPREVDD_PRC" not in raw.columns:
        log.warning("KRX's answer has no CMPPREVDD_PRC: base prices unknown, no adjustment factors for these rows")
        return pd.Series(pd.NA, index=raw.index, dtype="Int64")
    return whole(raw["TDD_CLSPRC"]) - whole(raw["CMPPREVDD_PRC"])


def market_day_frame(raw: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """MDCSTAT01501 rows (``OutBlock_1``) as :data:`DAILY_COLUMNS` plus name/market/isin/sector."""
    require_fields(raw, {"ISU_SRT_CD", "ISU_CD", "ISU_ABBRV", "MKT_NM", "TDD_CLSPRC", "TDD_OPNPRC", "TDD_HGPRC",
                         "TDD_LWPRC", "ACC_TRDVOL", "ACC_TRDVAL", "FLUC_RT", "MKTCAP", "LIST_SHRS"},
                   "all-market (MDCSTAT01501)")
    market = raw["MKT_NM"].astype(str).str.upper().str.split().str[0]
    raw = raw[market.isin(MARKETS)]
    frame = pd.DataFrame({
        "ticker": raw["ISU_SRT_CD"].astype(str).str.strip(),
        "trade_date": day,
        "open": whole(raw["TDD_OPNPRC"]), "high": whole(raw["TDD_HGPRC"]), "low": whole(raw["TDD_LWPRC"]),
        "close": whole(raw["TDD_CLSPRC"]), "volume": whole(raw["ACC_TRDVOL"]),
        "trading_value": whole(raw["ACC_TRDVAL"]), "change_rate": decimal(raw["FLUC_RT"]),
        "base_price": _base_prices(raw),
        "market_cap": whole(raw["MKTCAP"]), "listed_shares": whole(raw["LIST_SHRS"]),
        "name": raw["ISU_ABBRV"].astype(str).str.strip(), "market": market[market.isin(MARKETS)],
        "isin": raw["ISU_CD"].astype(str).str.strip(),
        "sector": raw.get("SECT_TP_NM", pd.Series(None, index=raw.index)).replace("", None),
    })
    return _zero_as_missing(frame).reset_index(drop=True)


def ticker_history_frame(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """MDCSTAT01701 rows (``output``, newest first) as :data:`DAILY_COLUMNS`, oldest first."""
    if raw.empty:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    frame = pd.DataFrame({
        "ticker": ticker, "trade_date": [_krx_date(v) for v in raw["TRD_DD"]],
        "open": whole(raw["TDD_OPNPRC"]), "high": whole(raw["TDD_HGPRC"]), "low": whole(raw["TDD_LWPRC"]),
        "close": whole(raw["TDD_CLSPRC"]), "volume": whole(raw["ACC_TRDVOL"]),
        "trading_value": whole(raw["ACC_TRDVAL"]), "change_rate": decimal(raw["FLUC_RT"]),
        "base_price": _base_prices(raw),
        "market_cap": whole(raw["MKTCAP"]), "listed_shares": whole(raw["LIST_SHRS"]),
    })
    frame = frame[frame["close"].notna()]
    return _zero_as_missing(frame).sort_values("trade_date").reset_index(drop=True)


def naver_frame(xml_text: str, ticker: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    """Naver's ``sise.nhn`` XML (``<item data="YYYYMMDD|o|h|l|c|v"/>``) as :data:`ADJUSTED_COLUMNS`.

    The same parsing pykrx's Naver path does, kept here so that the ticker and dates stay exact.
    """
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as exc:
        raise KrxBadAnswerError(f"Naver's answer for {ticker} is not XML: {exc}") from exc
    rows = [item.get("data", "").split("|") for item in root.iter("item")]
    rows = [r for r in rows if len(r) == 6]
    if not rows:
        return pd.DataFrame(columns=ADJUSTED_COLUMNS)
    frame = pd.DataFrame(rows, columns=["d", "open", "high", "low", "close", "volume"])
    frame["trade_date"] = [_krx_date(v) for v in frame.pop("d")]
    for col in ("open", "high", "low", "close", "volume"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    frame = frame.sort_values("trade_date").reset_index(drop=True)
    previous = frame["close"].shift(1).astype("float64")
    frame["change_rate"] = ((frame["close"].astype("float64") - previous) / previous * 100).round(2)
    frame["ticker"] = ticker
    frame = frame[(frame["trade_date"] >= first) & (frame["trade_date"] <= last)]
    return _zero_as_missing(frame)[ADJUSTED_COLUMNS].reset_index(drop=True)
