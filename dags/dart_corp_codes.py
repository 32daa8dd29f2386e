"""
### dart_corp_codes — OpenDART's corp-code list (corp_code ↔ ticker), weekly

Every Monday at 06:00 KST. One request (`corpCode.xml`, a ZIP of every company OpenDART knows,
~100k) through the installation's DART gate → `dart_corp_codes` (`stock_code` is the KRX ticker,
NULL for an unlisted company), written in one transaction through the batched hook; a rerun
changes nothing. The `dart_default` Connection holds the API key (its password); without it the
sample mode asks a local fake OpenDART over the sample market. A bad or expired key fails at once
without retries. See docs/dart.md.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, dag, task

from krxflow.assets import table_asset
from krxflow.settings import MARKET_TZ


@dag(
    dag_id="dart_corp_codes",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 6 * * 1", timezone=MARKET_TZ),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=30)},
    tags=["krxflow", "dart", "weekly"],
)
def dart_corp_codes():
    @task(outlets=[table_asset("dart_corp_codes")])
    def load() -> dict:
        """corpCode.xml → `dart_corp_codes` (1 request)."""
        from krxflow.dart.client import dart_client
        from krxflow.dart.loading import load_corp_codes

        with dart_client() as client:
            return load_corp_codes(client)

    load()


dart_corp_codes()
