"""KRX's ETF and ETN answers as krxflow's rows: pure functions, like :mod:`krxflow.krx.report_parsing`.

They take what the request returned (every field KRX sent, as text) and return the columns of
:mod:`krxflow.krx.interface`. KRX's ``"-"`` and empty strings are NULL; a halted product's open,
high and low ``"0"`` are NULL (as for shares); the same-day net assets ``"0"`` (KRX computes them
overnight) are NULL. A field an answer must have and lacks, or rows of the other kind, is a site
change: :class:`~krxflow.krx.errors.KrxBadAnswerError`. Rows without a close are left out; an
answer with none at all is the caller's error (a day KRX has not published).

=============  ==============================================================================
MDCSTAT04301   ETF, one day (``output``): ISU_SRT_CD, ISU_CD (ISIN), SECUGRP_ID (``EF``), ISU_ABBRV,
               TDD_CLSPRC, CMPPREVDD_PRC, FLUC_RT, NAV, TDD_OPNPRC, TDD_HGPRC, TDD_LWPRC, ACC_TRDVOL,
               ACC_TRDVAL, MKTCAP, INVSTASST_NETASST_TOTAMT, LIST_SHRS, IDX_IND_NM,
               OBJ_STKPRC_IDX, CMPPREVDD_IDX, FLUC_RT1 (the index's change rate)
MDCSTAT06401   ETN, one day (``output``): as the ETF's with PER1SECU_INDIC_VAL (IV) for NAV and
               INDIC_VAL_AMT (지표가치총액) for the net assets; SECUGRP_ID ``EN``
MDCSTAT04601   ETF base info (``output``, no date): ISU_CD, ISU_SRT_CD, ISU_ABBRV, LIST_DD,
               ETF_OBJ_IDX_NM, IDX_CALC_INST_NM2 (the exposure: ``2X 레버리지 (2)``, ``일반 (1)``; pykrx's
               sample rows put it there, the replication method 실물 in ETF_REPLICA_METHD_TP_CD),
               COM_ABBRV (운용사)
MDCSTAT06701   ETN base info (``output``, no date): ISU_CD, ISU_SRT_CD, ISU_ABBRV, LIST_DD,
               LSTTRD_DD, TRACE_IDX_NM, IDX_LVRG_INVRS_TP_CD (``일반``), ISUR_NM (발행사)
=============  ==============================================================================

MDCSTAT04301, 04601 and 06701 are pykrx 1.2.9's (``etx/core.py``); MDCSTAT06401 and its fields
are those of KRX's own ETN screen [13201] (its grid binds exactly these names).
"""

from __future__ import annotations

import re

import pandas as pd

from krxflow.krx.errors import KrxBadAnswerError
from krxflow.krx.interface import ETP_DAY_COLUMNS, ETP_INFO_COLUMNS
from krxflow.krx.parsing import decimal, require_fields, whole

#: Per kind: the bld of the one-day answer, its NAV field, its net-assets field, KRX's SECUGRP_ID.
DAY_FIELDS = {
    "ETF": {"bld": "MDCSTAT04301", "nav": "NAV", "net_assets": "INVSTASST_NETASST_TOTAMT", "group": "EF"},
    "ETN": {"bld": "MDCSTAT06401", "nav": "PER1SECU_INDIC_VAL", "net_assets": "INDIC_VAL_AMT", "group": "EN"},
}
#: Per kind: the base-info bld and its index, multiplier and issuer fields.
INFO_FIELDS = {
    "ETF": {"bld": "MDCSTAT04601", "index": "ETF_OBJ_IDX_NM", "multiplier": "IDX_CALC_INST_NM2",
            "issuer": "COM_ABBRV", "last_trading": None},
    "ETN": {"bld": "MDCSTAT06701", "index": "TRACE_IDX_NM", "multiplier": "IDX_LVRG_INVRS_TP_CD",
            "issuer": "ISUR_NM", "last_trading": "LSTTRD_DD"},
}
_COMMON = {"ISU_SRT_CD", "ISU_ABBRV", "TDD_CLSPRC", "CMPPREVDD_PRC", "FLUC_RT", "TDD_OPNPRC", "TDD_HGPRC",
           "TDD_LWPRC", "ACC_TRDVOL", "ACC_TRDVAL", "MKTCAP", "LIST_SHRS", "IDX_IND_NM", "OBJ_STKPRC_IDX",
           "CMPPREVDD_IDX", "FLUC_RT1"}


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text.isin(["", "-"]))


def _dates(values: pd.Series) -> pd.Series:
    text = _text(values).str.replace("/", "", regex=False).str.replace("-", "", regex=False)
    return pd.to_datetime(text, format="%Y%m%d", errors="coerce").dt.date.astype(object).where(text.notna(), None)


def _codes(values: pd.Series, what: str) -> pd.Series:
    codes = values.astype(str).str.strip().str.upper()
    bad = ~codes.str.fullmatch(r"[0-9A-Z]{6}")
    if bad.any():
        raise KrxBadAnswerError(f"KRX's {what} answer has codes that are not 6 letters/digits "
                                f"{codes[bad].tolist()[:5]}: site change?")
    return codes


def etp_day_frame(raw: pd.DataFrame, kind: str, day) -> pd.DataFrame:
    """One day's all-ETF (MDCSTAT04301) or all-ETN (MDCSTAT06401) rows as :data:`ETP_DAY_COLUMNS`,
    the rows with a close only (none on a day KRX has not published)."""
    spec = DAY_FIELDS[kind]
    if raw.empty:
        return pd.DataFrame(columns=ETP_DAY_COLUMNS)
    require_fields(raw, _COMMON | {spec["nav"], spec["net_assets"]}, f"{kind} ({spec['bld']})")
    if "SECUGRP_ID" in raw.columns:
        groups = set(_text(raw["SECUGRP_ID"]).dropna())
        if groups - {spec["group"]}:
            raise KrxBadAnswerError(f"KRX's {kind} answer ({spec['bld']}) lists security groups {sorted(groups)}, "
                                    f"not only {spec['group']}: site change?")
    isin = _text(raw["ISU_CD"]) if "ISU_CD" in raw.columns else pd.Series(pd.NA, index=raw.index, dtype="string")
    isin = isin.where(isin.str.fullmatch(r"KR[0-9A-Z]{10}").fillna(False).astype(bool))
    frame = pd.DataFrame({
        "code": _codes(raw["ISU_SRT_CD"], kind), "trade_date": day,
        "open": whole(raw["TDD_OPNPRC"]), "high": whole(raw["TDD_HGPRC"]), "low": whole(raw["TDD_LWPRC"]),
        "close": whole(raw["TDD_CLSPRC"]), "change": whole(raw["CMPPREVDD_PRC"]), "change_rate": decimal(raw["FLUC_RT"]),
        "nav": decimal(raw[spec["nav"]]), "volume": whole(raw["ACC_TRDVOL"]), "trading_value": whole(raw["ACC_TRDVAL"]),
        "market_cap": whole(raw["MKTCAP"]), "net_assets": whole(raw[spec["net_assets"]]),
        "listed_units": whole(raw["LIST_SHRS"]), "index_close": decimal(raw["OBJ_STKPRC_IDX"]),
        "index_change": decimal(raw["CMPPREVDD_IDX"]), "index_change_rate": decimal(raw["FLUC_RT1"]),
        "kind": kind, "name": _text(raw["ISU_ABBRV"]).astype(object), "isin": isin.astype(object),
        "underlying_index": _text(raw["IDX_IND_NM"]).astype(object),
    })
    for col in ("open", "high", "low"):  # a halted product: KRX's "0"
        frame[col] = frame[col].mask(frame[col] == 0)
    frame["net_assets"] = frame["net_assets"].mask(frame["net_assets"] == 0)  # computed overnight
    frame["nav"] = frame["nav"].mask(frame["nav"] <= 0)
    frame["volume"] = frame["volume"].fillna(0)
    frame = frame[frame["close"].notna()]
    if frame["code"].duplicated().any():
        raise KrxBadAnswerError(f"KRX's {kind} answer lists codes twice {frame['code'][frame['code'].duplicated()].tolist()[:5]}")
    if frame["name"].isna().any():
        raise KrxBadAnswerError(f"KRX's {kind} answer has priced rows without a name: site change?")
    return frame[ETP_DAY_COLUMNS].reset_index(drop=True)


def multiplier_of(text) -> float | None:
    """The exposure KRX's base info states: ``2X 레버리지 (2)`` → 2, ``인버스 (-1)`` → -1, ``일반`` → 1;
    None when the text says no number krxflow can trust."""
    if text is None or pd.isna(text):
        return None
    text = str(text).strip()
    found = re.search(r"\((-?\d+(?:\.\d+)?)\)", text)
    if found:
        return float(found.group(1))
    if text == "일반":
        return 1.0
    found = re.search(r"(-?\d+(?:\.\d+)?)\s*X", text, flags=re.IGNORECASE)
    if found:
        value = float(found.group(1))
        return -abs(value) if "인버스" in text else value
    if "인버스" in text:
        return -1.0
    return None


def etp_info_frame(raw: pd.DataFrame, kind: str) -> pd.DataFrame:
    """KRX's base info of today's ETFs (MDCSTAT04601) or ETNs (MDCSTAT06701) as :data:`ETP_INFO_COLUMNS`."""
    spec = INFO_FIELDS[kind]
    if raw.empty:
        return pd.DataFrame(columns=ETP_INFO_COLUMNS)
    fields = {"ISU_CD", "ISU_SRT_CD", "ISU_ABBRV", "LIST_DD", spec["index"], spec["multiplier"], spec["issuer"]}
    require_fields(raw, fields | ({spec["last_trading"]} if spec["last_trading"] else set()),
                   f"{kind} base info ({spec['bld']})")
    isin = _text(raw["ISU_CD"])
    frame = pd.DataFrame({
        "code": _codes(raw["ISU_SRT_CD"], f"{kind} base info"), "kind": kind,
        "name": _text(raw["ISU_ABBRV"]).astype(object),
        "isin": isin.where(isin.str.fullmatch(r"KR[0-9A-Z]{10}").fillna(False).astype(bool)).astype(object),
        "underlying_index": _text(raw[spec["index"]]).astype(object),
        "issuer": _text(raw[spec["issuer"]]).astype(object),
        "multiplier": [multiplier_of(v) for v in raw[spec["multiplier"]]],
        "listed_on": _dates(raw["LIST_DD"]),
        "last_trading_on": _dates(raw[spec["last_trading"]]) if spec["last_trading"] else None,
    })
    return frame.drop_duplicates("code", keep="first")[ETP_INFO_COLUMNS].reset_index(drop=True)
