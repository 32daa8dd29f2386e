"""db_partitions and db_retention against the real catalog (issue 5).

"Today" is pinned in the past (2024-11-20) so the expected partition names never depend on the
machine's clock (the writer refuses rows more than 400 days in the future).
"""

from __future__ import annotations

import datetime as dt

import pytest

TODAY = dt.date(2024, 11, 20)


def _names(pg, parent):
    from krxflow.db import partitions

    return [p.name for p in partitions.list_partitions(pg, parent)]


@pytest.fixture
def bare_partitions(clean_db):
    """Every managed table with no partitions at all (data tables are empty after clean_db)."""
    from krxflow.db import partitions
    from psycopg import sql

    for policy in partitions.all_policies(clean_db):
        for name in _names(clean_db, policy.parent):
            clean_db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    clean_db.execute("TRUNCATE daily_indicators")
    return clean_db


def test_partition_ensure_all_is_idempotent_and_premakes(bare_partitions):
    from krxflow.upkeep import partition_upkeep

    pg = bare_partitions
    first = {r.parent: r.created for r in partition_upkeep.ensure_all(pg, today=TODAY)}
    assert first["daily_prices"] == ["daily_prices_p202411", "daily_prices_p202412", "daily_prices_p202501",
                                     "daily_prices_p202502"]
    assert first["order_books"] == [f"order_books_p202411{d}" for d in range(20, 28)]
    assert first["daily_indicators"][-1] == "daily_indicators_p202502"
    again = partition_upkeep.ensure_all(pg, today=TODAY)
    assert all(r.created == [] for r in again)
    assert {r.parent: r.total for r in again} == {parent: len(names) for parent, names in first.items()}
    wider = {r.parent: r.created for r in partition_upkeep.ensure_all(pg, today=TODAY, ahead=5,
                                                                       tables=["daily_prices"])}
    assert wider == {"daily_prices": ["daily_prices_p202503", "daily_prices_p202504"]}
    with pytest.raises(ValueError):
        partition_upkeep.ensure_all(pg, today=TODAY, ahead=-1)


def test_partition_from_oldest_row_fills_gaps(bare_partitions):
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.upkeep import partition_upkeep

    pg = bare_partitions
    rows = [{"ticker": "000010", "trade_date": dt.date(2024, 6, 15), "close": 100, "volume": 1}]
    BatchedPostgresHook().upsert("daily_prices", rows)  # creates only 2024-06's partition
    assert _names(pg, "daily_prices") == ["daily_prices_p202406"]
    created = {r.parent: r for r in partition_upkeep.ensure_all(pg, today=TODAY)}["daily_prices"]
    assert created.since == dt.date(2024, 6, 15)
    assert _names(pg, "daily_prices") == [f"daily_prices_p2024{m:02d}" for m in range(6, 13)] + [
        "daily_prices_p202501", "daily_prices_p202502"]


def _quotes(days):
    from krxflow.db.partitions import KST

    return [{"ticker": "000010", "ts": dt.datetime.combine(d, dt.time(10, 0), tzinfo=KST), "price": 100}
            for d in days]


@pytest.fixture
def aged_db(bare_partitions):
    """intraday_quotes from 2023-09 to 2024-11, order_books on 40 days, market_data from 2024-06."""
    from krxflow.db.partitions import KST
    from krxflow.hooks import BatchedPostgresHook

    hook = BatchedPostgresHook()
    months = [dt.date(2023 + (m - 1) // 12, (m - 1) % 12 + 1, 10) for m in range(9, 24)]  # 2023-09 .. 2024-11
    hook.upsert("intraday_quotes", _quotes(months))
    book_days = [TODAY - dt.timedelta(days=i) for i in range(40)]
    hook.upsert("order_books", [{"ticker": "000010", "ts": dt.datetime.combine(d, dt.time(9, 30), tzinfo=KST)}
                                for d in book_days])
    hook.upsert("market_data", [{"source": "kis", "key": "x", "ts": dt.datetime(2024, m, 5, tzinfo=KST),
                                 "payload": {"m": m}} for m in range(6, 12)])
    return bare_partitions


def test_retention_drops_exactly_the_expired_partitions(aged_db):
    from krxflow.upkeep import retention

    pg = aged_db
    before = {t: _names(pg, t) for t in ("intraday_quotes", "order_books", "market_data", "daily_prices")}
    dry = {r.table: r for r in retention.purge(pg, today=TODAY, dry_run=True)}
    assert {t: _names(pg, t) for t in before} == before  # dry run dropped nothing
    reports = {r.table: r for r in retention.purge(pg, today=TODAY)}
    assert {t: r.dropped for t, r in reports.items()} == {t: r.dropped for t, r in dry.items()}

    # intraday_quotes: 365 days -> cutoff 2023-11-21; months ending on or before it go
    assert reports["intraday_quotes"].cutoff == dt.date(2023, 11, 21)  # 2024 is a leap year
    assert reports["intraday_quotes"].dropped == ["intraday_quotes_p202309", "intraday_quotes_p202310"]
    assert _names(pg, "intraday_quotes")[0] == "intraday_quotes_p202311"  # holds in-policy days: kept
    # order_books: 30 days of daily partitions -> everything before 2024-10-21 goes
    assert reports["order_books"].dropped == [f"order_books_p2024{d:%m%d}" for d in
                                              sorted(TODAY - dt.timedelta(days=i) for i in range(31, 40))]
    assert min(_names(pg, "order_books")) == "order_books_p20241021"
    # market_data: 90 days -> cutoff 2024-08-22
    assert reports["market_data"].dropped == ["market_data_p202406", "market_data_p202407"]
    # daily prices and indicators: kept forever
    assert reports["daily_prices"].retention_days is None and reports["daily_prices"].dropped == []
    assert pg.execute("SELECT count(*) FROM intraday_quotes").fetchone()[0] == 13
    # idempotent
    assert all(r.dropped == [] for r in retention.purge(pg, today=TODAY))


def test_retention_variable_overrides(aged_db):
    from krxflow.upkeep import retention

    pg = aged_db
    overrides = {"intraday_quotes": "keep", "market_data": "30"}
    reports = {r.table: r for r in retention.purge(pg, today=TODAY, override=overrides.get)}
    assert reports["intraday_quotes"].dropped == [] and reports["intraday_quotes"].source == "variable"
    assert reports["market_data"].dropped == [f"market_data_p2024{m:02d}" for m in range(6, 10)]
    assert reports["order_books"].source == "policy" and len(reports["order_books"].dropped) == 9
    for bad in ("0", "-3", "ten", True):
        with pytest.raises(retention.RetentionError, match="retention_days_order_books"):
            retention.purge(pg, today=TODAY, override={"order_books": bad}.get)
