"""OpenDART corporate-action events (issue 28, point 4) and their cross-check against adjustment_factors.

:func:`load_corporate_actions` reads the material-event reports among one receipt date's
``disclosures`` that have a DS005 service — 유상증자결정 (``piicDecsn``), 무상증자결정
(``fricDecsn``), 감자결정 (``crDecsn``), corrections included — and asks that service once per
company and service for that date (DS005 needs a ``corp_code``): as many requests as such
companies, none on a day without them; never every company. Rows are matched to the day's receipt
numbers, parsed (OpenDART's display strings: commas, ``"2024년 04월 10일"``, ``"-"``) and written
in one ``BatchedPostgresHook.upsert`` into ``corporate_actions``.

Splits and share consolidations have no DS005 service (see the reference); mergers
(``cmpMgDecsn``) are not fetched yet. :func:`cross_check_factors` therefore explains a split /
reverse split by a filing whose name says so, and a rights/bonus/reduction factor by a filed event
whose record date is 0-7 days after the ex-date; every other factor is written to ``load_stats``
(``dart_events_cross_check``, status ``warning``) with both sides.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time

import pandas as pd

from krxflow.dart.client import DartClient
from krxflow.dart.errors import DartBadAnswerError
from krxflow.journal import Operation, Status
from krxflow.krx.tables import read_frame, shared_hook
from krxflow.market_time import kst_date

log = logging.getLogger(__name__)

#: event named in report_nm -> (DS005 service, corporate_actions.kind)
EVENTS = {"유상증자결정": ("piicDecsn", "rights_issue"), "무상증자결정": ("fricDecsn", "bonus_issue"),
          "감자결정": ("crDecsn", "capital_reduction")}
ACTION_COLUMNS = ["rcept_no", "rcept_dt", "corp_code", "ticker", "kind", "report_nm", "shares_before", "new_shares",
                  "shares_after", "ratio", "record_date", "listing_date", "board_date", "method"]


def _number(text) -> float | None:
    text = str(text if text is not None else "").replace(",", "").strip()
    if text in ("", "-"):
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise DartBadAnswerError(f"a material-event report sent {text!r} for a number; nothing written") from exc


def _date(text) -> dt.date | None:
    text = str(text or "").strip()
    if text in ("", "-"):
        return None
    match = re.fullmatch(r"(\d{4})\s*[년.-]\s*(\d{1,2})\s*[월.-]\s*(\d{1,2})\s*일?", text)
    if match is None:
        raise DartBadAnswerError(f"a material-event report sent {text!r} for a date; nothing written")
    return dt.date(*map(int, match.groups()))


def _int(text) -> int | None:
    value = _number(text)
    return None if value is None else int(value)


def action_row(kind: str, row: dict, filing: dict) -> dict:
    """One DS005 answer row as a ``corporate_actions`` row."""
    out = {"rcept_no": row["rcept_no"], "rcept_dt": dt.datetime.strptime(row["rcept_no"][:8], "%Y%m%d").date(),
           "corp_code": row["corp_code"], "ticker": filing["ticker"], "kind": kind, "report_nm": filing["report_nm"],
           "board_date": _date(row.get("bddd")), "method": None, "listing_date": None, "record_date": None}
    if kind == "capital_reduction":
        before, after = _int(row.get("bfcr_tisstk_ostk")), _int(row.get("atcr_tisstk_ostk"))
        rate = _number(row.get("cr_rt_ostk"))
        out.update(shares_before=before, shares_after=after, new_shares=None if after is None or before is None
                   else after - before, ratio=None if rate is None else rate / 100,
                   record_date=_date(row.get("cr_std")), listing_date=_date(row.get("crsc_nstklstprd")),
                   method=row.get("cr_mth"))
    else:
        before, new = _int(row.get("bfic_tisstk_ostk")), _int(row.get("nstk_ostk_cnt"))
        out.update(shares_before=before, new_shares=new,
                   shares_after=None if before is None or new is None else before + new)
        if kind == "bonus_issue":
            out.update(ratio=_number(row.get("nstk_ascnt_ps_ostk")), record_date=_date(row.get("nstk_asstd")),
                       listing_date=_date(row.get("nstk_lstprd")))
        else:
            out.update(ratio=None if not before or new is None else new / before, method=row.get("ic_mthn"))
    return out


def load_corporate_actions(client: DartClient, day, *, hook=None) -> dict:
    """The material events (rights/bonus issues, capital reductions) filed on ``day`` → ``corporate_actions``."""
    hook = hook or shared_hook()
    day = kst_date(day)
    started, sent = time.perf_counter(), client.requests_sent
    filings = read_frame(hook, "queries/dart/event_filings.sql", {"day": day})
    by_rcept = {f["rcept_no"]: f for f in filings.to_dict("records")}
    asks: dict[tuple[str, str], str] = {}
    for f in by_rcept.values():
        event = next(name for name in EVENTS if f"({name})" in f["report_nm"])
        asks[(f["corp_code"], EVENTS[event][0])] = EVENTS[event][1]
    rows = []
    for (corp_code, api), kind in sorted(asks.items()):
        for row in client.events(api, corp_code, day, day):
            filing = by_rcept.get(row.get("rcept_no"))
            if filing is None or filing["corp_code"] != corp_code:
                continue  # another filing of the window (e.g. another event kind of the same report family)
            rows.append(action_row(kind, row, filing))
    frame = pd.DataFrame(rows, columns=ACTION_COLUMNS)
    result = {"day": day.isoformat(), "event_filings": len(by_rcept), "requests": client.requests_sent - sent,
              "events": len(frame), "missing": len(set(by_rcept) - set(frame["rcept_no"])),
              "inserted": 0, "updated": 0, "unchanged": 0}
    if len(frame):
        for column in ("shares_before", "new_shares", "shares_after"):
            frame[column] = frame[column].astype("Int64")
        written = hook.upsert("corporate_actions", frame)
        result.update(inserted=written.inserted, updated=written.updated, unchanged=written.unchanged)
    result["seconds"] = round(time.perf_counter() - started, 3)
    hook.journal().record("corporate_actions", Operation.DART_EVENTS_DAY, rows_in=result["events"],
                          inserted=result["inserted"], updated=result["updated"], unchanged=result["unchanged"],
                          seconds=result["seconds"], details={k: result[k] for k in ("day", "requests",
                                                                                     "event_filings", "missing")})
    log.info("OpenDART material events of %s: %s", day, result)
    return result


def cross_check_factors(first, last, *, hook=None) -> dict:
    """Every ``adjustment_factors`` row of ``first``..``last`` explained by a filed event, or flagged:
    one ``dart_events_cross_check`` row in ``load_stats`` (``warning`` with both sides when any is not)."""
    hook = hook or shared_hook()
    first, last = kst_date(first), kst_date(last)
    found = read_frame(hook, "queries/dart/unexplained_factors.sql", {"first": first, "last": last})
    unexplained = [{"ticker": r["ticker"], "ex_date": r["ex_date"].isoformat(), "factor": str(r["factor"]),
                    "kind": r["kind"], "filed_nearby": r["filed_nearby"]} for r in found.to_dict("records")]
    problems = [f"{u['ticker']} ex-date {u['ex_date']} factor {u['factor']} ({u['kind']}): no filed event; "
                f"filed nearby: {json.dumps(u['filed_nearby'], ensure_ascii=False)}" for u in unexplained]
    hook.journal().record("adjustment_factors", Operation.DART_EVENTS_CROSS_CHECK, rows_in=len(unexplained),
                          status=Status.WARNING if problems else Status.OK,
                          error="; ".join(problems)[:4000] or None,
                          details={"first": first.isoformat(), "last": last.isoformat(),
                                   "unexplained": unexplained[:50]})
    return {"first": first.isoformat(), "last": last.isoformat(), "unexplained": len(unexplained),
            "factors": unexplained}
