"""
### krx_daily_prices — one XKRX session of the whole market into `daily_prices`

One run per XKRX trading session (18:00 KST; `KRXSessionTimetable`: no runs on weekends or KRX
holidays). The session is the run's `logical_date` **in KST** (`ds` is the UTC date and
is wrong here). `fetch_and_load` asks KRX for all tickers of that day in ONE request and upserts
them through the batched hook. The same answer names every ticker listed that day, so it also
places the ticker master (`stocks`) on that session: `first_seen`/`last_seen` widen, new listings,
delistings (`delisted_on` = the first loaded session without the ticker), renames and market moves
(`stock_changes`) land on the sessions they happened — in whatever order a backfill loads them
(renames and moves on the first later session loaded, when loaded out of order). `quality_check` then compares the rows with the tickers listed
that day, checks low <= open/close <= high and volume >= 0, looks for gaps against the previous
session, and writes the figures to `load_stats` (operation `quality_check`, status `warning`
when something is off). Emits the `daily_prices` Asset.

Any range, by date: `airflow backfill create --dag-id krx_daily_prices --from-date 2024-01-01
--to-date 2024-03-31` (dates are read as KST dates; only sessions get runs). Rerunning a date
changes nothing. A manual run on a holiday is skipped. Runs in the `krx_api` pool; a KRX block
fails the task at once and opens the circuit (no retries into a block). A session KRX has not published yet
(every price "-") writes nothing and fails the try with "KRX has not published <day> yet"; the
retries load it once published.

Source: the portal (pykrx) by default; `KRXFLOW_SOURCE_DAILY_PRICES=krx_openapi` (env or Airflow
Variable) loads by date from the official KRX Open API instead — no login, no portal traffic, two
calls a session, plus base information when a session lists a code whose ISIN krxflow does not know (the `krx_openapi_default` Connection holds the key). The Open API publishes a
session the next morning: a run before that fails its try with "not published yet" and writes
nothing; the retries load it. When the portal refuses us (its circuit open after a block, a block now, a refused login such as
CD010 "change your password"), the session fails over to the Open API by itself if the
`krx_openapi_default` Connection exists (`KRXFLOW_KRX_FAILOVER=off` disables it); a session the
Open API has not published yet fails the try and the retries wait for it. The source that wrote a
session is in the `quality_check` row of `load_stats` (`details.source`, `details.failed_over_from`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from krxflow.assets import DAILY_PRICES, DAILY_PRICES_ADJUSTED
from krxflow.krx.pacing import KRX_POOL
from krxflow.timetables import KRXSessionTimetable


@dag(
    dag_id="krx_daily_prices",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="18:00"),
    start_date=dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc),  # backfills may reach back this far
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["krxflow", "krx", "daily"],
)
def krx_daily_prices():
    @task(pool=KRX_POOL, outlets=[DAILY_PRICES])
    def fetch_and_load(logical_date=None) -> dict:
        """All tickers of the run's KST session, one request → `daily_prices`."""
        from krxflow.calendar import session_of_run
        from krxflow.krx.loading import load_daily_prices
        from krxflow.sources import get_source

        return load_daily_prices(get_source(data_set="daily_prices"), session_of_run(logical_date))

    @task
    def quality_check(loaded: dict) -> dict:
        """Rows vs listed tickers, OHLC consistency, volumes, gaps → `load_stats`."""
        from krxflow.krx.loading import check_daily_quality

        return check_daily_quality(loaded["day"], source=loaded.get("source"),
                                   failed_over_from=loaded.get("failed_over_from"))

    @task(outlets=[DAILY_PRICES_ADJUSTED])
    def adjust(loaded: dict) -> dict:
        """Factors and adjusted rows of the session, from the base prices just loaded."""
        from krxflow.krx.adjusting import adjust_session

        return {"day": loaded["day"], "source": loaded.get("source"), **adjust_session(loaded["day"]).as_dict()}

    @task(pool=KRX_POOL)
    def cross_check(adjusted: dict, dag_run=None) -> dict:
        """The derived series vs KRX's own adjusted prices (ex-date tickers + one rotating ticker)."""
        from krxflow.sources import get_source
        from krxflow.krx.adjusting import cross_check as check

        rotating = 0 if str(dag_run.run_type).endswith("backfill") else 1
        # against the source that wrote the session (a failed-over one never asks the refusing portal)
        return check(get_source(adjusted.get("source"), data_set="daily_prices"), adjusted["day"], rotating=rotating)

    loaded = fetch_and_load()
    quality_check(loaded)
    cross_check(adjust(loaded))


krx_daily_prices()
