"""What the KRX price DAGs do, as plain functions: source → ``BatchedPostgresHook`` → tables.

The DAG files only wire these together (no SQL, no HTTP there). Every write goes through the
hook, quality figures and outcomes through the journal (:mod:`krxflow.journal`); the ticker
master's rules are :mod:`krxflow.krx.master`. Every function is idempotent: the same source rows
written twice leave the tables exactly as after the first time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field

from krxflow.journal import Journal, Operation, Status
from krxflow.krx.master import update_master
from krxflow.krx.tables import for_hook, read_frame, shared_hook
from krxflow.market_time import kst_date, kst_today
from krxflow.krx.interface import DAILY_COLUMNS, KrxSource

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- daily prices
def load_daily_prices(source: KrxSource, day, *, hook=None) -> dict:
    """The whole market on session ``day`` → ``daily_prices``, and the ticker master placed on that session.

    The all-market answer names every ticker listed that day (name, market, ...), so the master's
    ``first_seen``/``last_seen``, new listings, delistings, renames and market moves land on the
    sessions they happened (:func:`update_master`), not on the day ``krx_tickers`` last ran.
    When the portal refuses us the session comes from the KRX Open API (:mod:`krxflow.krx.failover`);
    ``source`` in the result names the source that answered.
    """
    from krxflow.krx import failover

    day = kst_date(day)
    frame, answered = failover.market_day(source, day)
    loaded = {**store_market_day(frame, day, hook=hook), "source": answered.name}
    if answered is not source:
        loaded["failed_over_from"] = source.name
    return loaded


def store_market_day(frame, day: dt.date, *, hook=None, master: bool = True) -> dict:
    """One session's all-market answer (``KrxSource.market_day``) → ``daily_prices``, and (``master``) the
    ticker master placed on that session. The cold start places the master only on the sessions where
    the listing changes (:mod:`krxflow.krx.cold_start`)."""
    hook = hook or shared_hook()
    if frame.empty:
        return {"day": day.isoformat(), "rows_in": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    written = hook.upsert("daily_prices", for_hook(frame[DAILY_COLUMNS]))
    loaded = {"day": day.isoformat(), "rows_in": written.rows_in, "inserted": written.inserted,
              "updated": written.updated, "unchanged": written.unchanged, "rejected": written.rejected}
    if master:
        loaded["master"] = {k: v for k, v in asdict(update_master(frame, day, hook=hook)).items() if k != "day"}
    return loaded


def check_daily_quality(day, *, hook=None, source: str | None = None, failed_over_from: str | None = None) -> dict:
    """Quality figures of session ``day`` of ``daily_prices`` → the journal (operation quality_check);
    ``source``: the name of the source that wrote the session (kept in the entry's details)."""
    from krxflow.calendar import previous_trading_day

    hook = hook or shared_hook()
    day = kst_date(day)
    with Journal(hook).operation("daily_prices", Operation.QUALITY_CHECK, day=day.isoformat()) as entry:
        figures = read_frame(hook, "queries/krx/daily_quality.sql",
                             {"day": day, "previous": previous_trading_day(day)}).iloc[0].to_dict()
        figures = {k: (list(v) if isinstance(v, (list, tuple)) else int(v)) for k, v in figures.items()}
        problems = []
        if figures["rows"] == 0:
            problems.append("no rows")
        if figures["bad_ohlc"]:
            problems.append(f"{figures['bad_ohlc']} rows break low <= open/close <= high")
        if figures["negative_volume"]:
            problems.append(f"{figures['negative_volume']} negative volumes")
        if figures["missing"]:
            problems.append(f"{figures['missing']} listed tickers without a row")
        if figures["gaps"]:
            problems.append(f"{figures['gaps']} tickers traded on the previous session but not today")
        entry.rows_in, entry.rejected = figures["rows"], figures["bad_ohlc"] + figures["negative_volume"]
        entry.details.update(figures)
        if source:
            entry.details["source"] = source
        if failed_over_from:
            entry.details["failed_over_from"] = failed_over_from
        entry.warn(problems)
    log.log(logging.WARNING if problems else logging.INFO, "quality of %s: %s %s", day, entry.status, figures)
    return {"day": day.isoformat(), "status": str(entry.status), "problems": problems, **figures}


# ---------------------------------------------------------------------------- history backfill
@dataclass
class TickerLoad:
    ticker: str
    status: str  # ok | empty
    adjusted_rows: int = 0
    raw_rows: int = 0
    rows_written: int = 0
    tables: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def history_window(years: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """``years`` back from the last session before ``today`` (KST)."""
    from krxflow.calendar import previous_trading_day

    if years < 1:
        raise ValueError("years must be at least 1")
    last = previous_trading_day(today or kst_today())
    try:
        first = last.replace(year=last.year - years)
    except ValueError:  # 29 February
        first = last.replace(year=last.year - years, day=28)
    return first, last


def backfill_tickers(source: KrxSource, wanted, *, hook=None) -> list[str]:
    """The tickers to backfill: ``"all"`` (the ticker master, else today's listing) or an explicit list."""
    hook = hook or shared_hook()
    if isinstance(wanted, str) and wanted.strip().lower() != "all":
        wanted = [t for t in wanted.replace(";", ",").split(",")]
    if not isinstance(wanted, str):
        tickers = sorted({str(t).strip().upper() for t in wanted if str(t).strip()})
        bad = [t for t in tickers if len(t) != 6 or not t.isalnum()]
        if bad:
            raise ValueError(f"not KRX tickers (6 letters/digits): {bad}")
        return tickers
    known = read_frame(hook, "queries/krx/backfill_tickers.sql")
    if len(known):
        return known["ticker"].tolist()
    listing = source.listing(kst_today())
    return sorted(listing["ticker"].tolist())


#: Where the adjusted series of a history backfill comes from.
ADJUSTED_FROM = ("krx", "naver")


def history_table(adjusted_from: str) -> str:
    """The table a history backfill writes its series to, and journals its outcome on."""
    return "daily_prices_adjusted" if adjusted_from == "naver" else "daily_prices"


def load_ticker_history(source: KrxSource, ticker: str, first, last, *, adjusted_from: str = "krx",
                        hook=None) -> TickerLoad:
    """One ticker's history.

    ``adjusted_from="krx"`` (default): the raw KRX series → ``daily_prices`` (it covers delisted
    tickers), then its factors and adjusted series derived from KRX's base prices
    (:func:`krxflow.krx.adjusting.adjust_tickers`). ``"naver"``: Naver's adjusted series
    → ``daily_prices_adjusted`` only (no KRX login needed; no delisted tickers).
    """
    if adjusted_from not in ADJUSTED_FROM:
        raise ValueError(f"adjusted_from must be one of {ADJUSTED_FROM}, not {adjusted_from!r}")
    hook = hook or shared_hook()
    result = TickerLoad(ticker, "ok")
    if adjusted_from == "naver":
        frame = source.history(ticker, first, last, adjusted=True)
        result.adjusted_rows = len(frame)
        if len(frame):
            result.rows_written += hook.upsert("daily_prices_adjusted", for_hook(frame)).rows_written
            result.tables.append("daily_prices_adjusted")
    else:
        from krxflow.krx.adjusting import adjust_tickers

        isin = read_frame(hook, "queries/krx/ticker_isin.sql", {"ticker": ticker})
        frame = source.history(ticker, first, last, adjusted=False,
                               isin=isin["isin"].iloc[0] if len(isin) and isin["isin"].iloc[0] else None)
        result.raw_rows = len(frame)
        if len(frame):
            written = hook.upsert("daily_prices", for_hook(frame))
            result.rows_written += written.rows_written
            # the frame is the ticker's whole raw series unless rows were rejected or others exist around it
            complete = not written.rejected and not read_frame(
                hook, "queries/adjust/rows_outside.sql", {"ticker": ticker, "first": first, "last": last}
            )["outside"].iloc[0]
            adjusted = adjust_tickers([ticker], hook=hook, raw=frame if complete else None)
            result.adjusted_rows = adjusted.rows
            result.rows_written += adjusted.rows_written
            result.tables += ["daily_prices", "daily_prices_adjusted"]
    if result.adjusted_rows + result.raw_rows == 0:
        result.status = "empty"
    # The ticker's outcome, for the run's report (backfill_results) and the health dashboard.
    Journal(hook).record(history_table(adjusted_from), Operation.HISTORY_TICKER,
                         rows_in=result.adjusted_rows + result.raw_rows, inserted=result.rows_written,
                         status=Status.OK if result.status == "ok" else Status.WARNING,
                         details={**result.as_dict(), "first": str(first), "last": str(last), "source": source.name})
    log.info("%s: %s, %s adjusted + %s raw rows, %s written", ticker, result.status, result.adjusted_rows,
             result.raw_rows, result.rows_written)
    return result


def backfill_results(dag_id: str, run_id: str, *, hook=None) -> list[dict]:
    """Each ticker's outcome in run ``run_id``: the last ``history_ticker`` row its task wrote."""
    hook = hook or shared_hook()
    return read_frame(hook, "queries/krx/backfill_results.sql",
                      {"dag_id": dag_id, "run_id": run_id, "operation": str(Operation.HISTORY_TICKER)})["details"].tolist()


def summarize_backfill(tickers: list[str], results: list[dict]) -> dict:
    """Tickers ok / empty / failed (no result: the task failed) and rows written."""
    by_ticker = {r["ticker"]: r for r in results if r}
    ok = sorted(t for t, r in by_ticker.items() if r["status"] == "ok")
    empty = sorted(t for t, r in by_ticker.items() if r["status"] == "empty")
    failed = sorted(set(tickers) - set(by_ticker))
    return {"tickers": len(tickers), "ok": len(ok), "empty": len(empty), "failed": len(failed),
            "rows_written": sum(r["rows_written"] for r in by_ticker.values()),
            "adjusted_rows": sum(r["adjusted_rows"] for r in by_ticker.values()),
            "raw_rows": sum(r["raw_rows"] for r in by_ticker.values()),
            "empty_tickers": empty[:100], "failed_tickers": failed[:100]}


def report_backfill(tickers: list[str], window: dict, *, years: int, adjusted_from: str, dag_id: str, run_id: str,
                    hook=None) -> dict:
    """The run's tickers ok / empty / failed and rows written → the log and one journal row."""
    hook = hook or shared_hook()
    summary = summarize_backfill(list(tickers), backfill_results(dag_id, run_id, hook=hook))
    status = Status.FAILED if summary["failed"] else Status.WARNING if summary["empty"] else Status.OK
    Journal(hook).record(history_table(adjusted_from), Operation.HISTORY_BACKFILL,
                         rows_in=summary["adjusted_rows"] + summary["raw_rows"], inserted=summary["rows_written"],
                         status=status, error=f"{summary['failed']} tickers failed" if summary["failed"] else None,
                         details={**summary, **window, "years": years})
    log.info("backfill: %(tickers)s tickers, %(ok)s ok, %(empty)s empty, %(failed)s failed, %(rows_written)s rows "
             "written", summary)
    return summary


def check_backfill(summary: dict) -> None:
    """Fail the run when tickers failed (their loads raised); all-empty is a success with a warning.

    Raised as ``AirflowFailException``: the ticker tasks already used their retries, and the run's
    colour must say that data is missing. The failed tickers are named so they can be cleared.
    """
    from airflow.sdk.exceptions import AirflowFailException

    if summary["failed"]:
        named = ", ".join(summary["failed_tickers"][:20]) + (" …" if summary["failed"] > 20 else "")
        raise AirflowFailException(
            f"{summary['failed']} of {summary['tickers']} tickers failed ({named}); {summary['ok']} ok, "
            f"{summary['empty']} empty. Their load_history logs say why; clear those task instances to retry.")
    if summary["tickers"] and summary["empty"] == summary["tickers"]:
        log.warning("every one of the %s tickers was empty: nothing was loaded (delisted tickers, or a window "
                    "without sessions?)", summary["tickers"])

