"""BatchedPostgresHook against the real PostgreSQL: idempotence, duplicates, atomicity, partitions,
bad rows, every input shape, and the bookkeeping in load_stats."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from krxflow.db import partitions
from krxflow.hooks import BadInputError, BatchedPostgresHook
from krxflow.hooks.table_spec import UnknownTableError
from krxflow.journal import Journal, Operation, Status

PRICE_COLUMNS = ["ticker", "trade_date", "open", "high", "low", "close", "volume", "trading_value", "change_rate"]


def daily_rows(days: int = 40, tickers=("005930", "000660", "035720"), start="2024-01-02") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=days)
    rows = []
    for t_index, ticker in enumerate(tickers):
        for d_index, day in enumerate(dates):
            close = 10_000 + 100 * t_index + d_index
            rows.append((ticker, day, close - 50, close + 100, close - 100, close, 1_000 + d_index,
                         close * (1_000 + d_index), round(0.1 * (d_index % 7) - 0.3, 2)))
    return pd.DataFrame(rows, columns=PRICE_COLUMNS)


def table_contents(pg, table: str = "daily_prices") -> list[tuple]:
    return pg.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()  # test-only read


@pytest.fixture
def hook():
    return BatchedPostgresHook(batch_size=25, stats_context={"dag_id": "tests", "run_id": "r1", "task_id": "t",
                                                               "map_index": None})


def test_upsert_twice_gives_identical_contents(clean_db, hook):
    frame = daily_rows()
    first = hook.upsert("daily_prices", frame)
    assert first.inserted == len(frame) and first.fast_path
    before = table_contents(clean_db)
    second = hook.upsert("daily_prices", frame)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, len(frame))
    assert not second.fast_path
    assert table_contents(clean_db) == before
    assert len(before) == len(frame)


def test_upsert_updates_only_changed_rows(clean_db, hook):
    frame = daily_rows(days=5)
    hook.upsert("daily_prices", frame)
    changed = frame.copy()
    changed.loc[changed.index[:3], "close"] += 1
    extra = pd.DataFrame([("005380", pd.Timestamp("2024-01-03"), 1, 2, 1, 2, 3, 6, 0.5)], columns=PRICE_COLUMNS)
    result = hook.upsert("daily_prices", pd.concat([changed, extra], ignore_index=True))
    assert (result.inserted, result.updated, result.unchanged) == (1, 3, len(frame) - 3)
    closes = dict(clean_db.execute(
        "SELECT ticker || trade_date::text, close FROM daily_prices").fetchall())
    first = changed.iloc[0]
    assert closes[f"{first.ticker}{first.trade_date:%Y-%m-%d}"] == first.close


def test_duplicate_keys_in_one_call_last_one_wins(clean_db, hook):
    frame = daily_rows(days=3, tickers=("005930",))
    later = frame.iloc[[1]].assign(close=99_999)
    result = hook.upsert("daily_prices", pd.concat([frame, later], ignore_index=True))
    assert result.duplicates == 1 and result.inserted == 3
    close = clean_db.execute("SELECT close FROM daily_prices WHERE trade_date = %s",
                             (frame.iloc[1].trade_date.date(),)).fetchone()[0]
    assert close == 99_999
    # the same on the staged path (rows already present)
    again = pd.concat([frame, frame.iloc[[1]].assign(close=12_345)], ignore_index=True)
    result = hook.upsert("daily_prices", again)
    assert result.duplicates == 1 and result.updated == 1
    assert clean_db.execute("SELECT close FROM daily_prices WHERE trade_date = %s",
                            (frame.iloc[1].trade_date.date(),)).fetchone()[0] == 12_345


@pytest.fixture
def exploding_trigger(clean_db):
    """A trigger that fails any row for ticker 999999, as a fault in the middle of a write."""
    clean_db.execute("""
        CREATE OR REPLACE FUNCTION krxflow_test_explode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.ticker = '999999' THEN RAISE EXCEPTION 'boom for %', NEW.ticker; END IF;
            RETURN NEW;
        END $$""")
    clean_db.execute("CREATE TRIGGER krxflow_test_explode BEFORE INSERT OR UPDATE ON daily_prices "
                     "FOR EACH ROW EXECUTE FUNCTION krxflow_test_explode()")
    yield
    clean_db.execute("DROP TRIGGER krxflow_test_explode ON daily_prices")
    clean_db.execute("DROP FUNCTION krxflow_test_explode()")


@pytest.mark.parametrize("preloaded", [False, True], ids=["fast-path", "staged"])
def test_error_mid_call_leaves_the_table_as_it_was(clean_db, hook, exploding_trigger, preloaded):
    frame = daily_rows(days=30)
    if preloaded:
        hook.upsert("daily_prices", frame)
    before = table_contents(clean_db)
    poisoned = frame.assign(close=frame["close"] + 7)
    poisoned = pd.concat([poisoned, poisoned.iloc[[-1]].assign(ticker="999999")], ignore_index=True)
    with pytest.raises(Exception, match="boom for 999999"):
        hook.upsert("daily_prices", poisoned)  # batch_size=25: the bad row is in the last of 4 batches
    assert table_contents(clean_db) == before
    status, error = clean_db.execute(
        "SELECT status, error FROM load_stats ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "failed" and "boom" in error


def test_missing_partitions_are_created_on_demand(clean_db, hook):
    frame = daily_rows(days=3, start="2016-03-30")  # spans March and April 2016
    assert not [p for p in partitions.list_partitions(clean_db, "daily_prices") if p.lower.year == 2016]
    result = hook.upsert("daily_prices", frame)
    created = {p.name for p in partitions.list_partitions(clean_db, "daily_prices") if p.lower.year == 2016}
    assert created == {"daily_prices_p201603", "daily_prices_p201604"}
    assert set(result.partitions_created) == created
    assert clean_db.execute("SELECT count(*) FROM daily_prices_p201604").fetchone()[0] == frame["ticker"].nunique()


def test_bad_rows_are_rejected_counted_and_reported(clean_db, hook):
    good = daily_rows(days=2, tickers=("005930",))
    bad = pd.DataFrame([
        {"ticker": None, "trade_date": "2024-01-08", "close": 1, "volume": 1},           # null key
        {"ticker": "000001", "trade_date": "2024-01-08", "close": float("nan"), "volume": 1},  # NaN, NOT NULL
        {"ticker": "000002", "trade_date": "2024-01-08", "close": float("inf"), "volume": 1},  # inf
        {"ticker": "000003", "trade_date": "2024-01-08", "close": -5, "volume": 1},      # negative price
        {"ticker": "000004", "trade_date": "2024-01-08", "close": "-", "volume": 1},     # KRX placeholder
        {"ticker": "000005", "trade_date": "2024-01-08", "close": 2**63, "volume": 1},   # bigint overflow
        {"ticker": "000006", "trade_date": "2024-01-08", "close": 10.5, "volume": 1},    # fraction in an integer
        {"ticker": "000007", "trade_date": "1999-01-08", "close": 1, "volume": 1},       # before earliest partition
        {"ticker": "000008", "trade_date": "not a date", "close": 1, "volume": 1},
        {"ticker": "000009", "trade_date": "2024-01-08", "close": 1, "volume": 1, "change_rate": 10**9},  # numeric(10,2)
        {"ticker": "000010", "trade_date": "2024/01/08", "close": "12,345", "volume": "1,000"},  # KRX text: fine
    ])
    frame = pd.concat([good[["ticker", "trade_date", "close", "volume"]], bad], ignore_index=True)
    result = hook.upsert("daily_prices", frame)
    assert result.rejected == 10
    assert result.inserted == 3
    reasons = " | ".join(r["reason"] for r in result.reject_sample)
    for expected in ("ticker: empty", "close: empty", "not finite", "close: must be >= 0", "not a number ('-')",
                     "out of range for bigint", "not a whole number", "outside the partitioned range",
                     "not a date", "does not fit numeric(10,2)"):
        assert expected in reasons, expected
    assert clean_db.execute("SELECT close, volume FROM daily_prices WHERE ticker = '000010'").fetchone() == (12345, 1000)
    status, rejected, details = clean_db.execute(
        "SELECT status, rejected, details FROM load_stats ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "warning" and rejected == 10 and len(details["reject_sample"]) == 10


def test_check_constraints_only_postgres_knows_are_enforced_per_row(clean_db, hook):
    result = hook.upsert("stocks", [
        {"ticker": "005930", "name": "삼성전자", "market": "KOSPI", "isin": "KR7005930003"},
        {"ticker": "bad!", "name": "bad ticker", "market": "KOSPI"},
        {"ticker": "000660", "name": "SK하이닉스", "market": "NYSE"},
    ])
    assert (result.inserted, result.rejected) == (1, 2)
    assert all("CHECK constraint" in r["reason"] for r in result.reject_sample)
    assert clean_db.execute("SELECT ticker FROM stocks").fetchall() == [("005930",)]


def test_dataframe_arrow_tuple_and_dict_inputs_write_the_same_rows(clean_db, hook):
    frame = daily_rows(days=4, tickers=("005930",))
    hook.upsert("daily_prices", frame)
    expected = table_contents(clean_db)
    inputs = {
        "arrow": pa.Table.from_pandas(frame, preserve_index=False),
        "record_batch": pa.RecordBatch.from_pandas(frame, preserve_index=False),
        "tuples": list(frame.itertuples(index=False, name=None)),
        "dicts": frame.to_dict("records"),
        "strings": [tuple(str(v) for v in row) for row in frame.itertuples(index=False, name=None)],
    }
    for name, data in inputs.items():
        clean_db.execute("TRUNCATE daily_prices")
        columns = PRICE_COLUMNS if name in ("tuples", "strings") else None
        result = hook.upsert("daily_prices", data, columns=columns)
        assert result.inserted == len(frame), name
        assert table_contents(clean_db) == expected, name


def test_numeric_values_are_exact(clean_db, hook):
    hook.upsert("daily_prices_adjusted", [
        {"ticker": "005930", "trade_date": dt.date(2018, 5, 4), "close": Decimal("51900.1234"), "volume": 1},
        {"ticker": "005930", "trade_date": dt.date(2018, 5, 3), "close": 0.1 + 0.2, "volume": 1},
        {"ticker": "005930", "trade_date": dt.date(2018, 5, 2), "close": "1,234.5", "volume": 2**40},
    ])
    rows = dict(clean_db.execute("SELECT trade_date, close FROM daily_prices_adjusted").fetchall())
    assert rows[dt.date(2018, 5, 4)] == Decimal("51900.1234")
    assert rows[dt.date(2018, 5, 3)] == Decimal("0.3000")
    assert rows[dt.date(2018, 5, 2)] == Decimal("1234.5000")


def test_append_inserts_new_keys_and_leaves_existing_rows(clean_db, hook):
    ts = pd.Timestamp("2026-11-20 10:00", tz="Asia/Seoul")
    first = hook.append("intraday_quotes", [{"ticker": "005930", "ts": ts, "price": 100}])
    assert first.inserted == 1
    again = hook.append("intraday_quotes", [
        {"ticker": "005930", "ts": ts, "price": 999},                        # existing key: untouched
        {"ticker": "005930", "ts": "2026-11-20 10:00:05", "price": 101},      # naive text = KST
    ])
    assert (again.inserted, again.unchanged) == (1, 1)
    rows = clean_db.execute("SELECT ts, price FROM intraday_quotes ORDER BY ts").fetchall()
    assert [r[1] for r in rows] == [100, 101]
    assert rows[1][0] == dt.datetime(2026, 11, 20, 1, 0, 5, tzinfo=dt.timezone.utc)


def test_fast_path_falls_back_when_a_concurrent_writer_got_there_first(clean_db, hook):
    from krxflow.db.connection import connect

    frame = daily_rows(days=3, tickers=("005930",))
    partitions.ensure_partitions(clean_db, "daily_prices", frame.trade_date.min().date(), frame.trade_date.max().date())
    other = connect(autocommit=False)
    try:
        other.execute("INSERT INTO daily_prices (ticker, trade_date, close, volume) VALUES ('005930', %s, 1, 1)",
                      (frame.iloc[0].trade_date.date(),))
        outcome = {}
        writer = threading.Thread(target=lambda: outcome.setdefault("result", hook.upsert("daily_prices", frame)))
        writer.start()
        time.sleep(1.0)  # the hook saw an empty range and is now waiting on the uncommitted row
        other.commit()
        writer.join(timeout=30)
    finally:
        other.close()
    result = outcome["result"]
    assert not result.fast_path
    assert (result.inserted, result.updated) == (2, 1)
    assert clean_db.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == 3


def test_a_new_ticker_takes_the_fast_path_beside_others_on_the_same_dates(clean_db, hook):
    """Per-ticker history loads: the dates are full of other tickers, this ticker's rows are new."""
    hook.upsert("daily_prices", daily_rows(days=30, tickers=("005930", "000660")))
    frame = daily_rows(days=30, tickers=("035720",))
    first = hook.upsert("daily_prices", frame)
    assert first.fast_path and first.inserted == len(frame)
    again = hook.upsert("daily_prices", frame)  # this ticker is there now: the staged path, nothing changes
    assert not again.fast_path and (again.inserted, again.updated, again.unchanged) == (0, 0, len(frame))
    mixed = daily_rows(days=30, tickers=("035720", "051910"))  # one known ticker among the new ones
    result = hook.upsert("daily_prices", mixed)
    assert not result.fast_path and (result.inserted, result.unchanged) == (30, 30)
    assert clean_db.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == 4 * 30


def test_numeric_lower_bounds_are_checked_by_the_validator_so_the_fast_path_stays_open(clean_db, hook):
    """daily_prices_adjusted's CHECK (close >= (0)::numeric) is read as a bound, not left to PostgreSQL."""
    from krxflow.hooks.table_spec import TableSpec

    spec = TableSpec.load(clean_db, "daily_prices_adjusted")
    assert spec.sql_checks == () and spec.columns["close"].lower_bound == 0
    frame = daily_rows(days=10, tickers=("005930",))[["ticker", "trade_date", "open", "high", "low", "close",
                                                      "volume"]]
    frame.loc[3, "close"] = -1
    result = hook.upsert("daily_prices_adjusted", frame)
    assert result.fast_path and (result.inserted, result.rejected) == (9, 1)
    assert "close: must be >= 0" in result.reject_sample[0]["reason"]


def _indicator_rows(adjusted: bool, days: int = 10, tickers=("005930", "000660")) -> pd.DataFrame:
    dates = pd.bdate_range("2024-01-02", periods=days)
    return pd.DataFrame([{"ticker": t, "adjusted": adjusted, "trade_date": d, "close": 1000.0 + i,
                          "ma5": 1000.5 + i, "rsi14": 10.0 * (i % 10), "stoch_k": 100.0, "stoch_d": 0.0}
                         for t in tickers for i, d in enumerate(dates)])


@pytest.fixture
def no_indicators(clean_db):
    clean_db.execute("TRUNCATE daily_indicators")  # not among clean_db's data tables
    return clean_db


def test_range_checks_are_bounds_the_validator_enforces(no_indicators, hook):
    """daily_indicators' CHECK (rsi14 BETWEEN 0 AND 100) is read as two bounds, not left to PostgreSQL,
    so out-of-range rows are rejected before COPY and the first fill takes the fast path."""
    from krxflow.hooks.table_spec import TableSpec

    spec = TableSpec.load(no_indicators, "daily_indicators")
    assert spec.sql_checks == ()
    rsi = spec.columns["rsi14"]
    assert (rsi.lower_bound, rsi.lower_inclusive, rsi.upper_bound, rsi.upper_inclusive) == (0, True, 100, True)
    frame = _indicator_rows(False)
    frame.loc[3, "rsi14"] = 100.5
    frame.loc[4, "stoch_d"] = -0.1
    result = hook.upsert("daily_indicators", frame)
    assert result.fast_path and (result.inserted, result.rejected) == (len(frame) - 2, 2)
    reasons = sorted(r["reason"] for r in result.reject_sample)
    assert reasons == ["rsi14: must be <= 100", "stoch_d: must be >= 0"]
    # the bounds are inclusive, as BETWEEN is: 100 and 0 themselves are written
    assert no_indicators.execute("SELECT count(*) FROM daily_indicators WHERE stoch_k = 100 AND stoch_d = 0").fetchone()[0] \
        == len(frame) - 2


def test_a_new_series_of_known_tickers_takes_the_fast_path(no_indicators, hook):
    """The fast-path check narrows to the key prefix before the partition key: (ticker, adjusted)."""
    raw, adjusted = _indicator_rows(False), _indicator_rows(True)
    assert hook.upsert("daily_indicators", raw).fast_path
    first = hook.upsert("daily_indicators", adjusted)  # same tickers and dates, the other series
    assert first.fast_path and first.inserted == len(adjusted)
    again = hook.upsert("daily_indicators", adjusted.assign(ma5=adjusted["ma5"] + 1))
    assert not again.fast_path and (again.inserted, again.updated) == (0, len(adjusted))
    both = pd.concat([_indicator_rows(False, tickers=("035720",)), _indicator_rows(True, tickers=("000660",))])
    mixed = hook.upsert("daily_indicators", both)  # one new prefix, one known: the staged path
    assert not mixed.fast_path and (mixed.inserted, mixed.updated) == (10, 10)  # 000660 back to its ma5
    assert no_indicators.execute("SELECT count(*) FROM daily_indicators").fetchone()[0] == 5 * 10


@pytest.fixture
def jit_probe(clean_db):
    """A table whose trigger stores the jit setting of the transaction that inserts or updates a row."""
    clean_db.execute("CREATE TABLE krxflow_test_jit (id integer PRIMARY KEY, value integer, jit text)")
    clean_db.execute("""
        CREATE FUNCTION krxflow_test_jit_seen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.jit := current_setting('jit'); RETURN NEW; END $$""")
    clean_db.execute("CREATE TRIGGER krxflow_test_jit_seen BEFORE INSERT OR UPDATE ON krxflow_test_jit "
                     "FOR EACH ROW EXECUTE FUNCTION krxflow_test_jit_seen()")
    yield
    clean_db.execute("DROP TABLE krxflow_test_jit")
    clean_db.execute("DROP FUNCTION krxflow_test_jit_seen()")


def test_writes_run_without_jit(clean_db, hook, jit_probe):
    # JIT compiles every partition's plan (~1 s per statement on a grown table): never worth it here.
    assert clean_db.execute("SHOW jit").fetchone()[0] == "on"
    hook.upsert("krxflow_test_jit", [(1, 10), (2, 20)], columns=["id", "value"])
    hook.upsert("krxflow_test_jit", [(1, 11), (3, 30)], columns=["id", "value"])  # one update, one insert
    assert clean_db.execute("SELECT id, value, jit FROM krxflow_test_jit ORDER BY id").fetchall() == \
        [(1, 11, "off"), (2, 20, "off"), (3, 30, "off")]
    assert clean_db.execute("SHOW jit").fetchone()[0] == "on", "SET LOCAL: other sessions keep their setting"


def test_bad_calls_fail_clearly_and_write_nothing(clean_db, hook):
    with pytest.raises(UnknownTableError, match="does not exist"):
        hook.upsert("no_such_table", daily_rows(days=1))
    with pytest.raises(BadInputError, match="has no column"):
        hook.upsert("daily_prices", daily_rows(days=1).assign(colour="red"))
    with pytest.raises(BadInputError, match="need columns="):
        hook.upsert("daily_prices", [("005930", "2024-01-02", 1, 1)])
    with pytest.raises(BadInputError, match="key column"):
        hook.upsert("daily_prices", daily_rows(days=1), columns=["ticker", "close", "volume"])
    with pytest.raises(BadInputError, match="generated"):
        hook.upsert("load_stats", [{"table_name": "x", "operation": "y", "rows_written": 1}], key=["table_name"])
    assert clean_db.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == 0
    failed = clean_db.execute("SELECT count(*) FROM load_stats WHERE status = 'failed'").fetchone()[0]
    assert failed >= 4


def test_every_write_is_logged_in_load_stats(clean_db, hook):
    frame = daily_rows(days=2)
    hook.upsert("daily_prices", frame)
    Journal(hook).record("daily_prices", Operation.QUALITY_CHECK, rows_in=6, status=Status.WARNING,
                         details={"gaps": 1})
    rows = clean_db.execute("SELECT dag_id, run_id, task_id, table_name, operation, rows_in, inserted, "
                            "rows_written, status, details FROM load_stats ORDER BY id").fetchall()
    assert rows[0][:9] == ("tests", "r1", "t", "daily_prices", "upsert", len(frame), len(frame), len(frame), "ok")
    assert rows[0][9]["fast_path"] is True
    assert rows[1][4:6] == ("quality_check", 6) and rows[1][9] == {"gaps": 1}


def test_empty_input_writes_nothing_and_says_so(clean_db, hook):
    result = hook.upsert("daily_prices", pd.DataFrame(columns=PRICE_COLUMNS))
    assert (result.rows_in, result.inserted, result.rejected) == (0, 0, 0)
    assert clean_db.execute("SELECT rows_in, status FROM load_stats").fetchall() == [(0, "ok")]


def _backend_pid(hook) -> int:
    with hook.thread_connection() as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_calls_on_one_hook_share_one_connection_per_thread(clean_db, hook):
    first = _backend_pid(hook)
    hook.upsert("daily_prices", daily_rows(days=5))
    Journal(hook).record("daily_prices", Operation.HISTORY_TICKER, rows_in=1)
    assert _backend_pid(hook) == first, "reads, writes and the journal on the hook's one connection"
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(_backend_pid(hook)))
    thread.start()
    thread.join()
    assert other and other[0] != first, "another thread, another connection"
    hook.close()
    assert _backend_pid(hook) != first


def test_a_connection_the_server_ended_or_a_failed_write_left_is_replaced(clean_db, hook, exploding_trigger):
    first = _backend_pid(hook)
    clean_db.execute("SELECT pg_terminate_backend(%s)", (first,))
    for _ in range(50):  # the server ends it asynchronously
        if not clean_db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,)).fetchone():
            break
        time.sleep(0.05)
    hook.upsert("daily_prices", daily_rows(days=5))
    assert table_contents(clean_db), "the next call opened another connection and wrote"
    second = _backend_pid(hook)
    assert second != first
    frame = daily_rows(days=5)
    with pytest.raises(Exception, match="boom for 999999"):
        hook.upsert("daily_prices", pd.concat([frame, frame.iloc[[-1]].assign(ticker="999999")], ignore_index=True))
    hook.upsert("daily_prices", frame.assign(close=frame["close"] + 1))
    assert {row[5] for row in table_contents(clean_db)} == set(frame["close"] + 1), "writes go on after a failure"


def test_a_forked_child_never_uses_its_parents_connection(clean_db, hook):
    import os

    parent = _backend_pid(hook)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, str(_backend_pid(hook)).encode())
        finally:
            os._exit(0)
    os.close(write)
    reported = os.read(read, 64).decode()
    os.waitpid(child, 0)
    assert reported and int(reported) != parent
    assert _backend_pid(hook) == parent, "and the parent's connection still works"


def test_a_write_inside_the_hooks_connection_joins_it(clean_db, hook):
    with hook.thread_connection() as conn, conn.transaction():
        hook.upsert("daily_prices", daily_rows(days=5))
        assert conn.execute("SELECT count(*) FROM daily_prices").fetchone()[0] == 15
    assert len(table_contents(clean_db)) == 15
    with pytest.raises(RuntimeError, match="changed my mind"):
        with hook.thread_connection() as conn, conn.transaction():
            hook.upsert("daily_prices", daily_rows(days=5).assign(close=1))
            raise RuntimeError("changed my mind")
    assert {row[5] for row in table_contents(clean_db)} != {1}, "the caller's transaction held the write"
