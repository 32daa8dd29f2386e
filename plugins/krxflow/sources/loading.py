"""What the KRX DAGs do, as plain functions: source → ``BatchedPostgresHook`` → tables.

The DAG files only wire these together (no SQL, no HTTP there). Every write goes through the
hook, quality figures through ``hook.log_stats``. Every function is idempotent: the same source
rows written twice leave the tables exactly as after the first time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import pandas as pd

from krxflow.sources.base import DAILY_COLUMNS, LISTING_COLUMNS, KrxSource, as_date
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

STOCK_COLUMNS = ["ticker", "name", "market", "isin", "sector", "listed_shares", "market_cap", "first_seen",
                 "last_seen", "delisted", "delisted_on", "updated_at"]
CHANGE_COLUMNS = ["ticker", "changed_on", "field", "old_value", "new_value"]


def session_of(logical_date) -> dt.date:
    """The KST date of a run's ``logical_date`` (``ds`` is UTC and wrong for a KST market).

    Airflow 3 allows runs without a logical date (triggered from the UI or API with none): those
    load the KST date of the run's ``run_after``, i.e. when it was asked for.
    """
    import pendulum

    if logical_date is None:
        try:
            from airflow.sdk import get_current_context

            logical_date = get_current_context()["dag_run"].run_after
        except Exception:  # outside a task: today in KST
            logical_date = pendulum.now("Asia/Seoul")
    return pendulum.instance(logical_date).in_timezone("Asia/Seoul").date()


@lru_cache(maxsize=1)
def shared_hook():
    """One hook per process: it keeps no connection, only the tables' catalog specs (read once)."""
    from krxflow.hooks import BatchedPostgresHook

    return BatchedPostgresHook()


def for_hook(frame: pd.DataFrame) -> pd.DataFrame:
    """``trade_date`` as datetime64 (the hook's vectorised path) instead of Python dates (parsed one by one)."""
    if "trade_date" in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame["trade_date"]):
        frame = frame.assign(trade_date=pd.to_datetime(frame["trade_date"]))
    return frame


def read_frame(hook, query: str, params: dict | None = None) -> pd.DataFrame:
    with hook.get_conn() as conn, conn.cursor() as cur:
        cur.execute(template(query), params or {})
        columns = [c.name for c in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=columns)


# ---------------------------------------------------------------------------- ticker master
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

    day = as_date(day)
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
    # plain dicts: a pandas .loc per listed ticker cost ~1 s a session (2,700 lookups)
    existing = read_frame(hook, "queries/krx/stocks_state.sql").set_index("ticker").to_dict("index")
    now = pd.Timestamp.now(tz="UTC")
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
                widened["delisted_on"] = _gone_on(hook, widened["last_seen"], old["delisted_on"])
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
            gone_on = _gone_on(hook, old["last_seen"], session)
            if not old["delisted"]:
                rows.append({**_current(old, ticker), "delisted": True, "delisted_on": gone_on, "updated_at": now})
                changes.append((ticker, gone_on, "delisted", "false", "true"))
                result.delisted += 1
            elif old["delisted_on"] is None or gone_on < old["delisted_on"]:  # gone already on an earlier session
                rows.append({**_current(old, ticker), "delisted_on": gone_on, "updated_at": now})
    if known_delisted is not None:
        for rec in known_delisted.to_dict("records"):
            if rec["ticker"] in existing or rec["ticker"] in listed:
                continue
            rows.append({**{k: (None if pd.isna(v) else v) for k, v in rec.items()}, "sector": None,
                         "listed_shares": None, "market_cap": None, "first_seen": None, "last_seen": None,
                         "delisted": True, "delisted_on": None, "updated_at": now})
            result.known_delisted_added += 1
    if rows:
        written = hook.upsert("stocks", _dates_for_hook(pd.DataFrame(rows)[STOCK_COLUMNS]), columns=STOCK_COLUMNS)
        result.rows_written = written.rows_written
    if changes:
        hook.append("stock_changes", pd.DataFrame(changes, columns=CHANGE_COLUMNS), columns=CHANGE_COLUMNS)
    log.info("listing of %s: %s", session, result)
    return result


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


# ---------------------------------------------------------------------------- daily prices
def load_daily_prices(source: KrxSource, day, *, hook=None) -> dict:
    """The whole market on session ``day`` → ``daily_prices``, and the ticker master placed on that session.

    The all-market answer names every ticker listed that day (name, market, ...), so the master's
    ``first_seen``/``last_seen``, new listings, delistings, renames and market moves land on the
    sessions they happened (:func:`update_master`), not on the day ``krx_tickers`` last ran.
    """
    day = as_date(day)
    return store_market_day(source.market_day(day), day, hook=hook)


def store_market_day(frame: pd.DataFrame, day: dt.date, *, hook=None, master: bool = True) -> dict:
    """One session's all-market answer (``KrxSource.market_day``) → ``daily_prices``, and (``master``) the
    ticker master placed on that session. The cold start places the master only on the sessions where
    the listing changes (:mod:`krxflow.sources.cold_start`)."""
    hook = hook or shared_hook()
    if frame.empty:
        return {"day": day.isoformat(), "rows_in": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    written = hook.upsert("daily_prices", for_hook(frame[DAILY_COLUMNS]))
    loaded = {"day": day.isoformat(), "rows_in": written.rows_in, "inserted": written.inserted,
              "updated": written.updated, "unchanged": written.unchanged, "rejected": written.rejected}
    if master:
        loaded["master"] = {k: v for k, v in asdict(update_master(frame, day, hook=hook)).items() if k != "day"}
    return loaded


def check_daily_quality(day, *, hook=None) -> dict:
    """Quality figures of session ``day`` of ``daily_prices`` → one ``load_stats`` row (operation quality_check)."""
    from krxflow.calendar import previous_trading_day

    hook = hook or shared_hook()
    day = as_date(day)
    started = time.perf_counter()
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
    status = "warning" if problems else "ok"
    hook.log_stats("daily_prices", "quality_check", rows_in=figures["rows"],
                   rejected=figures["bad_ohlc"] + figures["negative_volume"], seconds=time.perf_counter() - started,
                   status=status, error="; ".join(problems) or None, details={"day": day.isoformat(), **figures})
    log.log(logging.WARNING if problems else logging.INFO, "quality of %s: %s %s", day, status, figures)
    return {"day": day.isoformat(), "status": status, "problems": problems, **figures}


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
    last = previous_trading_day(today or pd.Timestamp.now(tz="Asia/Seoul").date())
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
    listing = source.listing(pd.Timestamp.now(tz="Asia/Seoul").date())
    return sorted(listing["ticker"].tolist())


#: Where the adjusted series of a history backfill comes from.
ADJUSTED_FROM = ("krx", "naver")


def load_ticker_history(source: KrxSource, ticker: str, first, last, *, adjusted_from: str = "krx",
                        hook=None) -> TickerLoad:
    """One ticker's history.

    ``adjusted_from="krx"`` (default): the raw KRX series → ``daily_prices`` (it covers delisted
    tickers), then its factors and adjusted series derived from KRX's base prices
    (:func:`krxflow.sources.adjusting.adjust_tickers`). ``"naver"``: Naver's adjusted series
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
        from krxflow.sources.adjusting import adjust_tickers

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
    hook.log_stats("daily_prices_adjusted" if adjusted_from == "naver" else "daily_prices", "history_ticker",
                   rows_in=result.adjusted_rows + result.raw_rows, inserted=result.rows_written,
                   status="ok" if result.status == "ok" else "warning",
                   details={**result.as_dict(), "first": str(first), "last": str(last), "source": source.name})
    log.info("%s: %s, %s adjusted + %s raw rows, %s written", ticker, result.status, result.adjusted_rows,
             result.raw_rows, result.rows_written)
    return result


def backfill_results(dag_id: str, run_id: str, *, hook=None) -> list[dict]:
    """Each ticker's outcome in run ``run_id``: the last ``history_ticker`` row its task wrote."""
    hook = hook or shared_hook()
    return read_frame(hook, "queries/krx/backfill_results.sql", {"dag_id": dag_id, "run_id": run_id})["details"].tolist()


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

