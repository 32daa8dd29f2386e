"""
# kis_intraday — intraday quotes and order books from the KIS Open API

One run per XKRX trading session (`KRXSessionTimetable(at="08:30")`: the run starts at 08:30 KST
on the session day; no runs on weekends or KRX holidays; `logical_date` in KST is the session
date; a manual run on a non-session day is skipped). The run

1. **plan** — resolves the watchlist and the session's polling window (KST): from the open
   (09:00, or later on late-open days) to the close (15:30) or to `session_end`;
2. **poll_session** — a *deferrable* sensor: waits for the open in the triggerer (no worker
   slot), then polls KIS in windows of `window_seconds` through `KisPollTrigger` (async, at
   the appkey's allowed rate shared through Redis, skipping unchanged quotes), buffering the
   answers in a Redis stream; after each window the task drains the stream into
   `intraday_quotes` / `order_books` through the batched hook, records the window's counters in
   `load_stats` (`operation = 'kis_poll_window'`) and acknowledges the entries only after the
   commit;
3. **drain_leftovers** — runs whatever happened upstream (unless the run was skipped) and writes
   anything still buffered, so a failed or killed poller loses nothing.

A run whose session is already over when `plan` runs — unpausing the DAG after 15:30 KST creates
that day's run at once — ends at once: every task skipped, no polling.

## Settings (a run's Param overrides the Variable; the Variable overrides the default)

| Variable | Param | default | meaning |
|---|---|---|---|
| `kis_watchlist` | `watchlist` | *(top N)* | tickers (`"005930,000660"` or a JSON list) or `all` |
| `kis_watchlist_size` | `watchlist_size` | `50` | N for the default watchlist (top N by market cap in `stocks`) |
| `kis_window_seconds` | `window_seconds` | `300` | length of one polling window |
| `kis_session_end` | `session_end` | `close` | `close` (15:30 KST) or `HH:MM` KST for later sessions |
| `kis_demo_seconds` | `demo_seconds` | `0` | >0: poll *now* for that many seconds, ignoring the clock (demo / fake server) |
| `kis_order_books` | `order_books` | `true` | also poll the 10-level order book |

## Connections

* `kis_default` — host = REST base URL (`https://openapi.koreainvestment.com:9443` live,
  `https://openapivts.koreainvestment.com:29443` paper, or the fake server), login = appkey,
  password = appsecret, extra `{"env": "live"|"paper", "rate": 18}` (default rate 18 live, 1 paper;
  optional `rate_margin` 0.05, `token_interval` 60, `timeout` 10).
* `redis_default` — token, rate limiter, dedupe keys and the buffer stream.
* `postgres_default` — the market database.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from krxflow.assets import INTRADAY_QUOTES, ORDER_BOOKS
from krxflow.sensors.kis_poll import KisPollSensor
from krxflow.settings import MARKET_TZ
from krxflow.timetables import KRXSessionTimetable


@dag(
    dag_id="kis_intraday",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="08:30"),
    start_date=pendulum.datetime(2026, 1, 2, tz=MARKET_TZ),
    catchup=False,
    max_active_runs=1,
    tags=["krxflow", "kis", "intraday"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "watchlist": Param(None, type=["null", "string"], description="tickers or 'all' (else Variable kis_watchlist)"),
        "watchlist_size": Param(None, type=["null", "integer"], minimum=1, description="N of the top-N watchlist"),
        "window_seconds": Param(None, type=["null", "integer"], minimum=1, description="polling window length"),
        "session_end": Param(None, type=["null", "string"], description="'close' or 'HH:MM' KST"),
        "demo_seconds": Param(None, type=["null", "integer"], minimum=0, description=">0: poll now for N seconds"),
        "order_books": Param(None, type=["null", "boolean"], description="also poll order books"),
    },
)
def kis_intraday():
    @task
    def plan(**context) -> dict:
        """The run's watchlist and polling window (skips the run on a non-trading day)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from krxflow.calendar import session_of_run
        from krxflow.db.connection import connection
        from krxflow.kis.session import closed_since, plan as make_plan, run_stream

        params = context["params"]
        day = session_of_run(context["logical_date"], closed_ok=bool(params.get("demo_seconds")))
        with connection() as conn:
            planned = make_plan(day, run_stream(context["dag"].dag_id, context["run_id"]), params, conn)
        if (ended := closed_since(planned)) is not None:
            raise AirflowSkipException(f"the {day} session's polling window ended at {ended:%Y-%m-%d %H:%M %Z}: "
                                       "nothing to poll (a run created after the close, e.g. on unpausing)")
        return planned

    # none_skipped: after a failed or killed poller too, but not after a skipped (closed) session
    @task(trigger_rule="none_skipped")
    def drain_leftovers(**context) -> dict:
        """Write whatever is still buffered for this run (after a failed or killed poller), then drop the buffer."""
        from krxflow.intraday.drain import discard_if_empty, drain
        from krxflow.kis.session import run_stream

        stream = run_stream(context["dag"].dag_id, context["run_id"])
        result = drain(stream).as_dict()
        result["buffer_removed"] = discard_if_empty(stream)
        return result

    poll = KisPollSensor(task_id="poll_session", plan=plan(), outlets=[INTRADAY_QUOTES, ORDER_BOOKS])
    poll >> drain_leftovers()


kis_intraday()
