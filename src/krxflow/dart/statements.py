"""OpenDART financial statements (issue 28, point 3): fetched for the periodic reports a day shows.

:func:`load_statements` reads the periodic reports (사업/반기/분기보고서, ``[기재정정]`` corrections
included) among one receipt date's ``disclosures``, groups their companies by business year and
report (``reprt_code`` 11011 annual, 11012 half-year, 11013 Q1, 11014 Q3) and asks
``fnlttMultiAcnt`` for up to 100 companies per request — ``ceil(n / 100)`` requests per group, none
on a day without periodic reports; never every company. Every answer is read before anything is
written; then one ``BatchedPostgresHook.upsert`` into ``financial_statements`` (a rerun changes
nothing) and a ``dart_statements_day`` row in ``load_stats``.

OpenDART answers a report's latest version: its ``rcept_no`` may be a later correction's, which is
stored under its own receipt date (``financial_key_items_as_of`` never shows it earlier). Report
names of a non-December fiscal year's quarters (e.g. ``분기보고서 (2024.12)``) map to no
``reprt_code`` and are counted as ``unmapped``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field

import pandas as pd

from krxflow.dart.client import MULTI_LIMIT, DartClient
from krxflow.dart.errors import DartBadAnswerError
from krxflow.journal import Operation
from krxflow.krx.tables import read_frame, shared_hook
from krxflow.market_time import kst_date

log = logging.getLogger(__name__)

PERIODIC = re.compile(r"^(?:\[[^\]]*\])*\s*(사업|반기|분기)보고서\s*\((\d{4})\.(\d{2})\)\s*$")
STATEMENT_COLUMNS = ["rcept_no", "rcept_dt", "corp_code", "ticker", "bsns_year", "reprt_code", "fs_div", "sj_div",
                     "account_nm", "ord", "thstrm_amount", "thstrm_add_amount", "frmtrm_amount", "frmtrm_add_amount",
                     "currency"]
AMOUNTS = ["thstrm_amount", "thstrm_add_amount", "frmtrm_amount", "frmtrm_add_amount"]


@dataclass
class StatementResult:
    day: str
    periodic_filings: int = 0
    companies: int = 0
    groups: dict = field(default_factory=dict)  # "2023/11011" -> companies asked
    unmapped: int = 0
    missing: int = 0  # companies asked whose answer held no statement
    rows: int = 0
    requests: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    seconds: float = 0.0


def report_of(report_nm: str) -> tuple[int, str] | None:
    """(bsns_year, reprt_code) of a periodic report's name, None when it is none (or unmappable)."""
    match = PERIODIC.match(report_nm or "")
    if match is None:
        return None
    kind, year, month = match.group(1), int(match.group(2)), match.group(3)
    if kind == "사업":
        return year, "11011"
    if kind == "반기":
        return year, "11012"
    return {"03": (year, "11013"), "09": (year, "11014")}.get(month)


def _amount(values: pd.Series) -> pd.Series:
    text = values.fillna("").astype(str).str.replace(",", "", regex=False).str.strip()
    text = text.where(~text.isin(["", "-"]))
    bad = text.notna() & ~text.fillna("0").str.fullmatch(r"-?\d+(\.\d+)?")
    if bad.any():
        raise DartBadAnswerError(f"fnlttMultiAcnt sent amounts that are no numbers: {list(values[bad].head(3))}; "
                                 "nothing written")
    return pd.to_numeric(text)


def statement_frame(rows: list[dict]) -> pd.DataFrame:
    """fnlttMultiAcnt rows as ``financial_statements`` rows (amounts without commas, rcept_dt from rcept_no)."""
    frame = pd.DataFrame(rows)
    for column in (*AMOUNTS, "ord", "stock_code", "currency"):
        if column not in frame:
            frame[column] = None
    frame["ticker"] = [(code or "").strip() or None for code in frame["stock_code"]]
    for column in AMOUNTS:
        frame[column] = _amount(frame[column])
    frame["rcept_dt"] = pd.to_datetime(frame["rcept_no"].str[:8], format="%Y%m%d", errors="coerce")
    frame["bsns_year"] = pd.to_numeric(frame["bsns_year"], errors="coerce")
    frame["ord"] = pd.to_numeric(frame["ord"], errors="coerce").astype("Int64")
    frame["currency"] = frame["currency"].fillna("KRW")
    return frame[STATEMENT_COLUMNS]


def load_statements(client: DartClient, day, *, hook=None) -> dict:
    """The statements of the companies whose periodic reports were received on ``day`` → ``financial_statements``."""
    hook = hook or shared_hook()
    day = kst_date(day)
    started, sent = time.perf_counter(), client.requests_sent
    result = StatementResult(day=day.isoformat())
    filings = read_frame(hook, "queries/dart/periodic_filings.sql", {"day": day})
    result.periodic_filings = len(filings)
    groups: dict[tuple[int, str], set[str]] = {}
    for report_nm, corp_code in zip(filings["report_nm"], filings["corp_code"]):
        report = report_of(report_nm)
        if report is None:
            result.unmapped += 1
            continue
        groups.setdefault(report, set()).add(corp_code)
    rows: list[dict] = []
    for (year, reprt_code), codes in sorted(groups.items()):
        codes = sorted(codes)
        result.groups[f"{year}/{reprt_code}"] = len(codes)
        result.companies += len(codes)
        for start in range(0, len(codes), MULTI_LIMIT):
            chunk = codes[start:start + MULTI_LIMIT]
            got = client.multi_accounts(chunk, year, reprt_code)
            wrong = {(r.get("corp_code"), str(r.get("bsns_year")), r.get("reprt_code")) for r in got} - \
                {(c, str(year), reprt_code) for c in chunk}
            if wrong:
                raise DartBadAnswerError(f"fnlttMultiAcnt answered {sorted(wrong)[:3]} to a {year}/{reprt_code} "
                                         f"request for {len(chunk)} companies; nothing written")
            result.missing += len(set(chunk) - {r["corp_code"] for r in got})
            rows.extend(got)
    result.requests = client.requests_sent - sent
    if rows:
        frame = statement_frame(rows)
        bad = frame[~frame["rcept_no"].astype(str).str.fullmatch(r"\d{14}") | frame["rcept_dt"].isna()
                    | ~frame["fs_div"].isin(["CFS", "OFS"]) | frame["account_nm"].fillna("").eq("")]
        key = ["rcept_no", "fs_div", "sj_div", "account_nm"]
        if len(bad) or frame.duplicated(key).any():
            raise DartBadAnswerError(f"fnlttMultiAcnt's answers of {day} hold {len(bad)} malformed or repeated rows; "
                                     "nothing written")
        result.rows = len(frame)
        written = hook.upsert("financial_statements", frame)
        result.inserted, result.updated, result.unchanged = written.inserted, written.updated, written.unchanged
    result.seconds = round(time.perf_counter() - started, 3)
    hook.journal().record("financial_statements", Operation.DART_STATEMENTS_DAY, rows_in=result.rows,
                          inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
                          seconds=result.seconds, details={"day": result.day, "requests": result.requests,
                                                           "groups": result.groups, "missing": result.missing,
                                                           "unmapped": result.unmapped})
    log.info("OpenDART statements of %s's periodic reports: %s", day, result)
    return asdict(result)
