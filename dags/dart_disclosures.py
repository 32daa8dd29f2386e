"""
### dart_disclosures — every filing of KOSPI/KOSDAQ companies, by OpenDART receipt date

One run per KST calendar day at 23:30 KST (filings are received on business days until the
evening; a weekend or holiday answers OpenDART's 013 "no data" and is an empty, successful day).
The day is the run's `logical_date` in KST. `load` asks `list.json` for that receipt date, KOSPI
(`corp_cls=Y`) and KOSDAQ (`K`) apart, every page of 100 — about 2–6 requests on a normal day —
through the installation's DART gate (per-minute cap, daily budget, the circuit status 020
opens), then writes `disclosures` in one transaction through the batched hook. A failure on any
page writes nothing of the day; a rerun changes nothing; a `dart_disclosures_day` row in
`load_stats` records the day's requests and rows.

`statements` then fetches the financial statements (`fnlttMultiAcnt`, major accounts, CFS and OFS)
of the companies whose periodic reports (사업/반기/분기보고서, corrections included) that day shows —
up to 100 companies per request per business year and report, none on a day without them — into
`financial_statements` (read them as known on a date with `financial_key_items_as_of(date)`).

`events`, also after `load`, fetches the material-event reports the day shows (유상증자/무상증자/
감자결정: DS005 `piicDecsn`/`fricDecsn`/`crDecsn`, one request per company and kind) into
`corporate_actions`, then cross-checks the past week's `adjustment_factors` against the filed
events (`dart_events_cross_check` in `load_stats`, `warning` with both sides for a factor no
filing explains).

Any range, by date: `airflow backfill create --dag-id dart_disclosures --from-date 2024-01-01
--to-date 2024-03-31` (dates are KST dates). A bad or expired key (010/011/012/901), the daily
limit (020) and the budget fail at once without retries. See docs/dart.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, dag, task

from krxflow.assets import table_asset
from krxflow.settings import MARKET_TZ


@dag(
    dag_id="dart_disclosures",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("30 23 * * *", timezone=MARKET_TZ),
    start_date=dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc),  # backfills may reach back this far
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["krxflow", "dart", "daily"],
)
def dart_disclosures():
    @task(outlets=[table_asset("disclosures")])
    def load(logical_date=None) -> dict:
        """The filings of the run's KST date: list.json, Y and K, all pages → `disclosures`."""
        from krxflow.calendar import session_of
        from krxflow.dart.client import dart_client
        from krxflow.dart.loading import load_disclosures

        with dart_client() as client:
            return load_disclosures(client, session_of(logical_date))

    @task(outlets=[table_asset("financial_statements")])
    def statements(loaded: dict) -> dict:
        """The day's periodic reports' companies: fnlttMultiAcnt, ≤100 a request → `financial_statements`."""
        from krxflow.dart.client import dart_client
        from krxflow.dart.statements import load_statements

        with dart_client() as client:
            return load_statements(client, loaded["day"])

    @task(outlets=[table_asset("corporate_actions")])
    def events(loaded: dict) -> dict:
        """The day's material events → `corporate_actions`; the past week's factors cross-checked."""
        import datetime as dt

        from krxflow.dart.client import dart_client
        from krxflow.dart.events import cross_check_factors, load_corporate_actions

        with dart_client() as client:
            result = load_corporate_actions(client, loaded["day"])
        day = dt.date.fromisoformat(loaded["day"])
        result["cross_check"] = cross_check_factors(day - dt.timedelta(days=6), day)["unexplained"]
        return result

    loaded = load()
    statements(loaded)
    events(loaded)


dart_disclosures()
