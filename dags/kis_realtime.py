"""
# kis_realtime — every trade and order-book change KIS pushes, plus REST polling beyond the cap

One run per XKRX trading session (`KRXSessionTimetable(at="07:30")`, early enough for NXT's
08:00 pre-market; `logical_date` in KST is the session date; a manual run on a non-session day is
skipped). The run

1. **plan** — resolves the watchlist and splits it: the first tickers go to the KIS WebSocket
   (`kis_ws_cap` registrations, default 40 — KIS's per-session cap, all TRs together — of which
   `kis_ws_books` order books and the rest trades), every other ticker is polled over REST; the
   collection window follows the venue (`kis_venue`: `KRX` 09:00–15:30, `KRX+NXT` 08:00–20:00
   through KIS's combined `UN` TRs);
2. **stream_session** — a *deferrable* sensor: waits for the open in the triggerer, then
   `KisStreamTrigger` keeps one WebSocket session (shared approval key, PINGPONG answered,
   reconnect with back-off and full resubscription) and buffers every trade (`H0STCNT0`/`H0UNCNT0`)
   and book (`H0STASP0`/`H0UNASP0`) in the run's Redis stream; frames with an unexpected field
   count are kept raw in `market_data` and counted; when the window ends the task drains the
   stream into `trades` / `order_books` through the batched hook and acknowledges after the commit;
3. **drain_live** — drains the same stream continuously during the session (lag of a second or
   two instead of a window) and records the collector's health every minute in `load_stats`
   (`operation = 'kis_ws_stats'`: messages/s, lag, reconnects, unparsed frames);
4. **poll_rest** — the REST poller (`KisPollSensor`) for the watchlist beyond the WebSocket,
   on the appkey's shared rate budget;
5. **drain_leftovers** — runs whatever happened upstream and writes anything still buffered.

## Settings (a run's Param overrides the Variable; the Variable overrides the default)

| Variable | Param | default | meaning |
|---|---|---|---|
| `kis_watchlist` | `watchlist` | *(top N)* | tickers (`"005930,000660"` or a JSON list) or `all` |
| `kis_watchlist_size` | `watchlist_size` | `50` | N for the default watchlist |
| `kis_venue` | `venue` | `KRX` | `KRX` or `KRX+NXT` (session window and KIS TRs follow it) |
| `kis_ws_cap` | `ws_cap` | `40` | WebSocket registrations per session |
| `kis_ws_books` | `ws_books` | `20` | of those, order books (the rest: trades) |
| `kis_ws_window_seconds` | `ws_window_seconds` | `0` | realtime trigger window (0: the whole session) |
| `kis_window_seconds` | `window_seconds` | `300` | REST polling window |
| `kis_session_end` | `session_end` | `close` | `close` or `HH:MM` KST |
| `kis_demo_seconds` | `demo_seconds` | `0` | >0: collect *now* for that many seconds (demo / fake server) |
| `kis_order_books` | `order_books` | `true` | REST: also poll order books |

## Connections

* `kis_default` — REST base URL, appkey/appsecret, extra `env`, `rate`, and `ws_url` (default
  `ws://ops.koreainvestment.com:21000` live, `:31000` paper).
* `redis_default` — token, approval key, rate limiter and the buffer streams.
* `postgres_default` — the market database.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from krxflow.assets import INTRADAY_QUOTES, ORDER_BOOKS, TRADES
from krxflow.sensors.kis_poll import KisPollSensor
from krxflow.sensors.kis_stream import KisStreamSensor
from krxflow.settings import MARKET_TZ
from krxflow.timetables import KRXSessionTimetable


@dag(
    dag_id="kis_realtime",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="07:30"),
    start_date=pendulum.datetime(2026, 1, 2, tz=MARKET_TZ),
    catchup=False,
    max_active_runs=1,
    tags=["krxflow", "kis", "intraday", "realtime"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "watchlist": Param(None, type=["null", "string"], description="tickers or 'all'"),
        "watchlist_size": Param(None, type=["null", "integer"], minimum=1, description="N of the top-N watchlist"),
        "venue": Param(None, type=["null", "string"], enum=[None, "KRX", "KRX+NXT"], description="venue"),
        "ws_cap": Param(None, type=["null", "integer"], minimum=1, description="WebSocket registrations"),
        "ws_books": Param(None, type=["null", "integer"], minimum=0, description="of those, order books"),
        "ws_window_seconds": Param(None, type=["null", "integer"], minimum=0, description="0: whole session"),
        "window_seconds": Param(None, type=["null", "integer"], minimum=1, description="REST polling window"),
        "session_end": Param(None, type=["null", "string"], description="'close' or 'HH:MM' KST"),
        "demo_seconds": Param(None, type=["null", "integer"], minimum=0, description=">0: collect now for N s"),
        "order_books": Param(None, type=["null", "boolean"], description="REST: also poll order books"),
    },
)
def kis_realtime():
    @task(multiple_outputs=True)
    def plan(**context) -> dict:
        """The run's WebSocket registrations, REST remainder and window (skips non-trading days)."""
        from krxflow.calendar import session_of_run
        from krxflow.db.connection import connection
        from krxflow.kis.session import realtime_plan, run_stream

        params = context["params"]
        day = session_of_run(context["logical_date"], closed_ok=bool(params.get("demo_seconds")))
        with connection() as conn:
            return realtime_plan(day, run_stream(context["dag"].dag_id, context["run_id"]), params, conn)

    @task
    def drain_live(stream: str, end: str) -> dict:
        """Write the pushed records as they arrive, until the session is over (then the sensor finishes)."""
        import datetime as dt

        from krxflow.intraday.drain import follow

        over = dt.datetime.fromisoformat(end) + dt.timedelta(seconds=30)
        result = follow(stream, until=lambda: dt.datetime.now(dt.timezone.utc) >= over)
        return {**result.as_dict(), "lag_p50_s": result.lag_percentile(0.5), "lag_p99_s": result.lag_percentile(0.99)}

    @task(trigger_rule="all_done")
    def drain_leftovers(stream: str, rest_stream: str) -> dict:
        """Write whatever is still buffered (after a failed or killed collector or drain), then drop the buffers."""
        from krxflow.intraday.drain import discard_if_empty, drain

        out = {}
        for name in (stream, rest_stream):
            result = drain(name, claim_idle_ms=0).as_dict()
            result["buffer_removed"] = discard_if_empty(name)
            out[name] = result
        return out

    planned = plan()
    stream = KisStreamSensor(task_id="stream_session", plan=planned, outlets=[TRADES, ORDER_BOOKS])
    rest = KisPollSensor(task_id="poll_rest", plan=planned["rest"], outlets=[INTRADAY_QUOTES, ORDER_BOOKS])
    live = drain_live(planned["stream"], planned["end"])
    [stream, rest, live] >> drain_leftovers(planned["stream"], planned["rest_stream"])


kis_realtime()
