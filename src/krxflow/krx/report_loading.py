"""The other daily KRX reports (issue 17) as plain functions: load one day of one, check one.

Which reports exist is :data:`krxflow.krx.report_catalog.REPORTS`.

Loads are all or nothing per report and day: the source returns a day only when every request
of it succeeded (a LOGOUT after the re-login, a block or an empty answer raises before anything
is written), and the day's rows go through ``BatchedPostgresHook.upsert`` in one transaction.
Reruns change nothing (upserts by primary key; unchanged rows are skipped).

A session KRX has not published yet (its answers' rows all ``"-"``) raises
:class:`~krxflow.krx.errors.KrxNotPublishedError` in the source: nothing is written and the task
fails with that message, to be retried. KRX's all-market answers (``mktId=ALL``) list KONEX
tickers too; krxflow keeps KOSPI and KOSDAQ (as the daily prices do, by KRX's market field), so
those reports keep the tickers ``daily_prices`` lists for the day (:func:`kospi_kosdaq_only`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import pandas as pd

from krxflow.market_time import kst_date
from krxflow.journal import Journal, Operation
from krxflow.krx.interface import INDEX_COLUMNS, INVESTOR_TYPES, MARKETS, KrxSource
from krxflow.krx.tables import for_hook, read_frame, shared_hook
from krxflow.krx.report_catalog import REPORTS

log = logging.getLogger(__name__)


def load_report(source: KrxSource, name: str, session, *, hook=None) -> dict:
    """Report ``name`` of the run for session ``session`` → its table (nothing on a holiday)."""
    report = REPORTS[name]
    hook = hook or shared_hook()
    session = kst_date(session)
    day = report.day_for(session)
    started = time.perf_counter()
    requests_before = source.requests_sent()
    frame = getattr(source, report.method)(day)
    result = {"report": name, "session": session.isoformat(), "day": day.isoformat(), "table": report.table, "rows_in": 0, "inserted": 0,
              "updated": 0, "unchanged": 0, "rejected": 0}
    if frame.empty:
        log.info("%s of %s: no rows (not a session)", name, day)
        return {**result, "requests": source.requests_sent() - requests_before}
    if report.all_markets:
        frame, result["left_out"], result["listed_by"] = kospi_kosdaq_only(frame, day, hook)
    if name == "indices":
        _upsert_index_master(frame, day, hook)
        frame = frame.drop(columns=["name", "index_group"])
    written = hook.upsert(report.table, for_hook(frame))
    result.update(rows_in=written.rows_in, inserted=written.inserted, updated=written.updated,
                  unchanged=written.unchanged, rejected=written.rejected,
                  requests=source.requests_sent() - requests_before, seconds=round(time.perf_counter() - started, 3))
    log.info("%s of %s: %s", name, day, result)
    return result


def kospi_kosdaq_only(frame: pd.DataFrame, day: dt.date, hook) -> tuple[pd.DataFrame, int, str]:
    """The rows of ``frame`` (an all-market answer, KONEX included) whose ticker krxflow keeps on ``day``.

    The answers of these reports carry no market, so the day's ``daily_prices`` (which kept the
    KOSPI and KOSDAQ rows of KRX's all-market prices, by their market field) says which tickers
    are kept; before that day's prices are loaded, the master's KOSPI/KOSDAQ tickers (``stocks``);
    with neither (a new installation) nothing is left out, with a warning. Returns the rows kept,
    how many were left out and what decided it.
    """
    listed = read_frame(hook, "queries/reports/kept_tickers.sql", {"day": day, "markets": list(MARKETS)})
    if listed.empty:
        log.warning("%s: neither daily_prices of the day nor stocks lists a ticker: KONEX rows cannot be told "
                    "apart and are kept", day)
        return frame, 0, "nothing"
    kept = frame["ticker"].isin(set(listed["ticker"]))
    left_out = int((~kept).sum())
    listed_by = str(listed["listed_by"].iloc[0])
    if left_out:
        log.info("%s: %d tickers of KRX's all-market answer are not KOSPI/KOSDAQ tickers of %s (KONEX): left out, "
                 "e.g. %s", day, left_out, listed_by, sorted(set(frame.loc[~kept, "ticker"]))[:5])
    return frame[kept].reset_index(drop=True), left_out, listed_by


def _upsert_index_master(frame: pd.DataFrame, day: dt.date, hook) -> None:
    """The indices of the day into ``krx_indices``; first_seen/last_seen only ever widen."""
    master = frame[INDEX_COLUMNS].drop_duplicates("index_code").set_index("index_code")
    known = read_frame(hook, "queries/reports/index_master_state.sql").set_index("index_code")
    rows = []
    for code, row in master.iterrows():
        first = last = day
        if code in known.index:
            old = known.loc[code]
            first = min(d for d in (old["first_seen"], day) if d is not None and not pd.isna(d))
            last = max(d for d in (old["last_seen"], day) if d is not None and not pd.isna(d))
            if day < last:  # an older day: keep today's name and group
                row = old
        rows.append({"index_code": code, "name": row["name"], "index_group": row["index_group"],
                     "first_seen": first, "last_seen": last})
    hook.upsert("krx_indices", pd.DataFrame(rows))


# ---------------------------------------------------------------------------- quality
def _problems(name: str, f: dict) -> list[str]:
    """What is off in the figures of report ``name`` (empty: all good)."""
    problems = []
    if f["rows"] == 0:
        problems.append("no rows")
    if name != "indices" and f.get("listed", 0) == 0:
        problems.append("no daily_prices for the day: rows not compared with the listed tickers")
    checks = {
        "indices": [("groups", lambda v: v < 3, "{} of 3 index groups"),
                    ("without_close", bool, "{} indices without a close"),
                    ("bad_ohlc", bool, "{} rows break low <= open/close <= high"),
                    ("composite_cap_mismatch", bool, "{} composites off the market's cap by > 1 %")],
        "investors": [("missing", bool, "{} traded tickers without investor rows"),
                      ("incomplete_types", bool, f"{{}} tickers without all {len(INVESTOR_TYPES)} investor types"),
                      ("net_not_zero", bool, "{} tickers whose net buys do not sum to about zero"),
                      ("volume_mismatch", bool, "{} tickers whose buys differ from the day's volume")],
        "fundamentals": [("missing", bool, "{} listed tickers without fundamentals"),
                         ("per_mismatch", bool, "{} PERs off close / EPS"),
                         ("pbr_mismatch", bool, "{} PBRs off close / BPS")],
        "short_selling": [("short_above_total", bool, "{} short sales above the day's trading"),
                          ("volume_mismatch", bool, "{} volumes differ from daily_prices")],
        "short_balance": [("above_listed", bool, "{} balances above the listed shares"),
                          ("ratio_mismatch", bool, "{} ratios off quantity / listed shares"),
                          ("listed_mismatch", bool, "{} listed shares differ from daily_prices")],
        "foreign_ownership": [("missing", bool, "{} listed tickers without foreign ownership"),
                              ("above_limit", bool, "{} holdings above the limit or the listed shares"),
                              ("rate_mismatch", bool, "{} share rates off held / listed"),
                              ("listed_mismatch", bool, "{} listed shares differ from daily_prices")],
    }[name]
    for key, bad, message in checks:
        if bad(f[key]):
            problems.append(message.format(f[key]))
    return problems


def check_report_quality(name: str, session, *, hook=None) -> dict:
    """Quality figures of report ``name`` for the run of ``session`` → one journal row
    (operation ``quality_check`` on the report's table; status ``warning`` when something is off)."""
    report = REPORTS[name]
    hook = hook or shared_hook()
    day = report.day_for(kst_date(session))
    with Journal(hook).operation(report.table, Operation.QUALITY_CHECK, report=name, day=day.isoformat()) as entry:
        figures = read_frame(hook, f"queries/reports/quality_{report.method}.sql",
                             {"day": day, "types": len(INVESTOR_TYPES)}).iloc[0].to_dict()
        figures = {k: (list(v) if isinstance(v, (list, tuple)) else int(v)) for k, v in figures.items()}
        problems = _problems(name, figures)
        entry.rows_in = figures["rows"]
        entry.details.update(figures)
        entry.warn(problems)
    status = str(entry.status)
    log.log(logging.WARNING if problems else logging.INFO, "quality of %s on %s: %s %s", name, day, status, figures)
    return {"report": name, "day": day.isoformat(), "status": status, "problems": problems, **figures}
