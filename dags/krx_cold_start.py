"""
### krx_cold_start — an empty database to N years of the whole market, in one run

Manual (`make backfill YEARS=5`, or trigger with `{"years": 5}`). What it does, resumably
(`krxflow.krx.cold_start`):

1. `plan` — the XKRX sessions of the last `years` years, by month, and which are loaded already.
2. `load_period` — **one mapped task per month** (named after it in the UI, with the sessions
   loaded and the progress of the whole run): per session not loaded yet, ONE all-market
   request → `daily_prices`, the ticker master (`stocks`, `stock_changes`) placed on the sessions
   where the listing changes, a journal row in `load_stats`. Every session logs
   `612/1230 sessions loaded (49.8 %), ETA 6.1 min`.
3. `derive_adjusted` — factors and adjusted series of every ticker in one pass (no request);
   `cross_check` — each ex-date against KRX's own adjusted prices (one request per ex-date);
   `listing` — the last session's listing with the tickers KRX knows as delisted.
4. `publish` — emits the price Assets ONCE: `db_matviews` then refreshes the summary and the
   candles and computes the indicators, one pass for the whole backfill.

**Why a DAG of its own rather than `airflow backfill create` of `krx_daily_prices`:** that makes
~1,230 runs of 4 task processes each (~5,000 task starts, each re-reading the whole ticker master,
and one adjusted-series step and one Asset event per session); here a month of sessions is one task
and the whole-market steps run once. The loaders are the same functions.

**Rerun = resume:** trigger it again after an interruption or a failure; sessions already loaded
are skipped (nothing is requested twice), the other steps are idempotent. While it runs,
`db_matviews` waits (`loads_settled`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from krxflow.assets import DAILY_PRICES, DAILY_PRICES_ADJUSTED, STOCKS
from krxflow.krx.pacing import KRX_POOL

#: Months loading at once: KRX's gate sends one request at a time anyway; a few tasks keep the
#: database writes and master placements of one month overlapping with the next month's requests.
PARALLEL_PERIODS = 4


@dag(
    dag_id="krx_cold_start",
    doc_md=__doc__,
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=2)},
    params={"years": Param(5, type="integer", minimum=1, maximum=20,
                           description="Years of the whole market back from the last session.")},
    tags=["krxflow", "krx", "backfill"],
)
def krx_cold_start():
    @task
    def plan(params=None) -> dict:
        """The window's sessions by month, and what is left to load."""
        from krxflow.krx.cold_start import plan as make_plan

        return make_plan(int(params["years"]))

    @task
    def months_left(window: dict) -> list[dict]:
        """The months with sessions still to load (one load_period task each)."""
        return window["todo"]

    @task(pool=KRX_POOL, map_index_template="{{ period_label }}", max_active_tis_per_dagrun=PARALLEL_PERIODS)
    def load_period(period: dict, window: dict, dag_run=None) -> dict:
        """One month: each session not loaded yet → daily_prices, the master, the journal."""
        from airflow.sdk import get_current_context

        from krxflow.sources import get_source
        from krxflow.krx.cold_start import load_period as load

        context = get_current_context()
        context["period_label"] = period["period"]
        summary = load(get_source(), period["sessions"], window=window, started=dag_run.start_date)
        context["period_label"] = (f"{period['period']}: {summary['loaded']} loaded, {summary['skipped']} already "
                                   f"there · {summary['progress']}")
        return summary

    @task(trigger_rule="none_failed")  # also when no month was left (the mapped task is then skipped)
    def derive_adjusted() -> dict:
        """Factors and adjusted series of every ticker, from the raw rows."""
        from krxflow.krx.cold_start import derive_adjusted as derive

        return derive()

    @task(pool=KRX_POOL)
    def cross_check(window: dict) -> dict:
        """Every ex-date of the window against KRX's own adjusted prices."""
        from krxflow.sources import get_source
        from krxflow.krx.cold_start import cross_check_ex_dates

        return cross_check_ex_dates(get_source(), window)

    @task(pool=KRX_POOL, outlets=[STOCKS])
    def listing(window: dict) -> dict:
        """The last session's listing and the tickers KRX knows as delisted → stocks."""
        from dataclasses import asdict

        from krxflow.sources import get_source
        from krxflow.krx.master import load_listing

        return asdict(load_listing(get_source(), window["last"]))

    @task(outlets=[DAILY_PRICES, DAILY_PRICES_ADJUSTED])
    def publish(adjusted: dict, checked: dict, listed: dict) -> dict:
        """One Asset event per price table for the whole backfill: db_matviews makes one pass."""
        return {"adjusted": adjusted, "cross_check": checked, "listing": listed}

    window = plan()
    loaded = load_period.partial(window=window).expand(period=months_left(window))
    adjusted = derive_adjusted()
    checked, listed = cross_check(window), listing(window)
    loaded >> adjusted >> [checked, listed]
    publish(adjusted, checked, listed)


krx_cold_start()
