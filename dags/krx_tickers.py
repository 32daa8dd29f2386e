"""
### krx_tickers — the ticker master (`stocks`) from KRX

After the close of every XKRX session (17:40 KST; `KRXSessionTimetable`, no runs on holidays) and
on demand. One all-market KRX request gives every listed KOSPI/KOSDAQ ticker with its name,
market, ISIN, sector (KRX's section), listed shares and market cap; they go into `stocks` through
the batched hook. Renames and market moves are kept in `stock_changes`; a ticker that disappears
from the listing is marked delisted (`delisted_on` = the first session without it), and the
tickers KRX knows as delisted are added as such. Emits the `stocks` Asset.

The session is the run's `logical_date` in KST (a manual run on a holiday uses the
previous session's listing). Source: `KRXFLOW_SOURCE` = `pykrx` (default) or `sample`. Runs in
the `krx_api` pool; a KRX block fails the run at once and opens the circuit (no retries).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from krxflow.assets import STOCKS
from krxflow.krx.pacing import KRX_POOL
from krxflow.timetables import KRXSessionTimetable


@dag(
    dag_id="krx_tickers",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="17:40"),
    start_date=dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc),  # backfills may reach back this far
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["krxflow", "krx", "daily"],
)
def krx_tickers():
    @task(pool=KRX_POOL, outlets=[STOCKS])
    def load_listing(logical_date=None) -> dict:
        """Listing of the run's KST session → `stocks` (+ `stock_changes`)."""
        from dataclasses import asdict

        from krxflow.calendar import session_of
        from krxflow.krx.master import load_listing as load
        from krxflow.sources import get_source

        return asdict(load(get_source(), session_of(logical_date)))

    load_listing()


krx_tickers()
