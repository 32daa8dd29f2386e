"""
### krx_market_reports — the rest of what KRX publishes each day, one task per report

One run per XKRX trading session at 18:30 KST (`KRXSessionTimetable`; after `krx_daily_prices`
at 18:00, whose rows the quality checks compare against). The session is the run's
`logical_date` in KST. For each report, `load_<report>` asks KRX for the whole market of
that day (a handful of requests, in the `krx_api` pool and the shared pacing) and upserts it
through the batched hook; `check_<report>` writes its quality figures to `load_stats`
(operation `quality_check`, status `warning` when something is off):

| report | table | KRX requests | checked |
|---|---|---|---|
| `indices` | `krx_index_prices` (+ `krx_indices`) | 4 | 3 groups, OHLC, composite cap vs `daily_prices` |
| `investors` | `krx_investor_trading` | 11 | traded tickers covered, 11 types each, net buys sum to ~0, buys = volume |
| `fundamentals` | `krx_fundamentals` | 1 | listed tickers covered, PER = close/EPS, PBR = close/BPS |
| `short_selling` | `krx_short_selling` | 2 | short ≤ total, volume = `daily_prices` |
| `short_balance` | `krx_short_balance` | 2 | the session two sessions back (KRX's reporting lag) |
| `foreign_ownership` | `krx_foreign_ownership` | 1 | listed tickers covered, held ≤ limit, rates |

Param `reports`: `"all"` (default) or some of the names above (a list or comma-separated); the
others' tasks are skipped. The Variable `KRXFLOW_REPORTS` gives the default for scheduled runs.
Each report is its own task: one failing (a KRX error) is retried alone and leaves no partial
day — a report's day is written only once every request of it succeeded.

Why one DAG and not one per family: all reports share the session, the timetable, the KRX
login and the pool, and together cost ~21 requests a session; one run per session shows the
day's state in one row of the grid, and the Param chooses the reports as a per-family DAG would.

Any range, by date: `airflow backfill create --dag-id krx_market_reports --from-date 2024-01-01
--to-date 2024-03-31` (only sessions get runs; `--run-backwards` is not needed). Reruns change
nothing. A manual run on a holiday is skipped. A KRX block fails the task at once (no retries
into a block). A session KRX has not published yet (answers whose rows are all "-") writes
nothing and fails the task with "KRX has not published <day> yet": its retries, 10 minutes apart,
load the day once KRX publishes it. KONEX tickers of the all-market answers are left out.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from krxflow.assets import KRX_REPORT_ASSETS
from krxflow.krx.pacing import KRX_POOL
from krxflow.krx.report_catalog import REPORTS
from krxflow.timetables import KRXSessionTimetable


@dag(
    dag_id="krx_market_reports",
    doc_md=__doc__,
    schedule=KRXSessionTimetable(at="18:30"),
    start_date=dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc),  # backfills may reach back this far
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    params={
        "reports": Param("default", type=["string", "array"],
                         description='"all", "default" (the KRXFLOW_REPORTS Variable, else all) or reports: '
                                     + ", ".join(REPORTS) + "."),
    },
    tags=["krxflow", "krx", "daily", "reports"],
)
def krx_market_reports():
    @task
    def choose(logical_date=None, params=None) -> dict:
        """The run's session (KST) and the reports it loads."""
        from krxflow.calendar import session_of
        from krxflow.krx.report_catalog import selected_reports

        wanted = params["reports"]
        if wanted == "default":
            from airflow.sdk import Variable

            wanted = Variable.get("KRXFLOW_REPORTS", default="all")
        return {"session": session_of(logical_date).isoformat(), "reports": selected_reports(wanted)}

    chosen = choose()
    for name, report in REPORTS.items():

        @task(task_id=f"load_{name}", pool=KRX_POOL, outlets=[KRX_REPORT_ASSETS[report.table]])
        def load(chosen: dict, name: str = name) -> dict:
            """One report of the session → its table, through the batched hook."""
            from airflow.sdk.exceptions import AirflowSkipException

            from krxflow.calendar import is_trading_day
            from krxflow.sources import get_source
            from krxflow.krx.report_loading import load_report

            if name not in chosen["reports"]:
                raise AirflowSkipException(f"{name} is not among this run's reports {chosen['reports']}")
            if not is_trading_day(dt.date.fromisoformat(chosen["session"])):
                raise AirflowSkipException(f"{chosen['session']} (KST) is not an XKRX trading session")
            return load_report(get_source(), name, chosen["session"])

        @task(task_id=f"check_{name}")
        def check(loaded: dict, name: str = name) -> dict:
            """The report's quality figures of the day → `load_stats`."""
            from krxflow.krx.report_loading import check_report_quality

            return check_report_quality(name, loaded["session"])

        check(load(chosen))


krx_market_reports()
