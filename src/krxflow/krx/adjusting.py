"""Keep ``adjustment_factors`` and ``daily_prices_adjusted`` current from ``daily_prices``.

The derivation is :mod:`krxflow.adjustment` (pure numpy); this module reads what it needs,
decides what changed and writes through ``BatchedPostgresHook``. No request to KRX or Naver:
the base prices come with the raw rows.

* :func:`adjust_session` — after a session's raw rows are loaded (``krx_daily_prices``, also
  in a by-date backfill, in any order): finds the ex-dates on that session and on each ticker's
  next loaded row, rewrites the whole adjusted history of the tickers whose factors changed,
  and writes that session's adjusted rows for every other ticker.
* :func:`adjust_tickers` — the full adjusted history and factors of some tickers (the
  per-ticker history backfill, and the tickers whose factors changed).
* :func:`adjust_market` — every ticker, in batches (a cold start, a repair).
* :func:`cross_check` — the derived series against KRX's own adjusted prices, for the tickers
  with a new ex-date on the session (and a small rotating sample on scheduled runs): one KRX
  request per ticker checked, so a 5-year by-date backfill adds one per ex-date.

Every function is idempotent: run twice, the second run writes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from krxflow.market_time import kst_date
from krxflow.adjustment import FACTOR_COLUMNS, adjusted_series, detect_factors
from krxflow.journal import Entry, Journal, Operation, Status
from krxflow.krx.tables import for_hook, read_frame, shared_hook

log = logging.getLogger(__name__)

#: Tickers per batch of :func:`adjust_market`: ~120k raw rows for 5 years, read as Python objects
#: (``Decimal`` prices) — ~130 MB on top of the task's ~250 MB of imports; 250 a batch took the cold
#: start's task to 588 MB.
MARKET_BATCH = 100
_ROW_COLUMNS = ["ticker", "trade_date", "close", "base_price", "listed_shares"]
#: Calendar days before the ex-date that the cross-check compares.
CHECK_WINDOW_DAYS = 45
#: Won of difference between krxflow's 4-decimal prices and KRX's whole-won ones still counted as rounding.
CHECK_TOLERANCE = 1.0


@dataclass
class AdjustResult:
    """What one adjustment pass did."""

    tickers: int = 0
    rows: int = 0
    factors_found: int = 0
    factors_written: int = 0
    rewritten: list[str] = field(default_factory=list)
    rows_written: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rewritten": self.rewritten[:100]}


def _sessions() -> np.ndarray:
    from krxflow.calendar import sessions

    return sessions().days


def adjust_tickers(tickers: list[str], *, hook=None, raw: pd.DataFrame | None = None) -> AdjustResult:
    """Derive the factors and the whole adjusted history of ``tickers`` from their raw rows.

    ``raw``: every raw row of these tickers when the caller holds them already (the per-ticker
    backfill that just wrote them): no read-back. By default they are read from ``daily_prices``.
    """
    hook = hook or shared_hook()
    started = time.perf_counter()
    result = AdjustResult(tickers=len(tickers))
    if not tickers:
        return result
    if raw is None:
        raw = read_frame(hook, "queries/adjust/raw_of.sql", {"tickers": list(tickers)})
    result.rows = len(raw)
    factors = detect_factors(raw[_ROW_COLUMNS], _sessions())
    result.factors_found = len(factors)
    if len(factors):
        result.factors_written = hook.upsert("adjustment_factors", factors).rows_written
    if len(raw):
        result.rows_written = hook.upsert("daily_prices_adjusted", for_hook(adjusted_series(raw, factors))).rows_written
    result.seconds = time.perf_counter() - started
    return result


def adjust_session(day, *, hook=None) -> AdjustResult:
    """Bring factors and adjusted rows up to date after session ``day``'s raw rows were loaded."""
    hook = hook or shared_hook()
    day = kst_date(day)
    started = time.perf_counter()
    rows = read_frame(hook, "queries/adjust/session_rows.sql", {"day": day})
    result = AdjustResult(tickers=len(rows), rows=len(rows))
    if rows.empty:
        return result
    candidates = detect_factors(_neighbourhood(rows), _sessions())
    candidates = candidates[(candidates["ex_date"] == day) | candidates["previous_date"].eq(day)]
    result.factors_found = len(candidates)
    changed = _changed_factors(hook, candidates)
    if len(changed):
        result.factors_written = hook.upsert("adjustment_factors", changed[FACTOR_COLUMNS]).rows_written
        result.rewritten = sorted(changed["ticker"].unique())
        result.rows_written += adjust_tickers(result.rewritten, hook=hook).rows_written
    # every other ticker: the session's row, times the factors of its later ex-dates (if any)
    raw = read_frame(hook, "queries/adjust/raw_on.sql", {"day": day})
    raw = raw[~raw["ticker"].isin(result.rewritten)]
    later = read_frame(hook, "queries/adjust/factors_after.sql", {"day": day})
    if len(raw):
        result.rows_written += hook.upsert("daily_prices_adjusted",
                                           for_hook(adjusted_series(raw, later))).rows_written
    result.seconds = time.perf_counter() - started
    Journal(hook).record("daily_prices_adjusted", Operation.ADJUST_SESSION, rows_in=result.rows,
                         inserted=result.rows_written, seconds=result.seconds,
                         details={"day": day.isoformat(), **result.as_dict()})
    log.info("adjusted %s: %s tickers, %s factors found, %s rewritten, %s rows written in %.2fs", day,
             result.tickers, result.factors_found, len(result.rewritten), result.rows_written, result.seconds)
    return result


def adjust_market(*, hook=None, batch: int = MARKET_BATCH) -> AdjustResult:
    """Every ticker's factors and adjusted history, :data:`MARKET_BATCH` tickers at a time."""
    hook = hook or shared_hook()
    started = time.perf_counter()
    tickers = read_frame(hook, "queries/adjust/tickers.sql")["ticker"].tolist()
    total = AdjustResult(tickers=len(tickers))
    for i in range(0, len(tickers), batch):
        part = adjust_tickers(tickers[i:i + batch], hook=hook)
        total.rows += part.rows
        total.factors_found += part.factors_found
        total.factors_written += part.factors_written
        total.rows_written += part.rows_written
        log.info("adjusted %s of %s tickers", min(i + batch, len(tickers)), len(tickers))
    total.seconds = time.perf_counter() - started
    return total


def _neighbourhood(rows: pd.DataFrame) -> pd.DataFrame:
    """The session's rows with each ticker's previous and next rows, as one frame of raw rows."""
    def part(prefix: str) -> pd.DataFrame:
        date, close, base, shares = (f"{prefix}date", f"{prefix}close", f"{prefix}base", f"{prefix}shares")
        if prefix == "":
            date, close, base, shares = "trade_date", "close", "base_price", "listed_shares"
        frame = rows[["ticker", date, close, base, shares]].set_axis(_ROW_COLUMNS, axis=1)
        return frame[frame["trade_date"].notna()]

    return pd.concat([part("prev_"), part(""), part("next_")], ignore_index=True)


def _changed_factors(hook, candidates: pd.DataFrame) -> pd.DataFrame:
    """The candidate factors that are not stored yet, or stored with other values."""
    if candidates.empty:
        return candidates
    stored = read_frame(hook, "queries/adjust/factors_of.sql", {"tickers": sorted(candidates["ticker"].unique())})
    key = ["ticker", "ex_date"]
    merged = candidates.merge(stored[key + ["previous_close", "base_price"]], on=key, how="left",
                              suffixes=("", "_stored"))
    same = (merged["previous_close"] == merged["previous_close_stored"]) & (merged["base_price"] == merged["base_price_stored"])
    return merged[~same.fillna(False)][FACTOR_COLUMNS]


def cross_check(source, day, *, rotating: int = 0, hook=None) -> dict:
    """Compare the adjusted series with KRX's own adjusted prices around session ``day``.

    Checked: every ticker with an ex-date on ``day``, plus ``rotating`` tickers picked from the
    session's rows by the date (a different few each day; 0 in backfills, to keep within the
    request budget). Differences beyond :data:`CHECK_TOLERANCE` won and flagged factors go to
    the journal (operation ``adjust_cross_check``, status ``warning``) with ticker and dates.
    """
    hook = hook or shared_hook()
    day = kst_date(day)
    factors = read_frame(hook, "queries/adjust/factors_on.sql", {"day": day})
    tickers = list(factors["ticker"])
    if rotating:
        listed = read_frame(hook, "queries/adjust/raw_on.sql", {"day": day})["ticker"].sort_values().tolist()
        picked = [t for t in listed if t not in tickers]
        if picked:
            start = day.toordinal() * rotating % len(picked)
            tickers += [picked[(start + i) % len(picked)] for i in range(min(rotating, len(picked)))]
    first = day - dt.timedelta(days=CHECK_WINDOW_DAYS)
    mismatches: dict[str, list[dict]] = {}
    for ticker in tickers:
        isin = read_frame(hook, "queries/krx/ticker_isin.sql", {"ticker": ticker})
        reference = source.krx_adjusted(ticker, first, day, isin=isin["isin"].iloc[0] if len(isin) else None)
        ours = read_frame(hook, "queries/adjust/adjusted_of.sql", {"ticker": ticker, "first": first, "last": day})
        both = ours.merge(reference[["trade_date", "close"]], on="trade_date", suffixes=("", "_krx"))
        off = both[(both["close"].astype("float64") - both["close_krx"].astype("float64")).abs() > CHECK_TOLERANCE]
        if len(both) < len(reference):
            mismatches.setdefault(ticker, []).append({"missing_days": len(reference) - len(both)})
        for r in off.head(10).itertuples(index=False):
            mismatches.setdefault(ticker, []).append(
                {"trade_date": r.trade_date.isoformat(), "ours": float(r.close), "krx": float(r.close_krx)})
    flagged = [{"ticker": f.ticker, "ex_date": f.ex_date.isoformat(), "note": f.note}
               for f in factors.itertuples(index=False) if f.flagged]
    entry = Entry("daily_prices_adjusted", Operation.ADJUST_CROSS_CHECK, rows_in=len(tickers),
                  details={"day": day.isoformat(), "checked": tickers, "mismatches": mismatches,
                           "flagged": flagged, "source": source.name})
    entry.warn([f"adjusted series differs from KRX's for {sorted(mismatches)}"] if mismatches else
               [f"flagged factors: {[f['ticker'] for f in flagged]}"] if flagged else [])
    Journal(hook).write(entry)
    if entry.status == Status.WARNING:
        log.warning("cross-check of %s: mismatches %s, flagged %s", day, mismatches, flagged)
    return {"checked": len(tickers), "mismatches": len(mismatches), "flagged": len(flagged)}

