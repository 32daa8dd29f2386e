"""OpenDART into PostgreSQL: the corp-code list and one receipt date's disclosures.

Both read everything first and write once, through ``BatchedPostgresHook.upsert`` (one
transaction per table): a failure on any request — a key error, the budget, a 500 on page 3 —
leaves nothing of the load written. Reruns change nothing (the same rows are ``unchanged``).

* :func:`load_corp_codes` — corpCode.xml (1 request) → ``dart_corp_codes``; the figures say how
  many listed codes match a ticker of ``stocks``.
* :func:`load_disclosures` — every filing of KOSPI (``corp_cls=Y``) and KOSDAQ (``K``) companies
  received on one KST date, all pages of 100 → ``disclosures``. A day OpenDART answers 013 (no
  filing: weekends, holidays) is an empty, successful day. A ``dart_disclosures_day`` row in
  ``load_stats`` records the day, its requests and rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import pandas as pd

from krxflow.dart.client import CORP_COLUMNS, DartClient
from krxflow.dart.errors import DartBadAnswerError
from krxflow.journal import Operation
from krxflow.krx.tables import read_frame, shared_hook
from krxflow.market_time import kst_date

log = logging.getLogger(__name__)

#: The classes of listed companies krxflow keeps (KOSPI, KOSDAQ).
LISTED_CLASSES = ("Y", "K")
VIEWER_URL = "https://dart.fss.or.kr/dsaf001/main.do?rcpNo="
DISCLOSURE_COLUMNS = ["rcept_no", "corp_code", "corp_name", "corp_cls", "ticker", "report_nm", "flr_nm", "rcept_dt",
                      "rm", "url"]


@dataclass
class CorpCodeResult:
    companies: int = 0
    listed: int = 0
    stocks_linked: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    requests: int = 0
    seconds: float = 0.0


@dataclass
class DisclosureResult:
    day: str
    filings: int = 0
    by_class: dict | None = None
    requests: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    seconds: float = 0.0


def load_corp_codes(client: DartClient, *, hook=None) -> dict:
    """corpCode.xml → ``dart_corp_codes`` (every company); returns :class:`CorpCodeResult` as a dict."""
    hook = hook or shared_hook()
    started, sent = time.perf_counter(), client.requests_sent
    frame = client.corp_codes()
    result = CorpCodeResult(requests=client.requests_sent - sent, companies=len(frame))
    if frame.empty:
        raise DartBadAnswerError("corpCode.xml listed no company; nothing written")
    bad = frame[~frame["corp_code"].str.fullmatch(r"\d{8}") | frame["corp_name"].eq("")
                | (frame["stock_code"].notna() & ~frame["stock_code"].fillna("").str.fullmatch(r"[0-9A-Z]{6}"))]
    if len(bad):
        raise DartBadAnswerError(f"corpCode.xml has {len(bad)} malformed rows, e.g. {bad.head(3).to_dict('records')}; "
                                 "nothing written")
    if frame["corp_code"].duplicated().any():
        raise DartBadAnswerError("corpCode.xml lists a corp_code twice; nothing written")
    written = hook.upsert("dart_corp_codes", frame[CORP_COLUMNS])
    result.inserted, result.updated, result.unchanged = written.inserted, written.updated, written.unchanged
    result.listed = int(frame["stock_code"].notna().sum())
    result.stocks_linked = int(read_frame(hook, "queries/dart/corp_codes_linked.sql")["n"].iloc[0])
    result.seconds = round(time.perf_counter() - started, 3)
    log.info("OpenDART corp codes: %s", result)
    return asdict(result)


def disclosure_frame(rows: list[dict]) -> pd.DataFrame:
    """list.json rows as ``disclosures`` rows (ticker = stock_code or None, the viewer URL)."""
    frame = pd.DataFrame(rows, columns=["corp_code", "corp_name", "stock_code", "corp_cls", "report_nm", "rcept_no",
                                        "flr_nm", "rcept_dt", "rm"])
    frame["ticker"] = [(code or "").strip() or None for code in frame["stock_code"]]
    frame["rcept_dt"] = pd.to_datetime(frame["rcept_dt"], format="%Y%m%d")
    frame["rm"] = frame["rm"].fillna("").str.strip()
    frame["url"] = VIEWER_URL + frame["rcept_no"]
    return frame[DISCLOSURE_COLUMNS]


def load_disclosures(client: DartClient, day, *, hook=None) -> dict:
    """Every filing of a listed company received on ``day`` (KST) → ``disclosures``."""
    hook = hook or shared_hook()
    day = kst_date(day)
    started, sent = time.perf_counter(), client.requests_sent
    result = DisclosureResult(day=day.isoformat())
    rows, result.by_class = [], {}
    for corp_cls in LISTED_CLASSES:  # every page of every class before anything is written
        got = client.filings(day, corp_cls)
        wrong = {(r["corp_cls"], r["rcept_dt"]) for r in got} - {(corp_cls, f"{day:%Y%m%d}")}
        if wrong:
            raise DartBadAnswerError(f"OpenDART answered filings of {sorted(wrong)} to a {corp_cls} search of {day}; "
                                     "nothing written")
        result.by_class[corp_cls] = len(got)
        rows.extend(got)
    result.requests = client.requests_sent - sent
    frame = disclosure_frame(rows)
    result.filings = len(frame)
    bad = frame[~frame["rcept_no"].str.fullmatch(r"\d{14}") | ~frame["corp_code"].str.fullmatch(r"\d{8}")]
    if len(bad) or frame["rcept_no"].duplicated().any():
        raise DartBadAnswerError(f"OpenDART's filings of {day} hold malformed or repeated receipt numbers; "
                                 "nothing written")
    if len(frame):
        written = hook.upsert("disclosures", frame)
        result.inserted, result.updated, result.unchanged = written.inserted, written.updated, written.unchanged
    result.seconds = round(time.perf_counter() - started, 3)
    hook.journal().record("disclosures", Operation.DART_DISCLOSURES_DAY, rows_in=result.filings,
                        inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
                        seconds=result.seconds, details={"day": result.day, "requests": result.requests,
                                                         "by_class": result.by_class})
    log.info("OpenDART disclosures of %s: %s", day, result)
    return asdict(result)
