"""What the market was on a date (issue 27): a session's industries, index constituents and delistings.

:func:`load_universe` is one session's load (the ``krx_universe`` DAG), :func:`backfill_universe`
a range at a low cadence. Both go through the source's one gated KRX session and write through
``BatchedPostgresHook`` only.

**A few requests a session.** The industry report costs 2 (one per market). Index constituents
are asked only where they can have changed that session (:func:`indices_to_check`): the core
indices on their rebalance dates, a sector index whose industry gained or lost a ticker in the
day's industry answer, an index holding a ticker that left, an index first priced that session
(an index-master change), any index never asked yet, plus the stalest one (a low-cadence
rotation). The delisted-issues report is asked when the day's answers show a ticker gone, when
the master saw a delisting KRX has not explained yet, and at least weekly.

**All or nothing.** Every request of the session is sent before anything is written; an empty
answer on a trading day, a changed one (missing fields, other markets, a third of the market
gone at once) or any failure mid-way raises, and nothing of the session is written. The writes
then go in one transaction.

**History, not snapshots.** Periods are half-open: ``[valid_from, valid_to)`` per ticker's
industry, ``[entered_on, exited_on)`` per membership. A period that ends with a delisting ends on
KRX's delisting date (``krx_delistings``) when it falls after the last check. Reruns change
nothing; a session older than the last one loaded for a subject is compared with the history
and never rewrites it (differences are counted as ``conflicts`` and logged).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field

import pandas as pd

from krxflow.krx.errors import KrxBadAnswerError
from krxflow.krx.interface import DELISTING_COLUMNS, KrxSource
from krxflow.krx.tables import read_frame, shared_hook
from krxflow.krx.universe_catalog import (CORE_INDICES, DELISTINGS_EVERY_DAYS, DELISTINGS_WINDOW_DAYS,
                                          ROTATION_PER_SESSION, is_rebalance_day, rebalance_dates)
from krxflow.market_time import kst_date

log = logging.getLogger(__name__)

INDUSTRY_ROW = ["ticker", "valid_from", "valid_to", "market", "industry"]
MEMBER_ROW = ["index_code", "ticker", "entered_on", "exited_on"]
CHECK_ROW = ["report", "subject", "checked_on", "rows"]
#: More tickers than this share of the market missing from one day's industry answer is a changed
#: answer, not a wave of delistings (KRX delists ~100 shares a year).
MAX_GONE_SHARE = 0.05
MAX_GONE_FLOOR = 20


@dataclass
class UniverseResult:
    """What one session's load asked and wrote."""

    session: str
    requests: int = 0
    industries: int = 0
    industry_changes: int = 0
    new_tickers: int = 0
    gone_tickers: int = 0
    indices_checked: list[str] = field(default_factory=list)
    members_entered: int = 0
    members_exited: int = 0
    delistings: int = 0
    stocks_linked: int = 0
    conflicts: int = 0
    seconds: float = 0.0
    skipped: str | None = None


# ---------------------------------------------------------------------------- the session
def load_universe(source: KrxSource, session, *, hook=None, indices: list[str] | str | None = None,
                  delistings: bool | None = None, rotation: int = ROTATION_PER_SESSION) -> dict:
    """Session ``session``'s industries, the constituents that can have changed and new delistings.

    ``indices``: the indices to ask (None: :func:`indices_to_check` decides; ``"all"``: every followed
    index); ``delistings``: ask
    the delisted-issues report (None: when something says so); ``rotation``: stale indices to
    re-check on top. Returns :class:`UniverseResult` as a dict.
    """
    from krxflow.calendar import is_trading_day

    hook = hook or shared_hook()
    session = kst_date(session)
    result = UniverseResult(session=session.isoformat())
    if not is_trading_day(session):
        result.skipped = "not an XKRX session"
        return asdict(result)
    started, sent_before = time.perf_counter(), source.requests_sent()
    checks = _last_checks(hook)

    # 1. every request first: nothing is written unless all of them succeed
    answer = source.industries(session)
    industry_writes = _industry_diff(hook, answer, session, checks, result)
    group_indices = read_frame(hook, "queries/universe/group_indices.sql")
    master_writes = None
    industries_of_day = set(zip(answer["market"], answer["industry"]))
    if not any((m, n) in industries_of_day for m, n in zip(group_indices["market"], group_indices["name"])):
        master_writes = source.index_master()  # krx_indices holds no sector index yet: ask KRX's index finder once
        group_indices = master_writes[master_writes["index_group"].isin(["KOSPI", "KOSDAQ"])].rename(
            columns={"index_group": "market"})
    sectors = {code: (m, n) for code, n, m in zip(group_indices["index_code"], group_indices["name"],
                                                  group_indices["market"]) if (m, n) in industries_of_day}
    followed = list(CORE_INDICES) + sorted(sectors)
    open_members = read_frame(hook, "queries/universe/open_members.sql", {"codes": followed})
    if indices == "all":
        indices = followed
    elif indices is None:
        indices = indices_to_check(hook, session, followed, sectors, checks, industry_writes["touched"],
                                   industry_writes["touched_industries"], open_members, rotation)
    members = {code: source.index_members(code, session) for code in indices}
    delisted = pd.DataFrame(columns=DELISTING_COLUMNS)
    if delistings is None:
        delistings = _delistings_due(hook, session, checks, result.gone_tickers)
    if delistings:
        delisted = source.delistings(session - dt.timedelta(days=DELISTINGS_WINDOW_DAYS), session)
    result.requests = source.requests_sent() - sent_before

    # 2. one transaction for everything of the session
    with hook.thread_connection() as conn, conn.transaction():
        if master_writes is not None:
            _write_index_master(hook, master_writes)
        if delistings:
            _write_delistings(hook, delisted, session, result)
        known = _known_delistings(hook, session)
        _write_industries(hook, industry_writes, session, known, result)
        _write_members(hook, members, session, checks, open_members, known, result)
    result.indices_checked = list(indices)
    result.seconds = round(time.perf_counter() - started, 3)
    log.info("universe of %s: %s", session, result)
    return asdict(result)


def indices_to_check(hook, session: dt.date, followed: list[str], sectors: dict[str, tuple[str, str]],
                     checks: dict, touched: set[str], touched_industries: set[tuple[str, str]],
                     open_members: pd.DataFrame, rotation: int) -> list[str]:
    """The indices whose constituents can have changed on ``session`` (see the module's docstring)."""
    last = {code: checks.get(("index_members", code)) for code in followed}
    due = {code for code in followed if last[code] is None}  # never asked
    if is_rebalance_day(session):
        due |= set(CORE_INDICES)
    due |= {code for code, industry in sectors.items() if industry in touched_industries}
    holding = set(open_members.loc[open_members["ticker"].isin(touched), "index_code"])
    due |= holding & set(followed)
    new = set(read_frame(hook, "queries/universe/new_indices.sql", {"day": session})["index_code"])
    due |= new & set(followed)
    stale = sorted((c for c in followed if c not in due and last[c] is not None and last[c] < session),
                   key=lambda c: (last[c], c))
    due |= set(stale[:max(0, rotation - len(due))])  # the rotation only fills a session that asks less
    return [c for c in followed if c in due]


def _last_checks(hook) -> dict[tuple[str, str], dt.date]:
    frame = read_frame(hook, "queries/universe/last_checks.sql")
    return {(r, s): d for r, s, d in zip(frame["report"], frame["subject"], frame["checked_on"])}


def _delistings_due(hook, session: dt.date, checks: dict, gone: int) -> bool:
    """Ask the delisted-issues report: a ticker left today, the master saw an unexplained delisting, or a week passed
    (never again for a session it was already asked for, or an older one)."""
    last = checks.get(("delistings", "ALL"))
    if last is not None and last >= session:
        return False
    if gone or last is None or (session - last).days >= DELISTINGS_EVERY_DAYS:
        return True
    window = {"since": session - dt.timedelta(days=DELISTINGS_WINDOW_DAYS), "day": session}
    return int(read_frame(hook, "queries/universe/unexplained_delistings.sql", window)["missing"].iloc[0]) > 0


def _known_delistings(hook, session: dt.date) -> dict[str, dt.date]:
    frame = read_frame(hook, "queries/universe/known_delistings.sql", {"day": session})
    return dict(zip(frame["ticker"], frame["delisted_on"]))


def _end_of(ticker: str, start: dt.date, session: dt.date, known: dict[str, dt.date]) -> dt.date:
    """Where a period of ``ticker`` from ``start`` that is gone on ``session`` ends: KRX's delisting
    date when it lies after the start, else the session."""
    delisted_on = known.get(ticker)
    return delisted_on if delisted_on is not None and start < delisted_on <= session else session


# ---------------------------------------------------------------------------- industries
def _industry_diff(hook, answer: pd.DataFrame, session: dt.date, checks: dict, result: UniverseResult) -> dict:
    """Compare the day's industry answer with the history: what to write, which tickers and industries changed."""
    result.industries = len(answer)
    last = max((checks.get(("industries", m)) for m in ("KOSPI", "KOSDAQ") if checks.get(("industries", m))),
               default=None)
    diff = {"rows": [], "changes": [], "gone": [], "touched": set(), "touched_industries": set(),
            "counts": answer.groupby("market").size().to_dict() if len(answer) else {}, "older": False}
    if last is not None and session < last:  # an older session: compare, never rewrite
        then = read_frame(hook, "queries/universe/industries_on.sql", {"day": session})
        merged = answer.merge(then, on="ticker", how="outer", suffixes=("", "_then"), indicator=True)
        differs = (merged["_merge"] != "both") | (merged["industry"] != merged["industry_then"])
        result.conflicts += int(differs.sum())
        if differs.any():
            log.warning("industries of %s (older than the last loaded, %s): %d tickers differ from the history; "
                        "not rewritten", session, last, int(differs.sum()))
        diff["older"] = True
        return diff
    current = read_frame(hook, "queries/universe/open_industries.sql")
    now = {t: (f, m, i) for t, f, m, i in zip(current["ticker"], current["valid_from"], current["market"],
                                               current["industry"])}
    seen = set()
    for ticker, market, industry in zip(answer["ticker"], answer["market"], answer["industry"]):
        seen.add(ticker)
        old = now.get(ticker)
        if old is not None and (old[1], old[2]) == (market, industry):
            continue
        diff["touched"].add(ticker)
        diff["touched_industries"].add((market, industry))
        if old is None:
            result.new_tickers += 1
        else:
            diff["touched_industries"].add((old[1], old[2]))
            if old[0] < session:
                diff["rows"].append((ticker, old[0], session, old[1], old[2]))
            if old[2] != industry:
                diff["changes"].append((ticker, session, "industry", old[2], industry))
                result.industry_changes += 1
        diff["rows"].append((ticker, session, None, market, industry))
    gone = [t for t in now if t not in seen]
    if len(gone) > max(MAX_GONE_FLOOR, MAX_GONE_SHARE * len(now)):
        raise KrxBadAnswerError(f"KRX's industry answer of {session} lacks {len(gone)} of the {len(now)} tickers "
                                "it listed before: a changed answer, not delistings. Nothing written.")
    for ticker in gone:
        diff["gone"].append((ticker, now[ticker]))
        diff["touched"].add(ticker)
        diff["touched_industries"].add((now[ticker][1], now[ticker][2]))
    result.gone_tickers = len(gone)
    return diff


def _write_industries(hook, diff: dict, session: dt.date, known: dict, result: UniverseResult) -> None:
    rows = list(diff["rows"])
    for ticker, (start, market, industry) in diff["gone"]:
        rows.append((ticker, start, _end_of(ticker, start, session, known), market, industry))
    if rows:
        hook.upsert("krx_industry_history", pd.DataFrame(rows, columns=INDUSTRY_ROW))
    if diff["changes"]:
        hook.append("stock_changes", pd.DataFrame(diff["changes"], columns=["ticker", "changed_on", "field",
                                                                             "old_value", "new_value"]))
    if diff["counts"]:
        _write_checks(hook, [("industries", m, session, n) for m, n in diff["counts"].items()])


# ---------------------------------------------------------------------------- index members
def _write_members(hook, members: dict[str, pd.DataFrame], session: dt.date, checks: dict,
                   open_members: pd.DataFrame, known: dict, result: UniverseResult) -> None:
    rows, done = [], []
    for code, answer in members.items():
        tickers = set(answer["ticker"])
        done.append(("index_members", code, session, len(tickers)))
        last = checks.get(("index_members", code))
        if last is not None and session < last:  # an older session: compare, never rewrite
            then = set(read_frame(hook, "queries/universe/members_on.sql", {"code": code, "day": session})["ticker"])
            result.conflicts += len(then ^ tickers)
            continue
        current = open_members[open_members["index_code"] == code]
        now = dict(zip(current["ticker"], current["entered_on"]))
        for ticker in sorted(tickers - set(now)):
            rows.append((code, ticker, session, None))
            result.members_entered += 1
        for ticker in sorted(set(now) - tickers):
            start = now[ticker]
            if start >= session:  # entered on this very session by an earlier answer: the rerun's answer rules
                continue
            rows.append((code, ticker, start, _end_of(ticker, start, session, known)))
            result.members_exited += 1
    if rows:
        hook.upsert("krx_index_members", pd.DataFrame(rows, columns=MEMBER_ROW))
    if done:
        _write_checks(hook, done)


def _write_index_master(hook, master: pd.DataFrame) -> None:
    """Index codes KRX's finder lists that ``krx_indices`` lacks (first/last seen stay NULL: no prices yet)."""
    known = set(read_frame(hook, "queries/reports/index_master_state.sql")["index_code"])
    new = master[~master["index_code"].isin(known)]
    if len(new):
        hook.upsert("krx_indices", new[["index_code", "name", "index_group"]].reset_index(drop=True))


# ---------------------------------------------------------------------------- delistings
def _write_delistings(hook, delisted: pd.DataFrame, window_end: dt.date, result: UniverseResult) -> None:
    """KRX's delistings → ``krx_delistings``; the master's rows of those tickers get KRX's date.

    A ticker seen trading on or after KRX's date (a reused code) keeps its master row. KONEX rows
    are kept in ``krx_delistings`` (their successor is the KOSDAQ code) but not added to ``stocks``.
    """
    if len(delisted):
        hook.upsert("krx_delistings", delisted[DELISTING_COLUMNS])
        result.delistings += len(delisted)
        result.stocks_linked += _link_stocks(hook, delisted[delisted["market"].isin(["KOSPI", "KOSDAQ"])])
    _write_checks(hook, [("delistings", "ALL", window_end, len(delisted))])


def _link_stocks(hook, delisted: pd.DataFrame) -> int:
    """The master's rows of KRX's delisted tickers (new ones added as delisted); how many were written."""
    from krxflow.krx.master import STOCK_COLUMNS

    if delisted.empty:
        return 0
    latest = delisted.sort_values("delisted_on").drop_duplicates("ticker", keep="last")
    stocks = read_frame(hook, "queries/universe/stocks_of.sql", {"tickers": list(latest["ticker"])})
    stocks = stocks.set_index("ticker").to_dict("index")
    now = pd.Timestamp.now(tz="UTC")
    updates, inserts = [], []
    for row in latest.itertuples(index=False):
        old = stocks.get(row.ticker)
        if old is None:
            inserts.append({"ticker": row.ticker, "name": row.name, "market": row.market, "isin": None, "sector": None,
                            "listed_shares": None if pd.isna(row.listed_shares) else int(row.listed_shares),
                            "market_cap": None, "first_seen": None, "last_seen": None, "delisted": True,
                            "delisted_on": row.delisted_on, "updated_at": now})
        elif (old["last_seen"] is None or old["last_seen"] < row.delisted_on) and \
                (not old["delisted"] or old["delisted_on"] != row.delisted_on):
            updates.append({"ticker": row.ticker, "delisted": True, "delisted_on": row.delisted_on, "updated_at": now})
    if inserts:
        hook.upsert("stocks", pd.DataFrame(inserts)[STOCK_COLUMNS], columns=STOCK_COLUMNS)
    if updates:
        hook.upsert("stocks", pd.DataFrame(updates), columns=["ticker", "delisted", "delisted_on", "updated_at"])
    return len(inserts) + len(updates)


def _write_checks(hook, rows: list[tuple]) -> None:
    hook.upsert("krx_universe_checks", pd.DataFrame(rows, columns=CHECK_ROW))


# ---------------------------------------------------------------------------- backfill
def backfill_checkpoints(first: dt.date, last: dt.date) -> list[dt.date]:
    """The sessions a backfill asks: the first and last, the first session of each month and every
    rebalance date in between."""
    from krxflow.calendar import trading_days

    days = trading_days(first, last)
    if not days:
        return []
    picked = {days[0], days[-1], *rebalance_dates(days[0], days[-1])}
    picked |= {d for i, d in enumerate(days) if i == 0 or d.month != days[i - 1].month}
    return sorted(picked)


def backfill_universe(source: KrxSource, first, last, *, hook=None) -> dict:
    """``first``..``last`` at a low cadence: the delistings of the whole range (one request per 730
    days), then at each :func:`backfill_checkpoints` session the industries and the core indices,
    and the sector indices on the first checkpoint and each quarter's first. Changes between two
    checkpoints are dated at the later one, except delistings (KRX's date)."""
    hook = hook or shared_hook()
    first, last = kst_date(first), kst_date(last)
    started, sent_before = time.perf_counter(), source.requests_sent()
    delisted = source.delistings(first, last)
    summary = UniverseResult(session=f"{first}..{last}")
    with hook.thread_connection() as conn, conn.transaction():
        _write_delistings(hook, delisted, last, summary)
    checkpoints = backfill_checkpoints(first, last)
    quarter_starts = {d for i, d in enumerate(checkpoints)
                      if i == 0 or (d.month in (1, 4, 7, 10) and d.month != checkpoints[i - 1].month)}
    for day in checkpoints:
        done = load_universe(source, day, hook=hook, indices="all" if day in quarter_starts else list(CORE_INDICES),
                             delistings=False, rotation=0)
        summary.industry_changes += done["industry_changes"]
        summary.members_entered += done["members_entered"]
        summary.members_exited += done["members_exited"]
        summary.conflicts += done["conflicts"]
        summary.indices_checked.extend(done["indices_checked"])
    summary.requests = source.requests_sent() - sent_before
    summary.seconds = round(time.perf_counter() - started, 3)
    out = asdict(summary)
    out.update(checkpoints=len(checkpoints), indices_checked=len(summary.indices_checked))
    log.info("universe backfill %s..%s: %s", first, last, out)
    return out
