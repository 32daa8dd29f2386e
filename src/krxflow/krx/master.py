"""The ticker master (``stocks``, ``stock_changes``): what a session's listing changes in it.

:func:`diff_master` is the rules, pure (a DataFrame in, rows out; tested without a database);
:func:`update_master` reads the master, diffs and writes through the hook, one update at a
time; :func:`load_listing` asks a source for a session's listing first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from krxflow.krx.tables import read_frame, shared_hook
from krxflow.market_time import kst_date
from krxflow.krx.interface import LISTING_COLUMNS, KrxSource
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

STOCK_COLUMNS = ["ticker", "name", "market", "isin", "sector", "listed_shares", "market_cap", "first_seen",
                 "last_seen", "delisted", "delisted_on", "updated_at"]
CHANGE_COLUMNS = ["ticker", "changed_on", "field", "old_value", "new_value"]


@dataclass
class ListingResult:
    day: str
    listed: int
    new: int = 0
    renamed: int = 0
    moved: int = 0
    delisted: int = 0
    relisted: int = 0
    known_delisted_added: int = 0
    rows_written: int = 0


def load_listing(source: KrxSource, day, *, hook=None, include_delisted: bool = True) -> ListingResult:
    """Bring ``stocks`` up to the listing of session ``day``; keep renames/moves/delistings in ``stock_changes``.

    :func:`update_master` with the source's listing of the session (and, ``include_delisted``, the
    tickers the source knows as delisted, which are added as delisted).
    """
    from krxflow.calendar import is_trading_day, previous_trading_day

    day = kst_date(day)
    session = day if is_trading_day(day) else previous_trading_day(day)
    return update_master(source.listing(session), session, hook=hook,
                         known_delisted=source.delisted() if include_delisted else None)


def update_master(listing: pd.DataFrame, session: dt.date, *, hook=None,
                  known_delisted: pd.DataFrame | None = None) -> ListingResult:
    """The ticker master after seeing ``listing`` (:data:`LISTING_COLUMNS`): every ticker listed on ``session``.

    Both the ``krx_tickers`` DAG and each day's all-market load (``load_daily_prices``) call this,
    so the dates are those of the sessions seen, in whatever order they are loaded:

    * ``first_seen``/``last_seen`` only ever widen; attributes (name, market, shares, ...) follow
      the newest session seen; a rename or market move is recorded on the session it is first seen;
    * a ticker absent from the listing of a session after its ``last_seen`` is delisted on that
      session; an even earlier such session moves ``delisted_on`` back (the first session without it);
    * a delisted ticker listed again on or after its ``delisted_on`` is relisted; seen on an older
      session it only widens ``last_seen``.
    """
    hook = hook or shared_hook()
    # One master update at a time (a backfill loads several sessions at once): each reads the
    # master and writes it back, so concurrent ones would undo each other's widening. The session
    # lock goes with the connection.
    with hook.get_conn() as lock:
        lock.execute(template("queries/krx/master_lock.sql"))
        return _update_master(listing, session, hook, known_delisted)


def _update_master(listing: pd.DataFrame, session: dt.date, hook, known_delisted) -> ListingResult:
    """Read the master, diff it against ``listing``, write the diff."""
    # plain dicts: a pandas .loc per listed ticker cost ~1 s a session (2,700 lookups)
    existing = read_frame(hook, "queries/krx/stocks_state.sql").set_index("ticker").to_dict("index")
    diff = diff_master(existing, listing, session, known_delisted=known_delisted,
                       gone_on=lambda last_seen, absent_on: _gone_on(hook, last_seen, absent_on),
                       now=pd.Timestamp.now(tz="UTC"))
    if diff.rows:
        written = hook.upsert("stocks", _dates_for_hook(pd.DataFrame(diff.rows)[STOCK_COLUMNS]), columns=STOCK_COLUMNS)
        diff.result.rows_written = written.rows_written
    if diff.changes:
        hook.append("stock_changes", pd.DataFrame(diff.changes, columns=CHANGE_COLUMNS), columns=CHANGE_COLUMNS)
    log.info("listing of %s: %s", session, diff.result)
    return diff.result


@dataclass
class MasterDiff:
    """What one listing changes: ``stocks`` rows to upsert, ``stock_changes`` rows, the counts."""

    rows: list[dict]
    changes: list[tuple]
    result: ListingResult


def diff_master(existing: dict[str, dict], listing: pd.DataFrame, session: dt.date, *,
                known_delisted: pd.DataFrame | None, gone_on: Callable[[dt.date, dt.date], dt.date],
                now: pd.Timestamp) -> MasterDiff:
    """The master's rows and changes after seeing ``listing`` on ``session`` (the rules of
    :func:`update_master`). Pure: ``existing`` is the master (ticker → row) and ``gone_on``
    answers the one question that needs more than that — the session a ticker last seen on one
    date and missing on another was delisted (the first fully loaded session in between).
    """
    result = ListingResult(day=session.isoformat(), listed=len(listing))
    rows, changes = [], []
    for rec in listing[LISTING_COLUMNS].to_dict("records"):
        ticker = rec["ticker"]
        old = existing.get(ticker)
        row = {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in rec.items()}
        if old is None:
            result.new += 1
            row.update(first_seen=session, last_seen=session, delisted=False, delisted_on=None, updated_at=now)
            rows.append(row)
            continue
        still_delisted = bool(old["delisted"]) and old["delisted_on"] is not None and session < old["delisted_on"]
        newer = old["last_seen"] is None or session >= old["last_seen"]
        if not newer or still_delisted:  # an older session: widen the dates, keep the newest attributes
            widened = {"first_seen": min(old["first_seen"] or session, session),
                       "last_seen": max(old["last_seen"] or session, session)}
            if still_delisted:  # seen later than we knew: gone on the first loaded session after that
                widened["delisted_on"] = gone_on(widened["last_seen"], old["delisted_on"])
            if any(widened[k] != old[k] for k in widened):
                rows.append({**_current(old, ticker), **widened, "updated_at": now})
            continue
        for col, label in (("name", "name"), ("market", "market")):
            if old[col] != row[col]:
                changes.append((ticker, session, label, old[col], row[col]))
                result.renamed += label == "name"
                result.moved += label == "market"
        if old["delisted"]:
            changes.append((ticker, session, "delisted", "true", "false"))
            result.relisted += 1
        row.update(first_seen=min(old["first_seen"] or session, session), last_seen=session, delisted=False,
                   delisted_on=None)
        same = all(_same(old[c], row[c]) for c in STOCK_COLUMNS if c not in ("ticker", "updated_at"))
        row["updated_at"] = old["updated_at"] if same else now
        rows.append(row)
    listed = set(listing["ticker"])
    if len(listed):  # an empty listing never delists the market
        for ticker, old in existing.items():
            if ticker in listed or old["market"] not in ("KOSPI", "KOSDAQ"):
                continue
            if old["last_seen"] is None or old["last_seen"] >= session:
                continue
            if old["delisted"] and old["delisted_on"] is not None and session >= old["delisted_on"]:
                continue  # still gone, as already recorded
            delisted_on = gone_on(old["last_seen"], session)
            if not old["delisted"]:
                rows.append({**_current(old, ticker), "delisted": True, "delisted_on": delisted_on, "updated_at": now})
                changes.append((ticker, delisted_on, "delisted", "false", "true"))
                result.delisted += 1
            elif old["delisted_on"] is None or delisted_on < old["delisted_on"]:  # gone already on an earlier session
                rows.append({**_current(old, ticker), "delisted_on": delisted_on, "updated_at": now})
    if known_delisted is not None:
        for rec in known_delisted.to_dict("records"):
            if rec["ticker"] in existing or rec["ticker"] in listed:
                continue
            rows.append({**{k: (None if pd.isna(v) else v) for k, v in rec.items()}, "sector": None,
                         "listed_shares": None, "market_cap": None, "first_seen": None, "last_seen": None,
                         "delisted": True, "delisted_on": None, "updated_at": now})
            result.known_delisted_added += 1
    return MasterDiff(rows, changes, result)


def _dates_for_hook(frame: pd.DataFrame) -> pd.DataFrame:
    """The master's date columns as datetime64 (the writer's vectorised path; Python dates are parsed one by one)."""
    days = {c: pd.to_datetime(frame[c]) for c in ("first_seen", "last_seen", "delisted_on")}
    return frame.assign(**days, updated_at=pd.to_datetime(frame["updated_at"], utc=True))


def _gone_on(hook, last_seen: dt.date, absent_on: dt.date) -> dt.date:
    """The session a ticker last seen on ``last_seen`` and missing on ``absent_on`` was delisted: the first
    session after ``last_seen`` whose whole market is loaded (it was missing there too), else ``absent_on``."""
    found = read_frame(hook, "queries/krx/first_loaded_session.sql", {"after": last_seen, "until": absent_on})
    return found["day"].iloc[0] if len(found) and found["day"].iloc[0] is not None else absent_on


def _current(old: dict, ticker: str) -> dict:
    row = {c: old[c] for c in STOCK_COLUMNS if c != "ticker"}
    return {"ticker": ticker, **{k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}}


def _same(a, b) -> bool:
    a_missing = a is None or (not isinstance(a, str) and pd.isna(a))
    b_missing = b is None or (not isinstance(b, str) and pd.isna(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    return a == b
