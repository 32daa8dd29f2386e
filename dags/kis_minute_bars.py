"""
# kis_minute_bars — every 1-minute bar of a session, for a configurable universe, from KIS REST

One run per XKRX trading session at 20:10 KST (after KRX's 15:30 close and NXT's 20:00 one;
`logical_date` in KST is the session date). The run

1. **plan_tickers**, **plan_days** — resolve the universe and the days: the run's session day, or the `dates` Param
   (a backfill: trading days up to a year back, which is what KIS keeps);
2. **load_day** — one mapped task per day, one at a time (they share the appkey's rate budget):
   today's bars through `inquire-time-itemchartprice` (FHKST03010200, 30 a call), a past day's
   through `inquire-time-dailychartprice` (FHKST03010230, 120 a call), every call paced by the
   appkey's Redis rate limiter (shared with the intraday collectors); bars are upserted into
   `minute_bars` on (ticker, minute), so rerunning a day changes nothing.

Full market (~2,700 tickers, 381 bars each) at 18 requests/s: ≈ 35,000 calls (~33 min) for today,
≈ 10,800 calls (~10 min) for a past day.

## Settings (a run's Param overrides the Variable; the Variable overrides the default)

| Variable | Param | default | meaning |
|---|---|---|---|
| `kis_minute_bars_universe` | `universe` | `watchlist` | `watchlist` (the KIS watchlist), `top`, `all`, or tickers |
| `kis_minute_bars_top_n` | `top_n` | `200` | N for `top` (by market cap) |
| — | `dates` | *(the session)* | backfill: `["2026-06-01", …]` (trading days within a year) |

## Connections

`kis_default` (appkey, `rate`), `redis_default` (token, rate limiter), `postgres_default`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from krxflow.assets import MINUTE_BARS
from krxflow.settings import MARKET_TZ
from krxflow.timetables import KRXSessionTimetable


@dag(
    dag_id="kis_minute_bars",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="20:10"),
    start_date=pendulum.datetime(2026, 1, 2, tz=MARKET_TZ),
    catchup=False,
    max_active_runs=1,
    tags=["krxflow", "kis", "intraday", "minute_bars"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2)},
    params={
        "universe": Param(None, type=["null", "string"], description="watchlist | top | all | tickers"),
        "top_n": Param(None, type=["null", "integer"], minimum=1, description="N of 'top'"),
        "dates": Param(None, type=["null", "array"], items={"type": "string", "format": "date"},
                       description="backfill these days (YYYY-MM-DD) instead of the session"),
    },
)
def kis_minute_bars():
    @task
    def plan_days(**context) -> list[str]:
        """The run's days (skips a manual run on a non-session day without dates)."""
        from krxflow.calendar import session_of_run
        from krxflow.kis import minute_bars

        dates = context["params"].get("dates")
        return minute_bars.days_to_fetch(session_of_run(context["logical_date"], closed_ok=bool(dates)), dates)

    @task
    def plan_tickers(**context) -> list[str]:
        """The run's universe."""
        from krxflow.db.connection import connection
        from krxflow.kis import minute_bars

        with connection() as conn:
            return minute_bars.tickers_to_fetch(context["params"], conn)

    @task(max_active_tis_per_dag=1, outlets=[MINUTE_BARS])
    def load_day(day: str, tickers: list[str]) -> dict:
        """Fetch and upsert one day's bars of every ticker (fails, after writing the rest, if a ticker failed)."""
        from krxflow.intraday import minute_bars

        return minute_bars.load_planned_day(day, tickers)

    load_day.partial(tickers=plan_tickers()).expand(day=plan_days())


kis_minute_bars()
