"""``airflow backfill create`` of ``krx_market_reports`` over a week with a holiday, by a real scheduler.

As tests/test_krx_backfill_cli.py does for krx_daily_prices, and on the same session-wide
``local_airflow_stack`` (the api-server for the Execution API and the scheduler, subprocesses
against the test session's databases, started once for both tests); 2024-02-07..2024-02-14
(Seollal: 9 and 12 February are holidays) is backfilled with the sample source for two reports
(the ``reports`` Param given with ``--dag-run-conf``, to keep the run short); exactly the four
sessions get runs, each with its rows and its quality check.
"""

from __future__ import annotations

import json

import pytest

from tests.test_krx_backfill_cli import SESSIONS, backfill_through_the_cli

DAG_ID = "krx_market_reports"


@pytest.mark.integration
def test_backfill_create_loads_the_reports_of_each_session_only(airflow_db, clean_db, redis_client,
                                                                 local_airflow_stack):
    from psycopg import sql

    from krxflow.krx.report_catalog import REPORTS

    pg = clean_db  # every report table empty: the run must fill exactly the two reports asked for
    pg.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in
                                                                 sorted({r.table for r in REPORTS.values()}))))
    backfill_through_the_cli(local_airflow_stack, DAG_ID, "--dag-run-conf",
                             json.dumps({"reports": ["fundamentals", "foreign_ownership"]}))
    for table in ("krx_fundamentals", "krx_foreign_ownership"):
        days = pg.execute(sql.SQL("SELECT trade_date, count(*) FROM {} GROUP BY 1 ORDER BY 1")
                          .format(sql.Identifier(table))).fetchall()
        assert [d for d, _ in days] == SESSIONS and all(n > 10 for _, n in days), table
    checks = pg.execute("SELECT table_name, count(*) FROM load_stats WHERE operation = 'quality_check' "
                        "AND dag_id = %s GROUP BY 1 ORDER BY 1", (DAG_ID,)).fetchall()
    assert checks == [("krx_foreign_ownership", len(SESSIONS)), ("krx_fundamentals", len(SESSIONS))]
    assert pg.execute("SELECT count(*) FROM krx_investor_trading").fetchone()[0] == 0
