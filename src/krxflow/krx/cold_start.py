"""The cold start: an empty database to a complete N-year market, as plain functions (``krx_cold_start`` wires them).

What it does, in order:

1. :func:`plan` — the XKRX sessions of the window (:func:`~krxflow.krx.loading.history_window`),
   grouped by calendar month (a *period*), and how many of them are already loaded.
2. :func:`load_period` — per period, per session not loaded yet, oldest first: the session's
   all-market answer (ONE request: prices and the listing of that day) → ``daily_prices``
   (:func:`~krxflow.krx.loading.store_market_day`); the ticker master (``stocks``,
   ``stock_changes``) placed on the sessions where the listing changes
   (:func:`~krxflow.krx.loading.update_master`); one ``load_stats`` row per session
   (operation :data:`SESSION_OPERATION`), the journal that makes a rerun skip it.
3. After every period: the factors and the adjusted series of every ticker
   (:func:`~krxflow.krx.adjusting.adjust_market`, one pass, no request), the cross-check of
   each ex-date against KRX's own adjusted prices, the listing of the last session with the
   tickers KRX knows as delisted (:func:`~krxflow.krx.loading.load_listing`).
4. The price Assets are emitted once, at the end: ``db_matviews`` then refreshes the views
   (summary, weekly and monthly candles) and computes the indicators once.

**The master on change points only.** ``update_master`` is order-independent and idempotent:
dates only widen, attributes follow the newest session seen, renames/moves/delistings land on the
session they happened (a delisting on the first *loaded* session without the ticker, read from
``daily_prices``). Placing it on a session whose listing (tickers, names, markets) equals both
neighbours' adds nothing those neighbours do not: every ticker's first and last session, every
rename or move and every delisting sit next to a change. So the master is placed on the first and
last session of each run of a period and on both sides of every change — in the sample market
~400 of 1,230 sessions (each placement reads and writes the whole master, ~0.4 s).

**Resumable.** A session is loaded when its ``load_stats`` row exists; a rerun plans only the
others. A session's row is written once its master placement is decided (the session after it was
seen), so an interruption re-requests at most the one or two sessions in flight per task.

**Progress**: every session logs ``cold start: 612/1230 sessions loaded (49.8 %), ... ETA 6 min``
(over the whole window, from the journal, so parallel periods and reruns count), and each mapped
task is named in the UI after its period and what it loaded.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import pandas as pd

from krxflow.journal import Journal, Operation, Status
from krxflow.krx.loading import history_window, store_market_day
from krxflow.krx.master import update_master
from krxflow.krx.tables import read_frame, shared_hook
from krxflow.market_time import kst_date
from krxflow.krx.interface import KrxSource

log = logging.getLogger(__name__)

#: ``load_stats.operation`` of the one row written per loaded session (``details->>'day'``).
SESSION_OPERATION = str(Operation.COLD_START_SESSION)


def sessions_loaded(first, last, *, hook=None) -> set[dt.date]:
    """The sessions of ``first``..``last`` a cold start has loaded (journal rows in ``load_stats``)."""
    hook = hook or shared_hook()
    found = read_frame(hook, "queries/cold_start/sessions_loaded.sql",
                       {"operation": SESSION_OPERATION, "first": kst_date(first), "last": kst_date(last)})
    return set(found["day"])


def plan(years: int, *, hook=None, today: dt.date | None = None) -> dict:
    """The last ``years`` years, their sessions by month, and what is left to load."""
    return plan_window(*history_window(years, today), hook=hook)


def plan_window(first, last, *, hook=None) -> dict:
    """The sessions of ``first``..``last`` by month, and what is left to load."""
    from krxflow.calendar import trading_days

    first, last = kst_date(first), kst_date(last)
    days = trading_days(first, last)
    loaded = sessions_loaded(first, last, hook=hook)
    periods: dict[str, list[str]] = {}
    for day in days:
        periods.setdefault(f"{day:%Y-%m}", []).append(day.isoformat())
    todo = [{"period": period, "sessions": period_days, "left": sum(kst_date(d) not in loaded for d in period_days)}
            for period, period_days in periods.items()]
    result = {"first": first.isoformat(), "last": last.isoformat(), "sessions": len(days),
              "loaded": sum(d in loaded for d in days), "periods": len(periods),
              "todo": [p for p in todo if p["left"]]}
    log.info("cold start of %s..%s: %d sessions in %d months, %d loaded already, %d months to load",
             first, last, len(days), len(periods), result["loaded"], len(result["todo"]))
    return result


@dataclass
class _Loaded:
    """A session whose prices are written; its master placement is decided when the next one is seen."""

    day: dt.date
    frame: pd.DataFrame
    listing: frozenset
    written: dict
    placed: bool = False


def _listing_of(frame: pd.DataFrame) -> frozenset:
    """What ``update_master`` records changes of: the listed tickers with their names and markets."""
    return frozenset(zip(frame["ticker"], frame["name"], frame["market"]))


class _Progress:
    """``done/total`` over the whole window (from the journal) and an ETA from this run's pace."""

    def __init__(self, hook, first, last, total: int, since: dt.datetime):
        self.hook, self.first, self.last, self.total, self.since = hook, first, last, total, since

    def line(self) -> str:
        figures = read_frame(self.hook, "queries/cold_start/progress.sql",
                             {"operation": SESSION_OPERATION, "first": self.first, "last": self.last,
                              "since": self.since}).iloc[0]
        done, recent = int(figures["done"]), int(figures["since_start"])
        elapsed = max((pd.Timestamp.now(tz="UTC") - pd.Timestamp(self.since)).total_seconds(), 1e-3)
        left = self.total - done
        eta = f"ETA {left / (recent / elapsed) / 60:.1f} min" if recent and left else ("done" if not left else "ETA ?")
        return f"{done}/{self.total} sessions loaded ({100.0 * done / max(self.total, 1):.1f} %), {eta}"


def load_period(source: KrxSource, days: list, *, window: dict, started: dt.datetime, hook=None) -> dict:
    """Load the sessions ``days`` (one period) that are not loaded yet: prices, master, journal.

    :param window: :func:`plan`'s result (``first``, ``last``, ``sessions``) for the progress figures.
    :param started: when the run started (the ETA's pace counts sessions loaded since then).
    """
    hook = hook or shared_hook()
    days = sorted(kst_date(d) for d in days)
    loaded = sessions_loaded(days[0], days[-1], hook=hook)
    todo = [d for d in days if d not in loaded]
    progress = _Progress(hook, kst_date(window["first"]), kst_date(window["last"]), int(window["sessions"]), started)
    summary = {"sessions": len(days), "skipped": len(days) - len(todo), "requested": len(todo), "loaded": 0,
               "empty": 0, "rows": 0, "master_placed": 0}
    previous: _Loaded | None = None
    for day in todo:
        began = time.perf_counter()
        frame = source.market_day(day)
        if frame.empty:  # KRX answered nothing for a session: not journaled, a rerun asks again
            log.warning("cold start: KRX answered no rows for session %s; it stays to be loaded", day)
            summary["empty"] += 1
            continue
        current = _Loaded(day, frame, _listing_of(frame), store_market_day(frame, day, hook=hook, master=False))
        changed = previous is None or current.listing != previous.listing
        if previous is not None:
            if changed:
                _place(previous, hook, summary)
            _journal(previous, hook, summary)
        if changed:
            _place(current, hook, summary)
        previous = current
        log.info("cold start: %s loaded (%d rows, master %s) in %.2fs; %s", day, current.written["rows_in"],
                 "placed" if current.placed else "unchanged", time.perf_counter() - began, progress.line())
    if previous is not None:
        _place(previous, hook, summary)  # the last session of a run always
        _journal(previous, hook, summary)
    summary["progress"] = progress.line()
    log.info("cold start, period %s..%s: %s", days[0], days[-1], summary)
    return summary


def _place(loaded: _Loaded, hook, summary: dict) -> None:
    if not loaded.placed:
        update_master(loaded.frame, loaded.day, hook=hook)
        loaded.placed = True
        summary["master_placed"] += 1


def _journal(loaded: _Loaded, hook, summary: dict) -> None:
    written = loaded.written
    Journal(hook).record("daily_prices", Operation.COLD_START_SESSION, rows_in=written["rows_in"],
                         inserted=written["inserted"], updated=written["updated"], rejected=written["rejected"],
                         status=Status.WARNING if written["rejected"] else Status.OK,
                         details={"day": loaded.day.isoformat(), "master_placed": loaded.placed})
    summary["loaded"] += 1
    summary["rows"] += written["rows_in"]


def derive_adjusted(*, hook=None) -> dict:
    """Factors and the adjusted series of every ticker, from the raw rows (no request)."""
    from krxflow.krx.adjusting import adjust_market

    result = adjust_market(hook=hook or shared_hook())
    log.info("cold start: adjusted series of %d tickers, %d factors, %d rows written in %.1fs", result.tickers,
             result.factors_found, result.rows_written, result.seconds)
    return {k: v for k, v in result.as_dict().items() if k != "rewritten"}


def cross_check_ex_dates(source: KrxSource, window: dict, *, hook=None) -> dict:
    """The adjusted series against KRX's own around every ex-date of the window (one request per ex-date ticker)."""
    from krxflow.krx.adjusting import cross_check

    hook = hook or shared_hook()
    ex_dates = read_frame(hook, "queries/cold_start/ex_dates.sql",
                          {"first": kst_date(window["first"]), "last": kst_date(window["last"])})["ex_date"]
    totals = {"ex_dates": len(ex_dates), "checked": 0, "mismatches": 0, "flagged": 0}
    for day in ex_dates:
        found = cross_check(source, day, rotating=0, hook=hook)
        for key in ("checked", "mismatches", "flagged"):
            totals[key] += found[key]
    log.info("cold start: cross-checked %s", totals)
    return totals


def run(source: KrxSource, window: dict, *, hook=None) -> dict:
    """Every step in this process, in the DAG's order (for a cold start without a scheduler, and tests)."""
    from dataclasses import asdict

    from krxflow.krx.master import load_listing

    hook = hook or shared_hook()
    started = pd.Timestamp.now(tz="UTC").to_pydatetime()
    periods = [load_period(source, period["sessions"], window=window, started=started, hook=hook)
               for period in window["todo"]]
    return {"periods": periods, "requested": sum(p["requested"] for p in periods),
            "adjusted": derive_adjusted(hook=hook), "cross_check": cross_check_ex_dates(source, window, hook=hook),
            "listing": asdict(load_listing(source, window["last"], hook=hook))}


def main(argv: list[str] | None = None) -> None:
    """``python -m krxflow.krx.cold_start --years 5`` (or ``--first/--last``): the cold start without Airflow."""
    import argparse
    import json

    from krxflow.sources import get_source

    parser = argparse.ArgumentParser(description="Cold start without a scheduler (the DAG is krx_cold_start).")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--first", help="first day (KST), instead of --years")
    parser.add_argument("--last", help="last day (KST), with --first")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    window = plan_window(args.first, args.last) if args.first else plan(args.years)
    print(json.dumps(run(get_source(), window), default=str))


if __name__ == "__main__":
    main()
