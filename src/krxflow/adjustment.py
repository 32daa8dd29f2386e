"""Adjustment factors and the adjusted series, derived from KRX's own base prices (pure, vectorised).

KRX publishes each day's change against a **base price** (기준가). It is the previous close,
except on an ex-date (split, share consolidation, bonus or rights issue, merger), where KRX sets
another base. So, on every ex-date::

    factor = base price / previous trading row's close     (the previous row may be days back: halts)

and the adjusted price of day *d* is the raw price times the product of the factors of every
ex-date after *d* — the ratio method of KRX's and vendors' 수정주가. Volumes are divided by the same
product. The adjusted day-on-day change equals KRX's own change against the base, so the raw
``change_rate`` carries over unchanged. Ordinary cash dividends get no new base price in Korea
(since 1998): this is a split/rights-adjusted series, not a total-return one.

Each factor is classified against the change in listed shares, because a base price can hold a
market move (the opening auction of a relisting after a consolidation, a rights issue priced
above the market):

* ``split`` / ``reverse_split`` — listed shares change by the inverse factor on the ex-date;
* ``rights_or_bonus`` — factor < 1 with shares unchanged that day (the new shares list weeks later);
* ``unexplained`` — anything else.

A factor whose shares change does not explain it (beyond :data:`SHARES_TOLERANCE`) is
``flagged``: applied like KRX does, but shown for checking (Grafana, the read API, the
cross-check against KRX's own adjusted prices).

Everything here is numpy/pandas over many tickers at once: no database, no network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: ``adjustment_factors`` columns.
FACTOR_COLUMNS = ["ticker", "ex_date", "previous_date", "previous_close", "base_price", "factor", "shares_before",
                  "shares_after", "kind", "flagged", "note"]
#: How far factor × (shares after / shares before) may be from 1 and still count as explained.
SHARES_TOLERANCE = 0.02
#: Decimals of stored adjusted prices (``daily_prices_adjusted`` is numeric(18, 4)).
PRICE_DECIMALS = 4
_PRICES = ("open", "high", "low", "close")


def detect_factors(rows: pd.DataFrame, sessions: np.ndarray | None = None) -> pd.DataFrame:
    """The ex-dates in ``rows`` (``ticker, trade_date, close, base_price, listed_shares``; any order).

    A row is an ex-date when its base price is known and differs from the close of the ticker's
    previous row in ``rows``. The first row of a ticker has no previous close: never an ex-date.
    With ``sessions`` (every XKRX session, ``datetime64[D]``), the previous row must be the previous
    session: KRX lists every listed ticker every session (halted ones with volume 0), so a gap means
    rows not loaded yet (a by-date backfill out of order) — no factor is guessed across it; the
    day that fills the gap finds it. Returns :data:`FACTOR_COLUMNS`, sorted by ticker and ex-date.
    """
    if rows.empty:
        return pd.DataFrame(columns=FACTOR_COLUMNS)
    rows = rows.sort_values(["ticker", "trade_date"], kind="stable")
    ticker = rows["ticker"].to_numpy()
    same = np.zeros(len(rows), dtype=bool)
    same[1:] = ticker[1:] == ticker[:-1]
    close = pd.to_numeric(rows["close"]).astype("float64").to_numpy()
    base = pd.to_numeric(rows["base_price"]).astype("float64").to_numpy()
    shares = pd.to_numeric(rows["listed_shares"]).astype("float64").to_numpy()
    prev_close = np.concatenate([[np.nan], close[:-1]])
    prev_shares = np.concatenate([[np.nan], shares[:-1]])
    prev_date = np.concatenate([[None], rows["trade_date"].to_numpy()[:-1]])
    hit = same & ~np.isnan(base) & (prev_close > 0) & (base > 0) & (base != prev_close)
    if sessions is not None:
        position = np.searchsorted(sessions, _ordinals(rows["trade_date"]).astype("datetime64[D]"))
        hit[1:] &= position[1:] - position[:-1] == 1
    if not hit.any():
        return pd.DataFrame(columns=FACTOR_COLUMNS)
    factor = base[hit] / prev_close[hit]
    before, after = prev_shares[hit], shares[hit]
    kind, flagged, note = classify(factor, before, after)
    return pd.DataFrame({
        "ticker": ticker[hit], "ex_date": rows["trade_date"].to_numpy()[hit], "previous_date": prev_date[hit],
        "previous_close": prev_close[hit].astype("int64"), "base_price": base[hit].astype("int64"),
        "factor": np.round(factor, 12),
        "shares_before": pd.array(np.where(np.isnan(before), None, before), dtype="Int64"),
        "shares_after": pd.array(np.where(np.isnan(after), None, after), dtype="Int64"),
        "kind": kind, "flagged": flagged, "note": note,
    })[FACTOR_COLUMNS].reset_index(drop=True)


def classify(factor: np.ndarray, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kind, flag and a note for each factor, from the change in listed shares on its ex-date."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = after / before
    known = ~np.isnan(ratio) & (ratio > 0)
    changed = known & (np.abs(ratio - 1) > 1e-9)
    explained = changed & (np.abs(factor * ratio - 1) <= SHARES_TOLERANCE)
    kind = np.where(changed & (ratio > 1), "split",
                    np.where(changed & (ratio < 1), "reverse_split",
                             np.where(known & ~changed & (factor < 1), "rights_or_bonus", "unexplained")))
    flagged = ~(explained | (kind == "rights_or_bonus"))
    note = np.full(len(factor), None, dtype=object)
    for i in np.flatnonzero(flagged):
        if changed[i]:
            note[i] = (f"factor {factor[i]:.6g} vs shares x{ratio[i]:.6g}: {factor[i] * ratio[i] - 1:+.1%} beyond "
                       f"the change in shares (opening auction or market move?)")
        elif known[i]:
            note[i] = f"factor {factor[i]:.6g} > 1 with listed shares unchanged"
        else:
            note[i] = f"factor {factor[i]:.6g} with listed shares unknown"
    return kind, flagged, note


def adjusted_series(raw: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """``raw`` daily rows (any tickers) adjusted by ``factors`` (``ticker, ex_date, base_price, previous_close``).

    Each price is multiplied by the product of ``base_price / previous_close`` over the ticker's
    ex-dates after its day (rounded to :data:`PRICE_DECIMALS`), the volume divided by it (whole
    shares); ``change_rate`` is KRX's change against the base, which is the adjusted change.
    Returns ``ticker, trade_date, open, high, low, close, volume, change_rate``.
    """
    columns = ["ticker", "trade_date", *_PRICES, "volume", "change_rate"]
    if raw.empty:
        return pd.DataFrame(columns=columns)
    multiplier = multipliers(raw["ticker"], raw["trade_date"], factors)
    out = pd.DataFrame({"ticker": raw["ticker"].to_numpy(), "trade_date": raw["trade_date"].to_numpy()})
    for col in _PRICES:
        values = pd.to_numeric(raw[col]).astype("float64").to_numpy()
        out[col] = np.round(values * multiplier, PRICE_DECIMALS)
    volume = pd.to_numeric(raw["volume"]).astype("float64").to_numpy()
    out["volume"] = np.rint(volume / multiplier).astype("int64")
    out["change_rate"] = raw["change_rate"].to_numpy()
    return out


def multipliers(tickers: pd.Series, days: pd.Series, factors: pd.DataFrame) -> np.ndarray:
    """For each (ticker, day): the product of the ticker's factors with an ex-date after the day."""
    result = np.ones(len(tickers))
    if factors.empty or not len(tickers):
        return result
    factors = factors.sort_values(["ticker", "ex_date"], kind="stable")
    codes, uniques = pd.factorize(pd.concat([factors["ticker"], tickers], ignore_index=True).astype(str))
    f_code, r_code = codes[:len(factors)], codes[len(factors):]
    f_day = _ordinals(factors["ex_date"])
    r_day = _ordinals(days)
    ratio = (pd.to_numeric(factors["base_price"]).astype("float64").to_numpy()
             / pd.to_numeric(factors["previous_close"]).astype("float64").to_numpy())
    # the product of this and every later factor of the same ticker (a suffix product per ticker)
    suffix = pd.Series(ratio[::-1]).groupby(f_code[::-1]).cumprod().to_numpy()[::-1]
    span = 1 << 32
    f_key = f_code.astype(np.int64) * span + f_day
    r_key = r_code.astype(np.int64) * span + r_day
    first_after = np.searchsorted(f_key, r_key, side="right")  # the first ex-date after the day
    inside = first_after < len(f_key)
    inside[inside] &= f_code[first_after[inside]] == r_code[inside]
    result[inside] = suffix[first_after[inside]]
    return result


def _ordinals(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[D]").astype(np.int64)
