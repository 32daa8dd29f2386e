"""
### krx_history_backfill — years of daily history, one mapped task per ticker

Manual only. Params: `years` (default 5), `tickers` (`"all"` = the ticker master, else a list
or a comma-separated string; for the whole market use `"all"`, not a list of every ticker: the
scheduler reads the run's conf again with each of its task instances on every loop, so a conf of
2,800 tickers costs it more CPU than scheduling them), `adjusted_from`: `"krx"` (default) loads each ticker's raw KRX
series → `daily_prices` (delisted tickers included) and derives its adjustment factors and
adjusted series from KRX's base prices → `adjustment_factors`, `daily_prices_adjusted`;
`"naver"` loads Naver's adjusted series only (no KRX login needed, no delisted tickers).

`load_history` is **dynamically mapped per ticker** (`.expand()`); each task instance is named
after its ticker (`map_index_template`), so one ticker can be found, cleared and rerun in the
UI. Each task records its ticker's outcome in `load_stats` (operation `history_ticker`; not in
XCom: 2,800 XCom pushes cost the Execution API more than the loads). A ticker with no data
(e.g. delisted: Naver has no adjusted series for it) is recorded as empty, not failed. `report`
(runs whatever happened) logs tickers ok / empty / failed (no outcome recorded) and rows written
to `load_stats` (operation `history_backfill`); the Assets of the tables actually written are
emitted at the end. `check` then decides the run's colour: **failed** when any ticker failed
(named in its log, to clear and rerun), successful otherwise — with a warning when every
ticker was empty.

~2,800 tickers: `[core] max_map_length` must be above the ticker count in **every** Airflow
component (the check runs in the api-server): `AIRFLOW__CORE__MAX_MAP_LENGTH=5000`. The `krx_api`
pool bounds how many tickers talk to KRX at once; the shared pacing spaces the requests. A failed
ticker task is retried twice, after 30-60 s and then 1-2 min.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from krxflow.assets import DAILY_PRICES, DAILY_PRICES_ADJUSTED
from krxflow.krx.pacing import KRX_POOL


@dag(
    dag_id="krx_history_backfill",
    doc_md=__doc__,
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    # A ticker's task that failed (a lost worker, a dropped connection) is retried after 30-60 s, then
    # 1-2 min (Airflow's exponential backoff); a KRX block is the shared circuit's, not a retry's, to wait out.
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": 2.0,
                  "max_retry_delay": dt.timedelta(minutes=10)},
    params={
        "years": Param(5, type="integer", minimum=1, maximum=20, description="Years of history back from the last session."),
        "tickers": Param("all", type=["string", "array"],
                         description='"all" (the ticker master) or tickers, e.g. ["005930", "000660"].'),
        "adjusted_from": Param("krx", type="string", enum=["krx", "naver"],
                               description='"krx": raw KRX series + adjusted derived from KRX base prices '
                                           '(delisted tickers too); "naver": Naver\'s adjusted series only.'),
    },
    tags=["krxflow", "krx", "backfill"],
)
def krx_history_backfill():
    @task(pool=KRX_POOL)
    def select_tickers(params=None) -> list[str]:
        """The tickers to load (the ticker master for "all"; today's listing when it is empty)."""
        from krxflow.sources import get_source
        from krxflow.krx.loading import backfill_tickers

        return backfill_tickers(get_source(), params["tickers"])

    @task
    def history_window(params=None) -> dict:
        """First and last session of the history to load."""
        from krxflow.krx.loading import history_window as window

        first, last = window(int(params["years"]))
        return {"first": first.isoformat(), "last": last.isoformat()}

    @task(pool=KRX_POOL, map_index_template="{{ ticker }}")
    def load_history(ticker: str, window: dict, params=None) -> None:
        """One ticker's history through the batched hook; its outcome goes to `load_stats`, not XCom."""
        from airflow.sdk import get_current_context

        from krxflow.sources import get_source
        from krxflow.krx.loading import load_ticker_history

        get_current_context()["ticker"] = ticker
        load_ticker_history(get_source(), ticker, window["first"], window["last"],
                            adjusted_from=params["adjusted_from"])

    @task(trigger_rule="all_done")
    def report(tickers: list[str], window: dict, params=None, dag_run=None) -> dict:
        """Tickers ok / empty / failed and rows written → log and `load_stats`."""
        from krxflow.krx.loading import report_backfill

        return report_backfill(tickers, window, years=params["years"], adjusted_from=params["adjusted_from"],
                               dag_id=dag_run.dag_id, run_id=dag_run.run_id)

    @task
    def check(summary: dict) -> None:
        """The run fails when tickers failed (AirflowFailException: no retries); all-empty succeeds with a warning."""
        from krxflow.krx.loading import check_backfill

        check_backfill(summary)

    @task(outlets=[DAILY_PRICES_ADJUSTED])
    def emit_adjusted(summary: dict) -> None:
        """The adjusted table changed: tell the Asset's listeners (skipped when nothing was loaded)."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not summary["adjusted_rows"]:
            raise AirflowSkipException("no adjusted rows loaded")

    @task(outlets=[DAILY_PRICES])
    def emit_raw(summary: dict) -> None:
        """The raw table changed: tell the Asset's listeners (skipped when nothing was loaded)."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not summary["raw_rows"]:
            raise AirflowSkipException("no raw rows loaded")

    tickers = select_tickers()
    window = history_window()
    loaded = load_history.partial(window=window).expand(ticker=tickers)
    summary = report(tickers, window)
    loaded >> summary
    emit_adjusted(summary)
    emit_raw(summary)
    check(summary)


krx_history_backfill()
