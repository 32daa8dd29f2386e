"""Partition helpers: KST bounds, idempotent creation, listing, and drops that never lose in-policy rows."""

from __future__ import annotations

import datetime as dt

import pytest

from krxflow.db import partitions
from krxflow.hooks import BatchedPostgresHook


def names(conn, table):
    return [p.name for p in partitions.list_partitions(conn, table)]


def test_partition_creation_is_idempotent_and_month_bounded(clean_db):
    created = partitions.ensure_partitions(clean_db, "daily_prices", dt.date(2017, 1, 15), dt.date(2017, 3, 2))
    assert created == ["daily_prices_p201701", "daily_prices_p201702", "daily_prices_p201703"]
    assert partitions.ensure_partitions(clean_db, "daily_prices", dt.date(2017, 1, 1), dt.date(2017, 3, 31)) == []
    listed = {p.name: p for p in partitions.list_partitions(clean_db, "daily_prices")}
    assert listed["daily_prices_p201702"].lower == dt.date(2017, 2, 1)
    assert listed["daily_prices_p201702"].upper == dt.date(2017, 3, 1)


def test_timestamp_partitions_follow_kst_days(clean_db):
    partitions.ensure_partitions(clean_db, "order_books", dt.date(2017, 5, 1), dt.date(2017, 5, 2))
    bound = clean_db.execute("""
        SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = 'order_books_p20170501'
    """).fetchone()[0]
    assert "2017-05-01 00:00:00+09" in bound or "2017-04-30 15:00:00+00" in bound
    # 23:30 KST on May 1st is 14:30 UTC: it belongs to the KST day, May 1st
    hook = BatchedPostgresHook()
    hook.append("order_books", [{"ticker": "005930", "ts": "2017-05-01 23:30:00", "total_ask_qty": 1}])
    assert clean_db.execute("SELECT count(*) FROM order_books_p20170501").fetchone()[0] == 1


def test_ensure_ahead_creates_the_premake_periods(clean_db):
    created = partitions.ensure_ahead(clean_db, "intraday_quotes", today=dt.date(2018, 6, 10), premake=2)
    assert created == ["intraday_quotes_p201806", "intraday_quotes_p201807", "intraday_quotes_p201808"]


def test_retention_drop_removes_only_whole_expired_partitions(clean_db):
    partitions.ensure_partitions(clean_db, "market_data", dt.date(2019, 1, 1), dt.date(2019, 4, 30))
    hook = BatchedPostgresHook()
    hook.append("market_data", [
        {"source": "kis", "key": "a", "ts": "2019-01-15 10:00:00", "payload": {"x": 1}},
        {"source": "kis", "key": "b", "ts": "2019-03-15 10:00:00", "payload": {"x": 2}},
    ])
    cutoff = dt.date(2019, 3, 1)  # January and February end on or before it; March does not
    would = partitions.drop_partitions_older_than(clean_db, "market_data", cutoff, dry_run=True)
    assert [n for n in would if "2019" in n] == ["market_data_p201901", "market_data_p201902"]
    assert "market_data_p201901" in names(clean_db, "market_data")  # dry run dropped nothing
    dropped = partitions.drop_partitions_older_than(clean_db, "market_data", cutoff)
    assert [n for n in dropped if "2019" in n] == ["market_data_p201901", "market_data_p201902"]
    remaining = names(clean_db, "market_data")
    assert "market_data_p201901" not in remaining and "market_data_p201903" in remaining
    assert clean_db.execute("SELECT key FROM market_data").fetchall() == [("b",)]


def test_unknown_tables_have_no_policy(clean_db):
    with pytest.raises(partitions.PartitionError, match="no row in krxflow_partitioning"):
        partitions.ensure_partitions(clean_db, "stocks", dt.date(2020, 1, 1), dt.date(2020, 1, 2))
