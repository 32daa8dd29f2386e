"""The sample market's other daily reports: indices, investor trading, fundamentals, shorts, foreign ownership.

Deterministic (the same market, day and ticker count give the same rows) and consistent with the
sample prices of :class:`~krxflow.sample.market.SampleMarket`:

* **indices** are capitalisation ratios of their members' prices of the day:
  ``level = 1000 × Σ price × listed shares / Σ reference cap`` over the members trading that day
  (halted members count at their close), so that low ≤ open, close ≤ high always holds; volume,
  value and market cap are the members' sums. The change is against the previous session's level;
* **investor trading** splits each ticker's volume and value among the :data:`INVESTOR_TYPES`,
  buys and sells separately, in whole shares and won: buys and sells both add up to the day's
  volume and value exactly, so net buys sum to zero across investor types (as every trade has a
  buyer and a seller). Tickers that did not trade have no rows;
* **fundamentals** come from yearly EPS/BPS/DPS per ticker (in the raw units of the day, so they
  follow splits) and the day's close: ``PER = close / EPS``, ``PBR = close / BPS``,
  ``yield = DPS / close``. Loss makers have no EPS and no PER (KRX's ``-``);
* **short selling** and **short balances** for the shortable tickers (about 85 %; the others have
  no rows), the short volume a share of the day's volume;
* **foreign ownership** for every ticker; a few have a 49 % foreign limit.
"""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import pandas as pd

from krxflow.sample.market_universe import SECTOR_INDICES, members_mask
from krxflow.krx.interface import (FOREIGN_OWNERSHIP_COLUMNS, FUNDAMENTAL_COLUMNS, INDEX_PRICE_COLUMNS,
                                  INVESTOR_COLUMNS, INVESTOR_TYPES, SHORT_BALANCE_COLUMNS, SHORT_SELLING_COLUMNS)

#: The sample indices: group, finder_equidx full_code and short_code, name, and who is a member
#: (universe position, market of the day): numpy arrays, one element per ticker of the day.
#: KOSPI 200, KOSDAQ 150, KRX 300 and the sector indices take their members from
#: :mod:`krxflow.sample.market_universe` (constituent changes on the rebalance dates; industries)
#: instead: their rule here is not used.
SAMPLE_INDICES = (
    ("KRX", "5", "300", "KRX 300", lambda pos, market: pos % 2 == 0),
    ("KRX", "5", "042", "KRX 100", lambda pos, market: pos % 5 == 0),
    ("KOSPI", "1", "001", "코스피", lambda pos, market: market == "KOSPI"),
    ("KOSPI", "1", "002", "코스피 대형주", lambda pos, market: (market == "KOSPI") & (pos % 2 == 0)),
    ("KOSPI", "1", "028", "코스피 200", lambda pos, market: (market == "KOSPI") & (pos % 3 == 0)),
    ("KOSDAQ", "2", "001", "코스닥", lambda pos, market: market == "KOSDAQ"),
    ("KOSDAQ", "2", "203", "코스닥 150", lambda pos, market: (market == "KOSDAQ") & (pos % 3 == 0)),
) + tuple((group, full, short, name, None) for group, full, short, name in SECTOR_INDICES)
#: Relative weight of each investor type in the sample's trading (individuals trade most).
_INVESTOR_WEIGHTS = np.array([1.5, 0.3, 0.4, 0.3, 0.1, 0.1, 0.6, 0.5, 4.0, 2.0, 0.1])
#: Universe positions every this many have a 49 % foreign ownership limit.
_LIMITED_EVERY = 50


def index_code(full_code: str, short_code: str) -> str:
    """The index code pykrx and krxflow use: finder_equidx ``full_code`` + ``short_code`` (e.g. 1001)."""
    return f"{full_code}{short_code}"


def _unit(tickers, salt: str) -> np.ndarray:
    """A deterministic number in [0, 1) per ticker."""
    return np.array([zlib.crc32(f"krxflow-sample:{t}:{salt}".encode()) / 2**32 for t in tickers])


def _daily(market, day: dt.date, salt: str, columns: int = 1) -> np.ndarray:
    """Per-day noise in [0, 1), one row per universe position (the same for any prefix of the universe)."""
    rng = np.random.default_rng(zlib.crc32(f"krxflow-sample:{salt}:{day.isoformat()}".encode()))
    return rng.random((len(market.tickers), columns))


def _positions(market, tickers) -> np.ndarray:
    return np.array([market.index[t] for t in tickers], dtype=np.int64)


def _day_frame(market, day: dt.date) -> pd.DataFrame:
    return market.day(day)


# ---------------------------------------------------------------------------- indices
_REFERENCE_CAPS: dict[int, np.ndarray] = {}


def _reference_caps(market) -> np.ndarray:
    """``base price × shares`` of every ticker of the universe, by position (computed once per market size:
    a per-ticker loop each session cost most of an index day)."""
    caps = _REFERENCE_CAPS.get(market.count)
    if caps is None:
        caps = np.array([market.profile(t).base_price * market.profile(t).shares for t in market.tickers])
        _REFERENCE_CAPS[market.count] = caps
    return caps


def _index_levels(market, day: dt.date) -> pd.DataFrame:
    frame = _day_frame(market, day)
    if frame.empty:
        return pd.DataFrame(columns=["index_code", "open", "high", "low", "close", "volume", "trading_value",
                                     "market_cap"])
    positions = _positions(market, frame["ticker"])
    reference = _reference_caps(market)[positions]
    shares = frame["listed_shares"].to_numpy(dtype="float64")
    close = frame["close"].to_numpy(dtype="float64")
    prices = {col: frame[col].astype("Float64").fillna(pd.Series(close, index=frame.index)).to_numpy(dtype="float64")
              for col in ("open", "high", "low")}
    prices["close"] = close
    rows = []
    for group, full, short, name, member in SAMPLE_INDICES:
        picked = members_mask(market, index_code(full, short), frame, day)
        if picked is None:
            picked = np.asarray(member(positions, frame["market"].to_numpy(dtype=object)), dtype=bool)
        if not picked.any():
            continue
        base = reference[picked].sum()
        level = {col: round(1000 * float((prices[col][picked] * shares[picked]).sum()) / base, 2) for col in prices}
        rows.append({"index_code": index_code(full, short), **level,
                     "volume": int(frame["volume"].to_numpy()[picked].sum()),
                     "trading_value": int(frame["trading_value"].to_numpy()[picked].sum()),
                     "market_cap": int(frame["market_cap"].to_numpy()[picked].sum())})
    return pd.DataFrame(rows)


def index_master() -> pd.DataFrame:
    """The sample's index master: ``index_code, name, index_group`` (plus finder codes)."""
    return pd.DataFrame([{"index_code": index_code(full, short), "name": name, "index_group": group,
                          "full_code": full, "short_code": short} for group, full, short, name, _ in SAMPLE_INDICES])


def index_prices(market, day: dt.date) -> pd.DataFrame:
    """:data:`INDEX_PRICE_COLUMNS` plus ``name``/``index_group`` of every sample index on session ``day``."""
    from krxflow.calendar import previous_trading_day

    columns = INDEX_PRICE_COLUMNS + ["name", "index_group"]
    today = _index_levels(market, day)
    if today.empty:
        return pd.DataFrame(columns=columns)
    before = _index_levels(market, previous_trading_day(day)).set_index("index_code")["close"]
    previous = today["index_code"].map(before).astype("float64")
    today["change"] = (today["close"] - previous).round(2)
    today["change_rate"] = ((today["close"] - previous) / previous * 100).round(2)
    today["trade_date"] = day
    master = index_master().set_index("index_code")
    today["name"] = today["index_code"].map(master["name"])
    today["index_group"] = today["index_code"].map(master["index_group"])
    return today[columns].reset_index(drop=True)


# ---------------------------------------------------------------------------- investors
def _allocate(total: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Split each integer ``total`` by its row of ``weights`` into integers that add up exactly."""
    share = total[:, None].astype("float64") * weights
    whole = np.floor(share).astype(np.int64)
    remainder = total - whole.sum(axis=1)
    rank = np.argsort(np.argsort(-(share - whole), axis=1, kind="stable"), axis=1, kind="stable")
    return whole + (rank < remainder[:, None])


def investor_trading(market, day: dt.date) -> pd.DataFrame:
    """:data:`INVESTOR_COLUMNS` for every ticker that traded on session ``day``, one row per investor type."""
    frame = _day_frame(market, day)
    if frame.empty:
        return pd.DataFrame(columns=INVESTOR_COLUMNS)
    frame = frame[frame["volume"] > 0].reset_index(drop=True)
    positions = _positions(market, frame["ticker"])
    noise = _daily(market, day, "investors", 2 * len(INVESTOR_TYPES))[positions]
    kinds = len(INVESTOR_TYPES)
    buy_w = _INVESTOR_WEIGHTS * (0.2 + noise[:, :kinds] ** 2)
    sell_w = _INVESTOR_WEIGHTS * (0.2 + noise[:, kinds:] ** 2)
    buy_w /= buy_w.sum(axis=1, keepdims=True)
    sell_w /= sell_w.sum(axis=1, keepdims=True)
    volume = frame["volume"].to_numpy(dtype=np.int64)
    value = frame["trading_value"].to_numpy(dtype=np.int64)
    buy_volume, sell_volume = _allocate(volume, buy_w), _allocate(volume, sell_w)
    buy_value, sell_value = _allocate(value, buy_w), _allocate(value, sell_w)
    n = len(frame)
    out = pd.DataFrame({
        "ticker": np.repeat(frame["ticker"].to_numpy(), kinds),
        "trade_date": day,
        "investor": np.tile(np.array(list(INVESTOR_TYPES.values()), dtype=object), n),
        "sell_volume": sell_volume.ravel(), "buy_volume": buy_volume.ravel(),
        "net_volume": (buy_volume - sell_volume).ravel(),
        "sell_value": sell_value.ravel(), "buy_value": buy_value.ravel(),
        "net_value": (buy_value - sell_value).ravel(),
    })
    return out[INVESTOR_COLUMNS]


# ---------------------------------------------------------------------------- fundamentals
def _fiscal_year(day: dt.date) -> int:
    """The year whose annual report KRX's figures use on ``day`` (published by the end of March)."""
    return day.year - 1 if day.month >= 4 else day.year - 2


def fundamentals(market, day: dt.date) -> pd.DataFrame:
    """:data:`FUNDAMENTAL_COLUMNS` of every ticker listed on session ``day``."""
    from krxflow.sample.sessions import session_index

    frame = _day_frame(market, day)
    if frame.empty:
        return pd.DataFrame(columns=FUNDAMENTAL_COLUMNS)
    tickers = frame["ticker"].tolist()
    year = _fiscal_year(day)
    i = session_index(day)
    # Per-share figures in today's units, then in the raw units of the day (they follow splits).
    reference = np.array([market.profile(t).base_price for t in tickers])
    cum = np.array([_cum(market, t, i) for t in tickers])
    earnings_yield = _unit(tickers, f"eps{year}") * 0.22 - 0.04  # -4 % .. 18 %
    eps = np.rint(reference * earnings_yield * cum)
    bps = np.rint(reference * (0.3 + 1.2 * _unit(tickers, f"bps{year}")) * cum)
    payout = _unit(tickers, f"dps{year}")
    dps = np.where((payout > 0.4) & (eps > 0), np.rint(eps * payout * 0.5 / 10) * 10, 0)
    close = frame["close"].to_numpy(dtype="float64")
    loss = eps <= 0
    out = pd.DataFrame({
        "ticker": tickers, "trade_date": day,
        "eps": pd.array(np.where(loss, 0, eps).astype(np.int64), dtype="Int64"),
        "per": np.round(close / np.where(loss, np.nan, eps), 2),
        "bps": pd.array(bps.astype(np.int64), dtype="Int64"),
        "pbr": np.round(close / bps, 2),
        "dps": pd.array(dps.astype(np.int64), dtype="Int64"),
        "dividend_yield": np.round(dps / close * 100, 2),
    })
    out.loc[loss, "eps"] = pd.NA
    return out[FUNDAMENTAL_COLUMNS]


def _cum(market, ticker: str, i: int) -> float:
    """``cum`` of one ticker on session ``i`` without computing its whole path (no event: 1)."""
    p = market.profile(ticker)
    return market.series(ticker)["cum"][i] if p.events else 1.0


# ---------------------------------------------------------------------------- shorts
def _shortable(market, tickers) -> np.ndarray:
    return _unit(tickers, "shortable") < 0.85


def short_selling(market, day: dt.date) -> pd.DataFrame:
    """:data:`SHORT_SELLING_COLUMNS` of the shortable tickers listed on session ``day``."""
    frame = _day_frame(market, day)
    if frame.empty:
        return pd.DataFrame(columns=SHORT_SELLING_COLUMNS)
    frame = frame[_shortable(market, frame["ticker"])].reset_index(drop=True)
    share = _daily(market, day, "short")[_positions(market, frame["ticker"]), 0] * 0.06
    volume = frame["volume"].to_numpy(dtype=np.int64)
    value = frame["trading_value"].to_numpy(dtype=np.int64)
    short_volume = np.rint(volume * share).astype(np.int64)
    average = np.divide(value, volume, out=np.zeros(len(frame)), where=volume > 0)
    short_value = np.minimum(np.rint(short_volume * average).astype(np.int64), value)
    return pd.DataFrame({"ticker": frame["ticker"], "trade_date": day, "short_volume": short_volume,
                         "volume": volume, "short_value": short_value, "trading_value": value})[SHORT_SELLING_COLUMNS]


def short_balance(market, day: dt.date) -> pd.DataFrame:
    """:data:`SHORT_BALANCE_COLUMNS` of the shortable tickers listed on session ``day``."""
    frame = _day_frame(market, day)
    if frame.empty:
        return pd.DataFrame(columns=SHORT_BALANCE_COLUMNS)
    frame = frame[_shortable(market, frame["ticker"])].reset_index(drop=True)
    level = _unit(frame["ticker"], "short-balance") * 0.02
    drift = 0.7 + 0.6 * _daily(market, day, "short-balance")[_positions(market, frame["ticker"]), 0]
    listed = frame["listed_shares"].to_numpy(dtype=np.int64)
    close = frame["close"].to_numpy(dtype=np.int64)
    quantity = np.rint(listed * level * drift).astype(np.int64)
    return pd.DataFrame({"ticker": frame["ticker"], "trade_date": day, "balance_quantity": quantity,
                         "balance_value": quantity * close, "listed_shares": listed, "market_cap": listed * close,
                         "balance_ratio": np.round(quantity / listed * 100, 2)})[SHORT_BALANCE_COLUMNS]


# ---------------------------------------------------------------------------- foreign ownership
def foreign_ownership(market, day: dt.date) -> pd.DataFrame:
    """:data:`FOREIGN_OWNERSHIP_COLUMNS` of every ticker listed on session ``day``."""
    frame = _day_frame(market, day)
    if frame.empty:
        return pd.DataFrame(columns=FOREIGN_OWNERSHIP_COLUMNS)
    positions = _positions(market, frame["ticker"])
    listed = frame["listed_shares"].to_numpy(dtype=np.int64)
    limited = positions % _LIMITED_EVERY == 7
    limit = np.where(limited, np.floor(listed * 0.49), listed).astype(np.int64)
    share = _unit(frame["ticker"], "foreign") * 0.55 * (0.95 + 0.1 * _daily(market, day, "foreign")[positions, 0])
    held = np.minimum(np.rint(listed * share).astype(np.int64), limit)
    return pd.DataFrame({"ticker": frame["ticker"], "trade_date": day, "listed_shares": listed, "foreign_held": held,
                         "foreign_share_rate": np.round(held / listed * 100, 2), "foreign_limit": limit,
                         "limit_exhaustion_rate": np.round(held / limit * 100, 2)})[FOREIGN_OWNERSHIP_COLUMNS]
