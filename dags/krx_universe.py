"""
### krx_universe — what the market was on a date: industries, index constituents, delistings

One run per XKRX session at 18:45 KST (`KRXSessionTimetable`; after `krx_daily_prices` at 18:00
and `krx_market_reports` at 18:30, whose index master it reads). The session is the run's
`logical_date` in KST. One task, through the installation's one KRX session (the shared login,
the `krx_api` pool and the gate):

| table | KRX report | requests on a normal session |
|---|---|---|
| `krx_industry_history` (+ `stock_changes` field `industry`) | MDCSTAT03901 × 2 markets | 2 |
| `krx_index_members` | MDCSTAT00601 per index that can have changed | 1–2 (the rebalance days: +3) |
| `krx_delistings` (+ `stocks.delisted_on`) | MDCSTAT23801 | 0–1 (a delisting seen, or weekly) |

All requests are sent before anything is written, and the session is written in one transaction:
an empty or changed answer, or a failure mid-way, leaves nothing of the session. Reruns change
nothing. Point in time: `universe_on(index, date)`, `industry_on(ticker, date)`; see
docs/universe.md. A range at a low cadence (about 2 requests a month plus the indices): trigger a
run with the Param `backfill_from` (a date); it loads from there up to the run's session.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from krxflow.assets import table_asset
from krxflow.krx.pacing import KRX_POOL
from krxflow.timetables import KRXSessionTimetable

UNIVERSE_TABLES = ("krx_industry_history", "krx_index_members", "krx_delistings")


@dag(
    dag_id="krx_universe",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="18:45"),
    start_date=dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,  # the history is written forward, one session after the other
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    params={"backfill_from": Param(None, type=["null", "string"], format="date",
                                   description="Load from this date up to the run's session at a low cadence first.")},
    tags=["krxflow", "krx", "daily", "universe"],
)
def krx_universe():
    @task(pool=KRX_POOL, outlets=[table_asset(t) for t in UNIVERSE_TABLES])
    def load(logical_date=None, params=None) -> dict:
        """The run's session: industries, the constituents that can have changed, new delistings."""
        from airflow.sdk.exceptions import AirflowSkipException

        from krxflow.calendar import is_trading_day, session_of
        from krxflow.krx.universe import backfill_universe, load_universe
        from krxflow.sources import get_source

        session = session_of(logical_date)
        if not is_trading_day(session):
            raise AirflowSkipException(f"{session} (KST) is not an XKRX trading session")
        source = get_source()
        if params.get("backfill_from"):
            return backfill_universe(source, dt.date.fromisoformat(params["backfill_from"]), session)
        return load_universe(source, session)

    load()


krx_universe()
