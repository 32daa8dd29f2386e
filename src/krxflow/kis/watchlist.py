"""Which tickers the intraday poller watches.

Airflow Variables (read at run time, never while parsing a DAG):

* ``kis_watchlist`` — ``"005930,000660"`` (commas/spaces), a JSON list, or ``"all"`` (every listed
  stock in ``stocks``). Unset or empty: the top ``kis_watchlist_size`` stocks by market cap.
* ``kis_watchlist_size`` — N for the default watchlist (default 50).
"""

from __future__ import annotations

import json
import re

DEFAULT_SIZE = 50
_TICKER = re.compile(r"^[0-9A-Z]{6}$")


def parse(value) -> list[str] | str | None:
    """``"all"``, a list of tickers, or None (use the default) from a Variable's text."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        items = [str(v).strip().upper() for v in value]
    else:
        text = str(value).strip()
        if not text:
            return None
        if text.lower() == "all":
            return "all"
        if text.startswith("["):
            try:
                items = [str(v).strip().upper() for v in json.loads(text)]
            except json.JSONDecodeError as exc:
                raise ValueError(f"kis_watchlist is not valid JSON: {exc}") from exc
        else:
            items = [t.upper() for t in re.split(r"[\s,;]+", text) if t]
    bad = [t for t in items if not _TICKER.match(t)]
    if bad:
        raise ValueError(f"kis_watchlist holds values that are not 6-character tickers: {bad[:10]}")
    return list(dict.fromkeys(items))


def resolve(conn, value=None, size=None) -> list[str]:
    """The tickers to poll: the Variable's list, ``all`` listed stocks, or the top ``size`` by market cap."""
    from krxflow.sqlfiles import template

    parsed = parse(value)
    if isinstance(parsed, list):
        return parsed
    if parsed == "all":
        tickers = [r[0] for r in conn.execute(template("queries/kis/all_listed.sql")).fetchall()]
    else:
        limit = DEFAULT_SIZE if size in (None, "") else int(size)
        if limit < 1:
            raise ValueError("kis_watchlist_size must be at least 1")
        tickers = [r[0] for r in conn.execute(template("queries/kis/top_by_market_cap.sql"),
                                              {"limit": limit}).fetchall()]
    if not tickers:
        raise ValueError("the KIS watchlist is empty: the stocks table has no listed stocks with a market cap "
                         "yet (run the ticker-master DAG first) or set the Variable kis_watchlist")
    return tickers


def from_variables(conn) -> list[str]:
    """:func:`resolve` with the Variables ``kis_watchlist`` and ``kis_watchlist_size``."""
    from airflow.sdk import Variable

    return resolve(conn, Variable.get("kis_watchlist", default=None),
                   Variable.get("kis_watchlist_size", default=DEFAULT_SIZE))
