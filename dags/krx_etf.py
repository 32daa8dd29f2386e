"""
### krx_etf — every ETF and ETN of one XKRX session: prices, NAV/IV, underlying index; their master

One run per XKRX trading session at 18:10 KST (`KRXSessionTimetable`; after `krx_daily_prices`
at 18:00, through the same shared KRX login, the `krx_api` pool and the gate). The session is the
run's `logical_date` **in KST**. `load` asks KRX for every ETF (MDCSTAT04301) and every ETN
(MDCSTAT06401) of that day — **2 requests** — and writes `krx_etp_prices` and the `krx_etps` master
in one transaction through the batched hook; KRX's base-info screens (issuer, listing date,
multiplier: MDCSTAT04601 / 06701, +1 each) are asked only when a recent session lists a code never
described. An empty answer, KRX's rows of "-" (a day it has not published) or a failure mid-way
fails the task with the reason and writes nothing. `check` writes the day's quality figures to
`load_stats` (operation `quality_check`).

Any range, by date: `airflow backfill create --dag-id krx_etf --from-date 2024-01-01 --to-date
2024-03-31` (dates are read as KST dates; only sessions get runs; any order: the master's dates
come out the same). Rerunning a date changes nothing. A manual run on a holiday is skipped. See
docs/etf.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from krxflow.assets import table_asset
from krxflow.krx.pacing import KRX_POOL
from krxflow.timetables import KRXSessionTimetable

ETP_TABLES = ("krx_etps", "krx_etp_prices")


@dag(
    dag_id="krx_etf",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="18:10"),
    start_date=dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc),  # backfills may reach back this far
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["krxflow", "krx", "daily", "etf"],
)
def krx_etf():
    @task(pool=KRX_POOL, outlets=[table_asset(t) for t in ETP_TABLES])
    def load(logical_date=None) -> dict:
        """Every ETF and ETN of the run's KST session: 2 requests → `krx_etp_prices`, `krx_etps`."""
        from krxflow.calendar import session_of_run
        from krxflow.krx.etps import load_etps
        from krxflow.sources import get_source

        return load_etps(get_source(), session_of_run(logical_date))

    @task
    def check(loaded: dict) -> dict:
        """Rows per kind, OHLC, NAV and index present, deviation from NAV → `load_stats`."""
        from krxflow.krx.etps import check_etps

        return check_etps(loaded["session"])

    check(load())


krx_etf()
