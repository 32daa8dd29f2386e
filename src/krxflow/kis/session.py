"""The plan of one intraday polling run: which tickers, from when to when, in which windows.

Computed in the DAG's first task from the run's session date (``logical_date`` in KST), the
XKRX calendar and these settings — a run's Param wins over the Airflow Variable of the same
meaning, which wins over the default:

================  ========================  ==========  ==============================================
Param             Variable                  default     meaning
================  ========================  ==========  ==============================================
watchlist         ``kis_watchlist``         (top N)     tickers, ``all``, or empty for the top N by cap
watchlist_size    ``kis_watchlist_size``    50          N
window_seconds    ``kis_window_seconds``    300         length of one polling window
session_end       ``kis_session_end``       ``close``   ``close`` (15:30) or ``HH:MM`` KST (after-hours)
demo_seconds      ``kis_demo_seconds``      0           >0: poll now for this long, ignoring the clock
order_books       ``kis_order_books``       true        also poll the 10-level order book
venue             ``kis_venue``             ``KRX``     ``KRX`` (09:00–15:30, TRs ``J``/``H0ST*``) or
                                                        ``KRX+NXT`` (08:00–20:00, KIS's combined ``UN``/``H0UN*``)
ws_cap            ``kis_ws_cap``            40          WebSocket registrations per session (all TRs)
ws_books          ``kis_ws_books``          20          of those, order books (the rest: trades)
ws_window_seconds ``kis_ws_window_seconds`` 0           realtime trigger window (0: the whole session)
================  ========================  ==========  ==============================================

``demo_seconds`` is for the sample-mode demo and tests against the fake KIS server; in production
the run waits for the open and stops at ``session_end``.

A run whose session is already over when it starts (unpausing the DAG after the close creates the
latest session's run at once; so does clearing an old run) has nothing to poll: :func:`closed_since`
says so, and the DAG skips the run at once instead of starting the poller.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: The run ``make run`` starts in sample mode (2 minutes, 20 tickers, 30-s windows); ``bench/kis_poll.py
#: --demo`` polls exactly this, window after window, the way the sensor does.
DEMO_RUN = {"demo_seconds": 120, "watchlist_size": 20, "window_seconds": 30}

SETTINGS = {  # param name: (Variable, default)
    "watchlist": ("kis_watchlist", None),
    "watchlist_size": ("kis_watchlist_size", 50),
    "window_seconds": ("kis_window_seconds", 300),
    "session_end": ("kis_session_end", "close"),
    "demo_seconds": ("kis_demo_seconds", 0),
    "order_books": ("kis_order_books", True),
    "venue": ("kis_venue", "KRX"),
    "ws_cap": ("kis_ws_cap", 40),
    "ws_books": ("kis_ws_books", 20),
    "ws_window_seconds": ("kis_ws_window_seconds", 0),
}
#: venue setting → KIS market code (REST ``FID_COND_MRKT_DIV_CODE``; selects the WebSocket TRs too)
#: and the KST hours collected: NXT trades 08:00–20:00 (pre-market from 08:00, after-market to 20:00).
VENUES = {"KRX": ("J", None), "KRX+NXT": ("UN", (dt.time(8, 0), dt.time(20, 0)))}


def setting(name: str, params: dict | None, table: dict | None = None) -> Any:
    """A run's setting: the Param if given, else the Variable, else the default (of ``table``, default :data:`SETTINGS`)."""
    from airflow.sdk import Variable

    value = (params or {}).get(name)
    if value not in (None, ""):
        return value
    variable, default = (table or SETTINGS)[name]
    value = Variable.get(variable, default=None)
    return default if value in (None, "") else value


def _bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "y", "on")


def venue(value) -> str:
    """The venue setting, checked: ``KRX`` or ``KRX+NXT``."""
    name = str(value or "KRX").strip().upper().replace(" ", "")
    if name not in VENUES:
        raise ValueError(f"kis_venue must be one of {sorted(VENUES)}, not {value!r}")
    return name


def session_window(day: dt.date, session_end: str = "close", demo_seconds: float = 0,
                   now: dt.datetime | None = None, venue_name: str = "KRX") -> tuple[dt.datetime, dt.datetime]:
    """(start, end) of collection on session ``day`` as tz-aware KST datetimes.

    KRX: the XKRX session (09:00–15:30, late opens and early closes included). KRX+NXT: 08:00 to
    20:00, or the XKRX session when it is longer (``session_end`` may still cut it short).
    """
    from krxflow.calendar import session_hours
    from krxflow.market_time import KST

    now = (now or dt.datetime.now(KST)).astimezone(KST)
    if float(demo_seconds) > 0:
        return now, now + dt.timedelta(seconds=float(demo_seconds))
    opens, closes = session_hours(day)
    hours = VENUES[venue(venue_name)][1]
    if hours is not None:
        opens = min(opens, dt.datetime.combine(day, hours[0], KST))
        closes = max(closes, dt.datetime.combine(day, hours[1], KST))
    end = closes
    if str(session_end).strip().lower() not in ("", "close"):
        try:
            hour, minute = (int(p) for p in str(session_end).strip().split(":"))
            end = dt.datetime.combine(day, dt.time(hour, minute), KST)
        except ValueError as exc:
            raise ValueError(f"session_end must be 'close' or 'HH:MM' (KST), not {session_end!r}") from exc
        if end <= opens:
            raise ValueError(f"session_end {session_end} is before the open ({opens:%H:%M})")
    return opens, end


def closed_since(plan: dict, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the planned polling window ended, if it has ended by ``now``; None while there is still time to poll."""
    end = dt.datetime.fromisoformat(plan["end"])
    return end if (now or dt.datetime.now(dt.timezone.utc)) >= end else None


def run_stream(dag_id: str, run_id: str) -> str:
    """The buffer name of one DAG run: retries and reruns of the run share it (and its pending entries)."""
    return f"{dag_id}:{run_id}"


def plan(session_day: dt.date, run_key: str, params: dict | None, conn) -> dict:
    """Everything the polling sensor needs, as JSON-able values (it travels through XCom)."""
    from krxflow.kis import watchlist

    tickers = watchlist.resolve(conn, setting("watchlist", params), setting("watchlist_size", params))
    window_seconds = int(setting("window_seconds", params))
    if window_seconds < 1:
        raise ValueError("window_seconds must be at least 1")
    start, end = session_window(session_day, str(setting("session_end", params)),
                                float(setting("demo_seconds", params)))
    return {"session": session_day.isoformat(), "tickers": tickers, "start": start.isoformat(),
            "end": end.isoformat(), "window_seconds": window_seconds,
            "order_books": _bool(setting("order_books", params)), "stream": run_key}


def realtime_plan(session_day: dt.date, run_key: str, params: dict | None, conn) -> dict:
    """The plan of a realtime run: the watchlist's first tickers on the WebSocket, the rest on REST.

    ``ws_cap`` registrations are split: ``ws_books`` order books, the rest trades (the first
    tickers of the watchlist get both). Tickers whose trades are not pushed are polled over REST
    (``rest`` — a :func:`plan`-shaped dict for :class:`~krxflow.sensors.kis_poll.KisPollSensor`,
    ``tickers`` empty when the WebSocket covers the whole watchlist); both share the appkey's budget.
    """
    from krxflow.kis import watchlist

    tickers = watchlist.resolve(conn, setting("watchlist", params), setting("watchlist_size", params))
    cap = int(setting("ws_cap", params))
    books = int(setting("ws_books", params))
    if cap < 1 or not 0 <= books <= cap:
        raise ValueError("kis_ws_cap must be ≥ 1 and kis_ws_books within [0, kis_ws_cap]")
    where = venue(setting("venue", params))
    start, end = session_window(session_day, str(setting("session_end", params)),
                                float(setting("demo_seconds", params)), venue_name=where)
    ws_trades = tickers[:cap - books]
    ws_books = tickers[:books]
    rest = [t for t in tickers if t not in set(ws_trades)]
    window_seconds = int(setting("window_seconds", params))
    rest_start, rest_end = (start, end) if rest else (dt.datetime.now(dt.timezone.utc),) * 2  # nothing to poll
    return {"session": session_day.isoformat(), "stream": run_key, "rest_stream": f"{run_key}:rest",
            "start": start.isoformat(), "end": end.isoformat(), "venue": where, "market": VENUES[where][0], "ws_cap": cap,
            "ws_trades": ws_trades, "ws_books": ws_books,
            "ws_window_seconds": int(setting("ws_window_seconds", params)),
            "rest": {"session": session_day.isoformat(), "tickers": rest, "start": rest_start.isoformat(),
                     "end": rest_end.isoformat(), "window_seconds": window_seconds,
                     "order_books": _bool(setting("order_books", params)), "stream": f"{run_key}:rest"}}
