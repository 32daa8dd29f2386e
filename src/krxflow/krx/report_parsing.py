"""KRX's report answers (pykrx core-class frames) as krxflow's report rows.

Pure functions, one per report: they take what the pykrx core class returned (every field KRX
sent, as text) and return the columns of the report's table (:mod:`krxflow.krx.interface`).
KRX's ``"-"`` and empty strings are NULL (pykrx's wrappers turn them into 0, which would make a
loss maker's PER 0 and a missing index level 0). A field a report must have and lacks is a site
change: :class:`~krxflow.krx.errors.KrxBadAnswerError`.

The fields kept, per bld (checked against pykrx 1.2.9's core classes and their docstrings):

=============  ==============================================================================
MDCSTAT00101   IDX_NM, OPNPRC_IDX, HGPRC_IDX, LWPRC_IDX, CLSPRC_IDX, CMPPREVDD_IDX, FLUC_RT,
               ACC_TRDVOL, ACC_TRDVAL, MKTCAP (pykrx drops the change and its rate)
finder_equidx  full_code + short_code = the index code, codeName, marketName (the group)
MDCSTAT02401   ISU_SRT_CD, ASK_TRDVOL, BID_TRDVOL, NETBID_TRDVOL, ASK_TRDVAL, BID_TRDVAL,
               NETBID_TRDVAL
MDCSTAT03501   ISU_SRT_CD, EPS, PER, BPS, PBR, DPS, DVD_YLD
srt 30101      ISU_CD (the short code), CVSRTSELL_TRDVOL, ACC_TRDVOL, CVSRTSELL_TRDVAL, ACC_TRDVAL
               (KRX's weights TRDVOL_WT/TRDVAL_WT are these ratios rounded; not stored)
srt 30501      ISU_CD (the short code), BAL_QTY, BAL_AMT, LIST_SHRS, MKTCAP, BAL_RTO
MDCSTAT03701   ISU_SRT_CD, LIST_SHRS, FORN_HD_QTY, FORN_SHR_RT, FORN_ORD_LMT_QTY, FORN_LMT_EXHST_RT
=============  ==============================================================================
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from krxflow.krx.interface import (FOREIGN_OWNERSHIP_COLUMNS, FUNDAMENTAL_COLUMNS, INDEX_PRICE_COLUMNS,
                                  INVESTOR_COLUMNS, SHORT_BALANCE_COLUMNS, SHORT_SELLING_COLUMNS)
from krxflow.krx.parsing import decimal, require_fields, whole

log = logging.getLogger(__name__)

#: finder_equidx ``marketName`` of each index group krxflow keeps.
FINDER_GROUPS = {"KRX": "KRX", "KOSPI": "KOSPI", "KOSDAQ": "KOSDAQ"}





def _tickers(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip()


def index_master_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """finder_equidx rows (``block1``) as ``index_code, name, index_group`` of the kept groups."""
    require_fields(raw, {"full_code", "short_code", "codeName", "marketName"}, "finder_equidx")
    raw = raw[raw["marketName"].isin(FINDER_GROUPS.values())]
    return pd.DataFrame({
        "index_code": raw["full_code"].astype(str).str.strip() + raw["short_code"].astype(str).str.strip(),
        "name": raw["codeName"].astype(str).str.strip(),
        "index_group": raw["marketName"].map({v: k for k, v in FINDER_GROUPS.items()}),
    }).drop_duplicates(["index_group", "name"], keep="first").reset_index(drop=True)


def index_prices_frame(raw: pd.DataFrame, group: str, master: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """MDCSTAT00101 rows (``output``) of one group, joined by name to the master (KRX sends no code).

    Rows whose name the master does not know (e.g. "코스피 (외국주포함)") are left out and logged.
    """
    columns = INDEX_PRICE_COLUMNS + ["name", "index_group"]
    if raw.empty:
        return pd.DataFrame(columns=columns)
    require_fields(raw, {"IDX_NM", "OPNPRC_IDX", "HGPRC_IDX", "LWPRC_IDX", "CLSPRC_IDX", "CMPPREVDD_IDX", "FLUC_RT",
                   "ACC_TRDVOL", "ACC_TRDVAL", "MKTCAP"}, "MDCSTAT00101")
    names = raw["IDX_NM"].astype(str).str.strip()
    codes = master[master["index_group"] == group].set_index("name")["index_code"]
    frame = pd.DataFrame({
        "index_code": names.map(codes), "trade_date": day,
        "open": decimal(raw["OPNPRC_IDX"]), "high": decimal(raw["HGPRC_IDX"]), "low": decimal(raw["LWPRC_IDX"]),
        "close": decimal(raw["CLSPRC_IDX"]), "change": decimal(raw["CMPPREVDD_IDX"]),
        "change_rate": decimal(raw["FLUC_RT"]), "volume": whole(raw["ACC_TRDVOL"]),
        "trading_value": whole(raw["ACC_TRDVAL"]), "market_cap": whole(raw["MKTCAP"]),
        "name": names, "index_group": group,
    })
    unknown = frame["index_code"].isna()
    if unknown.any():
        log.info("%s indices of %s have no code in KRX's index finder (left out): %s", int(unknown.sum()), group,
                 names[unknown].tolist()[:10])
    return frame[~unknown][columns].reset_index(drop=True)


def investor_frame(raw: pd.DataFrame, investor: str, day: dt.date) -> pd.DataFrame:
    """MDCSTAT02401 rows (``output``) of one investor type."""
    if raw.empty:
        return pd.DataFrame(columns=INVESTOR_COLUMNS)
    require_fields(raw, {"ISU_SRT_CD", "ASK_TRDVOL", "BID_TRDVOL", "NETBID_TRDVOL", "ASK_TRDVAL", "BID_TRDVAL",
                   "NETBID_TRDVAL"}, "MDCSTAT02401")
    return pd.DataFrame({
        "ticker": _tickers(raw["ISU_SRT_CD"]), "trade_date": day, "investor": investor,
        "sell_volume": whole(raw["ASK_TRDVOL"]), "buy_volume": whole(raw["BID_TRDVOL"]),
        "net_volume": whole(raw["NETBID_TRDVOL"]), "sell_value": whole(raw["ASK_TRDVAL"]),
        "buy_value": whole(raw["BID_TRDVAL"]), "net_value": whole(raw["NETBID_TRDVAL"]),
    })[INVESTOR_COLUMNS]


def fundamentals_frame(raw: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """MDCSTAT03501 rows (``output``)."""
    if raw.empty:
        return pd.DataFrame(columns=FUNDAMENTAL_COLUMNS)
    require_fields(raw, {"ISU_SRT_CD", "EPS", "PER", "BPS", "PBR", "DPS", "DVD_YLD"}, "MDCSTAT03501")
    return pd.DataFrame({
        "ticker": _tickers(raw["ISU_SRT_CD"]), "trade_date": day,
        "eps": whole(raw["EPS"]), "per": decimal(raw["PER"]), "bps": whole(raw["BPS"]), "pbr": decimal(raw["PBR"]),
        "dps": whole(raw["DPS"]), "dividend_yield": decimal(raw["DVD_YLD"]),
    })[FUNDAMENTAL_COLUMNS]


def short_selling_frame(raw: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """srt MDCSTAT30101 rows (``OutBlock_1``) of one market."""
    if raw.empty:
        return pd.DataFrame(columns=SHORT_SELLING_COLUMNS)
    require_fields(raw, {"ISU_CD", "CVSRTSELL_TRDVOL", "ACC_TRDVOL", "CVSRTSELL_TRDVAL", "ACC_TRDVAL"}, "MDCSTAT30101")
    return pd.DataFrame({
        "ticker": _tickers(raw["ISU_CD"]), "trade_date": day,
        "short_volume": whole(raw["CVSRTSELL_TRDVOL"]), "volume": whole(raw["ACC_TRDVOL"]),
        "short_value": whole(raw["CVSRTSELL_TRDVAL"]), "trading_value": whole(raw["ACC_TRDVAL"]),
    })[SHORT_SELLING_COLUMNS]


def short_balance_frame(raw: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """srt MDCSTAT30501 rows (``OutBlock_1``) of one market."""
    if raw.empty:
        return pd.DataFrame(columns=SHORT_BALANCE_COLUMNS)
    require_fields(raw, {"ISU_CD", "BAL_QTY", "BAL_AMT", "LIST_SHRS", "MKTCAP", "BAL_RTO"}, "MDCSTAT30501")
    return pd.DataFrame({
        "ticker": _tickers(raw["ISU_CD"]), "trade_date": day,
        "balance_quantity": whole(raw["BAL_QTY"]), "balance_value": whole(raw["BAL_AMT"]),
        "listed_shares": whole(raw["LIST_SHRS"]), "market_cap": whole(raw["MKTCAP"]),
        "balance_ratio": decimal(raw["BAL_RTO"]),
    })[SHORT_BALANCE_COLUMNS]


def foreign_ownership_frame(raw: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """MDCSTAT03701 rows (``output``)."""
    if raw.empty:
        return pd.DataFrame(columns=FOREIGN_OWNERSHIP_COLUMNS)
    require_fields(raw, {"ISU_SRT_CD", "LIST_SHRS", "FORN_HD_QTY", "FORN_SHR_RT", "FORN_ORD_LMT_QTY", "FORN_LMT_EXHST_RT"},
             "MDCSTAT03701")
    return pd.DataFrame({
        "ticker": _tickers(raw["ISU_SRT_CD"]), "trade_date": day,
        "listed_shares": whole(raw["LIST_SHRS"]), "foreign_held": whole(raw["FORN_HD_QTY"]),
        "foreign_share_rate": decimal(raw["FORN_SHR_RT"]), "foreign_limit": whole(raw["FORN_ORD_LMT_QTY"]),
        "limit_exhaustion_rate": decimal(raw["FORN_LMT_EXHST_RT"]),
    })[FOREIGN_OWNERSHIP_COLUMNS]
