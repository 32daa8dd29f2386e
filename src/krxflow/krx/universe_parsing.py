"""KRX's universe answers (industries, index constituents, delisted issues) as krxflow's rows.

Pure functions, like :mod:`krxflow.krx.report_parsing`: they take what pykrx's request code
returned (every field KRX sent, as text) and return the columns of :mod:`krxflow.krx.interface`.
An answer that lacks a field it must have, or whose values do not say what was asked (an
industry report of another market, rows without an industry), is a site change:
:class:`~krxflow.krx.errors.KrxBadAnswerError`. Emptiness is the caller's business (a trading
day's empty industry or constituent answer is an error there; a window without delistings is not).

=============  ==============================================================================
MDCSTAT03901   ``block1``: ISU_SRT_CD, MKT_TP_NM, IDX_IND_NM (the industry, a name: 전기전자 …)
MDCSTAT00601   ``output``: ISU_SRT_CD (KRX sends the day's prices too; not kept here)
MDCSTAT23801   ``output``: ISU_CD (the short code), ISU_NM, MKT_NM, SECUGRP_NM, KIND_STKCERT_TP_NM,
               LIST_DD, DELIST_DD, DELIST_RSN_DSC, ARRANTRD_MKTACT_ENFORCE_DD, ARRANTRD_END_DD,
               IDX_IND_NM, PARVAL, LIST_SHRS, TO_ISU_SRT_CD, TO_ISU_ABBRV (the successor)
=============  ==============================================================================
"""

from __future__ import annotations

import pandas as pd

from krxflow.krx.errors import KrxBadAnswerError
from krxflow.krx.interface import DELISTING_COLUMNS, INDEX_MEMBER_COLUMNS, INDUSTRY_COLUMNS
from krxflow.krx.parsing import require_fields, whole
from krxflow.krx.universe_catalog import SHARE_GROUPS

#: The day's values of an industry answer and of a constituents answer: all "-" when KRX has not
#: published the session (the tickers, names and industries are listed anyway).
INDUSTRY_DAY_FIELDS = ("TDD_CLSPRC", "CMPPREVDD_PRC", "FLUC_RT", "MKTCAP")
MEMBER_DAY_FIELDS = ("TDD_CLSPRC", "STR_CMP_PRC", "FLUC_RT", "MKTCAP")

#: KRX's market names in the delisted-issues report (English or Korean) → krxflow's.
_MARKET_NAMES = {"KOSPI": "KOSPI", "유가증권": "KOSPI", "코스피": "KOSPI", "KOSDAQ": "KOSDAQ", "코스닥": "KOSDAQ",
                 "KONEX": "KONEX", "코넥스": "KONEX"}


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text.isin(["", "-"]))


def _dates(values: pd.Series) -> pd.Series:
    text = _text(values).str.replace("/", "", regex=False).str.replace("-", "", regex=False)
    return pd.to_datetime(text, format="%Y%m%d", errors="coerce").dt.date.astype(object).where(text.notna(), None)


def industries_frame(raw: pd.DataFrame, market: str) -> pd.DataFrame:
    """MDCSTAT03901 rows of one market (``block1``) as :data:`INDUSTRY_COLUMNS`."""
    if raw.empty:
        return pd.DataFrame(columns=INDUSTRY_COLUMNS)
    require_fields(raw, {"ISU_SRT_CD", "MKT_TP_NM", "IDX_IND_NM"}, "industry (MDCSTAT03901)")
    markets = raw["MKT_TP_NM"].astype(str).str.strip().str.upper()
    if not markets.eq(market).all():
        raise KrxBadAnswerError(f"KRX's industry answer for {market} lists other markets "
                                f"{sorted(set(markets) - {market})[:5]}: site change?")
    industry = _text(raw["IDX_IND_NM"])
    if industry.isna().all():
        raise KrxBadAnswerError(f"KRX's industry answer for {market} has no industry on any of its {len(raw)} rows: "
                                "site change?")
    frame = pd.DataFrame({"ticker": raw["ISU_SRT_CD"].astype(str).str.strip(), "market": market,
                          "industry": industry.astype(object)})
    return frame[frame["industry"].notna()][INDUSTRY_COLUMNS].reset_index(drop=True)


def index_members_frame(raw: pd.DataFrame, index_code: str) -> pd.DataFrame:
    """MDCSTAT00601 rows (``output``) as :data:`INDEX_MEMBER_COLUMNS`."""
    if raw.empty:
        return pd.DataFrame(columns=INDEX_MEMBER_COLUMNS)
    require_fields(raw, {"ISU_SRT_CD", "ISU_ABBRV"}, "index constituents (MDCSTAT00601)")
    tickers = raw["ISU_SRT_CD"].astype(str).str.strip()
    return pd.DataFrame({"index_code": index_code, "ticker": tickers}).drop_duplicates().reset_index(drop=True)


def delistings_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """MDCSTAT23801 rows (``output``) of shares (:data:`SHARE_GROUPS`) of KOSPI, KOSDAQ and KONEX
    as :data:`DELISTING_COLUMNS`; rights certificates, funds and other markets are left out."""
    if raw.empty:
        return pd.DataFrame(columns=DELISTING_COLUMNS)
    require_fields(raw, {"ISU_CD", "ISU_NM", "MKT_NM", "SECUGRP_NM", "KIND_STKCERT_TP_NM", "LIST_DD", "DELIST_DD",
                         "DELIST_RSN_DSC", "ARRANTRD_MKTACT_ENFORCE_DD", "ARRANTRD_END_DD", "IDX_IND_NM", "PARVAL",
                         "LIST_SHRS", "TO_ISU_SRT_CD", "TO_ISU_ABBRV"}, "delisted issues (MDCSTAT23801)")
    market = raw["MKT_NM"].astype(str).str.strip().map(lambda v: _MARKET_NAMES.get(v.upper(), _MARKET_NAMES.get(v)))
    shares = raw["SECUGRP_NM"].astype(str).str.strip().isin(SHARE_GROUPS)
    raw, market = raw[shares & market.notna()], market[shares & market.notna()]
    frame = pd.DataFrame({
        "ticker": raw["ISU_CD"].astype(str).str.strip(), "delisted_on": _dates(raw["DELIST_DD"]),
        "name": raw["ISU_NM"].astype(str).str.strip(), "market": market,
        "security_group": _text(raw["SECUGRP_NM"]).astype(object), "share_kind": _text(raw["KIND_STKCERT_TP_NM"]).astype(object),
        "listed_on": _dates(raw["LIST_DD"]), "reason": _text(raw["DELIST_RSN_DSC"]).astype(object),
        "successor_ticker": _text(raw["TO_ISU_SRT_CD"]).astype(object),
        "successor_name": _text(raw["TO_ISU_ABBRV"]).astype(object),
        "arranged_trading_from": _dates(raw["ARRANTRD_MKTACT_ENFORCE_DD"]),
        "arranged_trading_to": _dates(raw["ARRANTRD_END_DD"]), "industry": _text(raw["IDX_IND_NM"]).astype(object),
        "par_value": whole(raw["PARVAL"]), "listed_shares": whole(raw["LIST_SHRS"]),
    })
    if frame["delisted_on"].isna().any():
        raise KrxBadAnswerError(f"KRX's delisted-issues answer has {int(frame['delisted_on'].isna().sum())} rows without "
                                "a readable DELIST_DD: site change?")
    return frame[DELISTING_COLUMNS].reset_index(drop=True)

