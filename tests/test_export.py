"""krx_export (issue 31): Parquet files that hold exactly PostgreSQL's rows, written incrementally and atomically.

One small sample market (40 tickers, 2024-08-01 .. 2024-10-31, every report on the sessions of
October) is loaded once through the real loaders (``BatchedPostgresHook``) into the session's
database. Each test exports it to its own folder (or bucket) and reads the files back with DuckDB
and pandas.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
TICKERS = 40
FIRST, LAST = dt.date(2024, 8, 1), dt.date(2024, 10, 31)
REPORTS_FROM = dt.date(2024, 10, 1)
TABLES = ("daily_prices", "daily_prices_adjusted", "adjustment_factors", "stocks", "stock_changes", "krx_indices",
          "krx_index_prices", "krx_investor_trading", "krx_fundamentals", "krx_short_selling", "krx_short_balance",
          "krx_foreign_ownership")


def settle_statistics(conn: psycopg.Connection) -> None:
    """Close krxflow's writer connections and wait until their sessions ended: a session's activity
    statistics (the export's fingerprints) are flushed at the latest when it exits."""
    from krxflow.krx.tables import shared_hook

    shared_hook().close()
    for _ in range(300):
        others = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND pid <> pg_backend_pid()").fetchone()[0]
        if others == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{others} other session(s) still open on the market database")


def write(upsert_table: str, rows: list[dict]) -> None:
    """A write through the one writer, its connection closed afterwards."""
    from krxflow.hooks import BatchedPostgresHook

    hook = BatchedPostgresHook()
    try:
        hook.upsert(upsert_table, rows)
    finally:
        hook.close()


@pytest.fixture(scope="module")
def market():
    from krxflow.db.connection import connection
    from krxflow.krx import cold_start
    from krxflow.krx.report_catalog import REPORTS
    from krxflow.krx.report_loading import load_report
    from krxflow.sample.market import SampleSource

    from krxflow.db import partitions

    with connection() as conn:
        conn.execute(sql.SQL("TRUNCATE {}, load_stats").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
        # Older months other modules of this session partitioned (e.g. 2023-06): the retention test's
        # purge would archive them first; this module's market starts in FIRST's month.
        for old in partitions.expired_partitions(conn, "daily_prices", FIRST.replace(day=1)):
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(old.name)))
        source = SampleSource(TICKERS)
        window = cold_start.plan_window(FIRST, LAST)
        cold_start.run(source, window)
        from krxflow.calendar import trading_days

        for day in trading_days(REPORTS_FROM, LAST):
            for name in REPORTS:
                load_report(source, name, day)
        if not conn.execute("SELECT count(*) FROM stock_changes").fetchone()[0]:  # 40 tickers may see no rename
            ticker = conn.execute("SELECT min(ticker) FROM stocks").fetchone()[0]
            write("stock_changes", [{"ticker": ticker, "changed_on": dt.date(2024, 9, 2), "field": "name",
                                     "old_value": "옛 이름", "new_value": "새 이름"}])
        settle_statistics(conn)
        yield conn


def _pg_rows(conn, table: str) -> list[tuple]:
    rows = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()
    return sorted(rows, key=repr)


def _normal(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    return value


def _normal_rows(rows) -> list[tuple]:
    return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)


def _glob(root: Path, dataset: str) -> str:
    return str(root / dataset / "**" / "*.parquet")


def test_every_row_read_back_with_duckdb_and_pandas_is_postgresqls(market, tmp_path):
    import duckdb
    import pandas as pd

    from krxflow.export import destination, exporter

    report = exporter.export(market, destination.local(tmp_path))
    assert report.written and report.manifest_written
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    db = duckdb.connect()
    for table in TABLES:
        expected = _normal_rows(_pg_rows(market, table))
        assert expected, f"the sample market has no {table} rows"
        columns = [c["name"] for c in manifest["datasets"][table]["schema"]]
        from_duckdb = db.execute(f"SELECT {', '.join(columns)} FROM read_parquet('{_glob(tmp_path, table)}', "
                                 "hive_partitioning = true)").fetchall()
        assert _normal_rows(from_duckdb) == expected, table
        frame = pd.read_parquet(tmp_path / table)[columns]
        from_pandas = [tuple(None if (v is None or v is pd.NaT or (isinstance(v, float) and v != v)) else
                             (v.to_pydatetime().replace(tzinfo=None) if isinstance(v, pd.Timestamp) else v)
                             for v in row) for row in frame.astype(object).itertuples(index=False)]
        assert _normal_rows(from_pandas) == expected, table
        assert manifest["datasets"][table]["rows"] == len(expected)
    for relative, entry in manifest["files"].items():
        payload = (tmp_path / relative).read_bytes()
        assert hashlib.sha256(payload).hexdigest() == entry["sha256"] and len(payload) == entry["bytes"]
    assert re.fullmatch(r"daily_prices/year=2024/month=09/daily_prices_p202409\.parquet",
                        next(p for p in manifest["files"] if p.startswith("daily_prices/year=2024/month=09")))
    assert manifest["as_of"] == report.as_of
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_rerun_writes_nothing_and_a_change_rewrites_only_its_partition(market, tmp_path):
    from krxflow.export import destination, exporter

    target = destination.local(tmp_path)
    exporter.export(market, target)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}

    again = exporter.export(market, target)
    assert again.written == [] and again.removed == [] and not again.manifest_written
    assert again.units_read == 0 and again.units_skipped > 0
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()} == before

    ticker, day, close = market.execute("SELECT ticker, trade_date, close FROM daily_prices "
                                        "WHERE trade_date = '2024-09-10' ORDER BY ticker LIMIT 1").fetchone()
    write("daily_prices", [{"ticker": ticker, "trade_date": day, "close": close + 5,
                            **dict(zip(("open", "high", "low", "volume"), market.execute(
                                "SELECT open, greatest(high, %s), low, volume FROM daily_prices "
                                "WHERE ticker = %s AND trade_date = %s", (close + 5, ticker, day)).fetchone()))}])
    settle_statistics(market)
    changed = exporter.export(market, target)
    assert changed.written == ["daily_prices/year=2024/month=09/daily_prices_p202409.parquet"]
    assert changed.units_read == 1
    import pyarrow.parquet as pq

    stored = pq.read_table(tmp_path / changed.written[0]).to_pylist()
    assert next(r for r in stored if r["ticker"] == ticker and r["trade_date"] == day)["close"] == close + 5
    untouched = {p: v for p, v in before.items() if p.name not in ("daily_prices_p202409.parquet", "manifest.json")}
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in untouched} == untouched
    # a full re-read finds the same bytes everywhere and writes nothing
    full = exporter.export(market, target, full=True)
    assert full.units_read > 0 and full.written == []


def test_each_run_is_journaled_with_its_rows_and_files(market, tmp_path):
    from krxflow.export import destination, exporter
    from krxflow.hooks import BatchedPostgresHook
    from tests.fakes.s3_server import free_port

    hook = BatchedPostgresHook()
    try:
        target = destination.local(tmp_path)
        first = exporter.export(market, target, journal=hook.journal())
        again = exporter.export(market, target, journal=hook.journal())
        gone = destination.from_url("s3://krx-research/x", access_key="a", secret_key="b",
                                    endpoint_url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(exporter.ExportError):
            exporter.export(market, gone, journal=hook.journal())
    finally:
        hook.close()
    rows = market.execute("SELECT table_name, rows_in, inserted, status, error, details FROM load_stats "
                          "WHERE operation = 'export' ORDER BY id DESC LIMIT 3").fetchall()[::-1]
    assert [r[0] for r in rows] == ["export"] * 3
    (_, read, written, status, _, details), (_, read_again, written_again, status_again, _, details_again) = rows[:2]
    assert status == status_again == "ok"
    assert read == written == first.rows_written == sum(e["rows"] for e in
                                                        json.loads((tmp_path / "manifest.json").read_text())["files"].values())
    assert details["files_written"] == len(first.written) > 0 and details["units_read"] == first.units_read > 0
    assert details["destination"] == target.url and details["as_of"] == first.as_of
    assert (read_again, written_again, details_again["files_written"], details_again["units_read"]) == (0, 0, 0, 0)
    assert details_again["units_skipped"] == again.units_skipped == first.units_read
    assert rows[2][3] == "failed" and "nothing was written" in rows[2][4]


def test_every_reader_sees_the_exports_snapshot_and_nothing_committed_after_it(market):
    from krxflow.export.reading import READ_SNAPSHOT, snapshot_readers
    from krxflow.hooks.table_spec import TableSpec

    spec = TableSpec.load(market, "stock_changes")
    ticker = market.execute("SELECT max(ticker) FROM stocks").fetchone()[0]
    with market.transaction():
        market.execute(READ_SNAPSHOT)
        before = market.execute("SELECT count(*) FROM stock_changes").fetchone()[0]  # the snapshot is taken
        write("stock_changes", [{"ticker": ticker, "changed_on": dt.date(2024, 10, 2), "field": "name",
                                 "old_value": "스냅샷 전", "new_value": "스냅샷 후"}])  # committed after it
        with snapshot_readers(market) as readers:
            assert [readers.read(spec, "stock_changes").num_rows for _ in range(4)] == [before] * 4
    assert market.execute("SELECT count(*) FROM stock_changes").fetchone()[0] == before + 1
    settle_statistics(market)


def _docs_query(name: str) -> str:
    """A query of docs/export.md, the ```sql block after the line ``<!-- query: name -->``."""
    text = (ROOT / "docs" / "export.md").read_text()
    match = re.search(rf"<!-- query: {name} -->\s*```sql\n(.*?)```", text, re.S)
    assert match, f"docs/export.md has no query {name}"
    return match.group(1)


def test_the_documented_as_known_on_query_reproduces_the_adjusted_series(market, tmp_path):
    import duckdb

    from krxflow.export import destination, exporter

    exporter.export(market, destination.local(tmp_path))
    ticker, ex_date = market.execute("SELECT ticker, ex_date FROM adjustment_factors ORDER BY ex_date LIMIT 1").fetchone()
    db = duckdb.connect()
    db.execute(f"SET file_search_path = '{tmp_path}'")
    query = _docs_query("as-known-on")

    def series(known_on: dt.date) -> dict:
        rows = db.execute(query, {"known_on": known_on, "ticker": ticker}).fetchall()
        return {row[1]: row[2] for row in rows}

    today = series(LAST)
    adjusted = dict(market.execute("SELECT trade_date, close FROM daily_prices_adjusted WHERE ticker = %s",
                                   (ticker,)).fetchall())
    assert today.keys() == adjusted.keys()
    assert all(abs(float(today[d]) - float(adjusted[d])) <= 0.0001 * max(1.0, float(adjusted[d])) for d in adjusted)
    # the day before the ex-date nobody knew the factor: the series is the raw closes up to then
    before = series(ex_date - dt.timedelta(days=1))
    raw = dict(market.execute("SELECT trade_date, close FROM daily_prices WHERE ticker = %s AND trade_date < %s",
                              (ticker, ex_date)).fetchall())
    assert before.keys() == raw.keys() and all(float(before[d]) == float(raw[d]) for d in raw)
    assert any(float(today[d]) != float(raw[d]) for d in raw)


def test_the_documented_pivot_and_its_pandas_form_give_postgresqls_closes(market, tmp_path):
    """docs/export.md's year pivot (DuckDB PIVOT) and the pandas pivot it shows: the same wide table."""
    import duckdb
    import pandas as pd

    from krxflow.export import destination, exporter

    exporter.export(market, destination.local(tmp_path))
    year = market.execute("SELECT extract(year FROM min(trade_date))::int FROM daily_prices_adjusted").fetchone()[0]
    db = duckdb.connect()
    db.execute(f"SET file_search_path = '{tmp_path}'")
    wide = db.sql(_docs_query("pivot-year").replace("year=2023", f"year={year}")).df().set_index("trade_date")
    text = (ROOT / "docs" / "export.md").read_text()
    snippet = re.search(r"```python\n(long = duckdb\.sql.*?)```", text, re.S).group(1).replace("year=2023", f"year={year}")
    scope = {"duckdb": db}
    exec(snippet, scope)
    by_pandas = scope["wide"]
    truth = pd.DataFrame(market.execute(
        "SELECT trade_date, ticker, close FROM daily_prices_adjusted WHERE extract(year FROM trade_date) = %s",
        (year,)).fetchall(), columns=["trade_date", "ticker", "close"]).pivot(
        index="trade_date", columns="ticker", values="close")
    assert len(truth) > 0 and sorted(wide.columns) == sorted(by_pandas.columns) == sorted(truth.columns)
    for frame in (wide, by_pandas):
        frame.index = pd.to_datetime(frame.index).date
        assert frame.sort_index()[sorted(truth.columns)].astype(float).equals(
            truth.sort_index()[sorted(truth.columns)].astype(float))


def test_an_s3_bucket_holds_the_same_files_and_an_unreachable_one_fails_clearly(market, tmp_path):
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from krxflow.export import destination, exporter
    from tests.fakes.s3_server import free_port, moto_server

    local_report = exporter.export(market, destination.local(tmp_path))
    with moto_server() as endpoint:
        bucket = destination.from_url("s3://krx-research/daily", access_key="testing", secret_key="testing",
                                      endpoint_url=endpoint)
        pafs.S3FileSystem(access_key="testing", secret_key="testing", endpoint_override=endpoint.split("//")[1],
                          scheme="http", region="us-east-1", allow_bucket_creation=True).create_dir("krx-research")
        report = exporter.export(market, bucket)
        assert sorted(report.written) == sorted(local_report.written)
        with bucket.filesystem.open_input_stream("krx-research/daily/manifest.json") as stream:
            manifest = json.loads(stream.read())
        local_manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert {p: e["sha256"] for p, e in manifest["files"].items()} == \
               {p: e["sha256"] for p, e in local_manifest["files"].items()}
        table = pq.read_table("krx-research/daily/daily_prices", filesystem=bucket.filesystem)
        assert table.num_rows == market.execute("SELECT count(*) FROM daily_prices").fetchone()[0]
        assert exporter.export(market, bucket).written == []
        listed = bucket.filesystem.get_file_info(pafs.FileSelector("krx-research/daily", recursive=True))
        assert not [i.path for i in listed if i.path.endswith(".tmp")]

    gone = destination.from_url("s3://krx-research/daily", access_key="testing", secret_key="testing",
                                endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(exporter.ExportError, match=r"s3://krx-research/daily.*nothing was written"):
        exporter.export(market, gone)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 192 kB tmpfs: room for a few small datasets, not for the whole export."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_fails_clearly_and_leaves_the_previous_export_intact(market, tiny_disk):
    from krxflow.export import destination, exporter
    from krxflow.export.datasets import BY_TABLE

    target = destination.local(tiny_disk / "export")
    first = exporter.export(market, target, datasets=(BY_TABLE["stocks"], BY_TABLE["krx_indices"]))
    assert first.written
    before = {p: p.read_bytes() for p in tiny_disk.rglob("*") if p.is_file()}
    with pytest.raises(exporter.ExportError, match="no space left on the export destination"):
        exporter.export(market, target)
    assert {p: p.read_bytes() for p in tiny_disk.rglob("*") if p.is_file()} == before


def test_retention_archives_and_verifies_a_partition_before_dropping_it(market, tmp_path):
    import pandas as pd

    from krxflow.db import partitions
    from krxflow.export import destination, exporter
    from krxflow.upkeep import retention

    target = destination.local(tmp_path)
    august = market.execute("SELECT * FROM daily_prices_p202408").fetchall()
    assert august

    def override(table):
        return 60 if table == "daily_prices" else None

    def archive(table, partition):
        exporter.archive_partition(market, table, partition, target)

    from tests.fakes.s3_server import free_port

    broken = destination.from_url("s3://nowhere/x", access_key="a", secret_key="b",
                                  endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(exporter.ExportError, match="daily_prices_p202408 is kept"):
        retention.purge(market, today=dt.date(2024, 11, 5), override=override,
                        before_drop=lambda table, part: exporter.archive_partition(market, table, part, broken))
    assert "daily_prices_p202408" in [p.name for p in partitions.list_partitions(market, "daily_prices")]

    reports = retention.purge(market, today=dt.date(2024, 11, 5), override=override, before_drop=archive)
    assert {r.table: r.dropped for r in reports}["daily_prices"] == ["daily_prices_p202408"]
    assert "daily_prices_p202408" not in [p.name for p in partitions.list_partitions(market, "daily_prices")]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = manifest["files"]["daily_prices/year=2024/month=08/daily_prices_p202408.parquet"]
    assert entry["source_dropped"] and entry["verified_rows"] == len(august) == entry["rows"]
    assert hashlib.sha256((tmp_path / "daily_prices/year=2024/month=08/daily_prices_p202408.parquet")
                          .read_bytes()).hexdigest() == entry["sha256"]
    # a later export keeps the archived file
    assert "daily_prices/year=2024/month=08/daily_prices_p202408.parquet" in \
        json.loads((exporter.export(market, target), tmp_path / "manifest.json")[1].read_text())["files"]
    # loaded back as docs/export.md shows: the same rows as before the drop
    from krxflow.hooks import BatchedPostgresHook

    frame = pd.read_parquet(tmp_path / "daily_prices/year=2024/month=08/daily_prices_p202408.parquet")
    BatchedPostgresHook().upsert("daily_prices", frame)
    assert sorted(market.execute("SELECT * FROM daily_prices WHERE trade_date < '2024-09-01'").fetchall()) == \
        sorted(august)


def test_one_retention_run_opens_one_reader_for_all_its_partitions(market, tmp_path, monkeypatch):
    """Each ADBC connection loads the whole catalog: the archiver of a run keeps one and re-imports snapshots."""
    import adbc_driver_postgresql.dbapi as adbc

    from krxflow.db import partitions
    from krxflow.export import destination, exporter
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.market_time import KST
    from krxflow.upkeep import retention

    today = dt.date(2024, 11, 5)
    old_days = [today - dt.timedelta(days=n) for n in (50, 45, 40)]
    BatchedPostgresHook().upsert("order_books", [
        {"ticker": "005930", "ts": dt.datetime.combine(day, dt.time(9, 30), tzinfo=KST)} for day in old_days])
    expected = [f"order_books_p{day:%Y%m%d}" for day in old_days]
    opened = []
    real_connect = adbc.connect
    monkeypatch.setattr(adbc, "connect", lambda *a, **k: opened.append(1) or real_connect(*a, **k))
    target = destination.local(tmp_path)
    with exporter.PartitionArchiver(market, target) as archive:
        reports = retention.purge(market, today=today, before_drop=archive,
                                  override=lambda table: 30 if table == "order_books" else None)
    dropped = {r.table: r.dropped for r in reports}["order_books"]
    assert set(expected) <= set(dropped) and len(opened) == 1
    assert not set(expected) & {p.name for p in partitions.list_partitions(market, "order_books")}
    files = json.loads((tmp_path / "manifest.json").read_text())["files"]
    archived = {e["unit"]: e for e in files.values()}
    assert all(archived[name]["verified_rows"] == archived[name]["rows"] == 1 for name in expected)
