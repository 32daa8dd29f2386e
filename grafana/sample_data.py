"""Put sample data behind every krxflow dashboard panel and API endpoint, through the normal load path.

Used by the read-side tests and by ``bench/grafana_queries.py``:

* ``load_market`` — ticker master, raw daily prices and the adjusted series derived from them, from a
  :class:`~krxflow.krx.interface.KrxSource` (the offline ``sample`` source in tests and benches),
  written with :class:`~krxflow.hooks.BatchedPostgresHook` exactly like the ingest DAGs do;
* ``load_reports`` — the other daily KRX reports of some sessions (issue 17), as the
  ``krx_market_reports`` DAG loads them;
* ``load_disclosures`` — OpenDART filings of some days from the fake OpenDART (issue 28);
* ``load_universe`` — industries, index constituents and delistings of some sessions (issue 27),
  as the ``krx_universe`` DAG loads them;
* ``refresh_read_models`` — the upkeep module's materialized-view refresh and indicator update;
* ``load_intraday`` — one KST session of KIS-like snapshots and 10-level order books;
* ``load_pipeline_stats`` — the ``load_stats`` rows the pipeline-health dashboard reads that are
  not table writes (KIS polling windows, quality checks, backups), via the journal.

Everything is deterministic: the same arguments give the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

from krxflow.journal import Journal, Operation
from krxflow.market_time import KST


@dataclass
class LoadReport:
    tickers: int = 0
    stocks: int = 0
    daily_rows: int = 0
    adjusted_rows: int = 0
    seconds: float = 0.0


def load_market(hook, source, first: dt.date, last: dt.date, *, tickers: list[str] | None = None,
                chunk_tickers: int = 250, progress=None, adjust: bool = True) -> LoadReport:
    """Load the ticker master and the raw daily series of ``first``..``last`` from ``source``, then
    derive the adjustment factors and the adjusted series from them, as krxflow does (``adjust``).

    Histories are fetched ticker by ticker (as the backfill DAG does) and written a calendar year
    at a time, oldest first: each write then lands in partitions that hold no rows yet, which is
    the writer's straight-COPY fast path on an empty database and its upsert path otherwise.
    """
    import time

    import pandas as pd

    from krxflow.krx.master import load_listing
    from krxflow.krx.tables import for_hook
    from krxflow.krx.adjusting import adjust_market
    from krxflow.krx.interface import DAILY_COLUMNS

    started = time.perf_counter()
    report = LoadReport()
    load_listing(source, last, hook=hook)  # the krx_tickers DAG's own step
    known = sorted(set(source.listing(last)["ticker"]) | set(source.delisted()["ticker"]))
    names = [t for t in known if tickers is None or t in set(tickers)]
    report.stocks = len(names)
    report.tickers = len(names)
    raw = []
    for start in range(0, len(names), chunk_tickers):
        chunk = names[start:start + chunk_tickers]
        raw += [f for f in (source.history(t, first, last, adjusted=False) for t in chunk) if len(f)]
        if progress:
            progress(start + len(chunk), len(names), report)
    if raw:
        frame = for_hook(pd.concat(raw, ignore_index=True)[DAILY_COLUMNS])
        years = pd.to_datetime(frame["trade_date"]).dt.year
        for year in sorted(years.unique()):
            report.daily_rows += hook.upsert("daily_prices", frame[(years == year).to_numpy()]).rows_written
        if adjust:
            report.adjusted_rows = adjust_market(hook=hook).rows_written
    report.seconds = time.perf_counter() - started
    return report


def load_reports(hook, source, days) -> dict[str, int]:
    """The other daily KRX reports (indices, investors, fundamentals, shorts, foreign ownership) of
    the sessions ``days`` from ``source``, through the reports' own loader; rows written per table."""
    from krxflow.krx.report_catalog import REPORTS
    from krxflow.krx.report_loading import load_report

    written: dict[str, int] = {}
    for day in days:
        for name, report in REPORTS.items():
            result = load_report(source, name, day, hook=hook)
            written[report.table] = written.get(report.table, 0) + result["inserted"] + result["updated"]
    return written


def load_universe(hook, source, days) -> list[dict]:
    """The universe (industries, index constituents, delistings) of the sessions ``days`` from
    ``source``, through the universe's own loader (every followed index asked on each); its results."""
    from krxflow.krx.universe import load_universe as load

    return [load(source, day, hook=hook, indices="all") for day in days]


def load_disclosures(hook, companies: int, days, *, filings_per_company: float = 1.0) -> list[dict]:
    """OpenDART filings of ``days`` from a local fake over the sample market of ``companies`` tickers,
    through the disclosures loader (the gate in Redis, no pacing delay worth the name); its results."""
    from krxflow.dart.client import DartClient
    from krxflow.dart.config import DartConfig
    from krxflow.dart.gate import DartGate
    from krxflow.dart.loading import load_disclosures as load
    from krxflow.sample.dart_server import DEMO_KEY, FakeDart, FakeDartThread

    with FakeDartThread(FakeDart(companies, filings_per_company=filings_per_company)) as server:
        client = DartClient(DartConfig(api_key=DEMO_KEY, base_url=server.url), DartGate(per_minute=60_000))
        return [load(client, day, hook=hook) for day in days]


def refresh_read_models(conn, hook) -> list[str]:
    """Refresh the materialized views and bring ``daily_indicators`` up to date (upkeep module)."""
    from krxflow.upkeep import indicators, matviews

    done = [r.summary() for r in matviews.refresh_all(conn)]
    done += [r.summary() for r in indicators.update(conn, hook)]
    return done


def session_minutes(day: dt.date, every_seconds: int = 60) -> list[dt.datetime]:
    """Snapshot instants of the regular KST session 09:00–15:30 of ``day``."""
    start = dt.datetime.combine(day, dt.time(9, 0), KST)
    count = int(6.5 * 3600 // every_seconds) + 1
    return [start + dt.timedelta(seconds=every_seconds * i) for i in range(count)]


def load_intraday(hook, tickers: list[str], day: dt.date, *, every_seconds: int = 60,
                  base_prices: dict[str, int] | None = None):
    """KIS-like snapshots and order books of ``tickers`` over the session of ``day``."""
    import pandas as pd

    quotes, books = [], []
    for n, ticker in enumerate(tickers):
        base = (base_prices or {}).get(ticker) or 10_000 * (n + 1)
        cum_volume = 0
        day_high = day_low = base
        for i, ts in enumerate(session_minutes(day, every_seconds)):
            price = max(1, int(round(base * (1 + 0.02 * math.sin(i / 17 + n)) / 10)) * 10)
            cum_volume += 100 + (i * 37 + n * 11) % 900
            day_high, day_low = max(day_high, price), min(day_low, price)
            quotes.append({"ticker": ticker, "ts": ts, "price": price, "change": price - base,
                           "change_rate": round(100 * (price - base) / base, 2), "cum_volume": cum_volume,
                           "cum_value": cum_volume * price, "open": base, "high": day_high, "low": day_low,
                           "halted": False})
            book = {"ticker": ticker, "ts": ts}
            for level in range(1, 11):
                book[f"ask_price_{level}"] = price + 10 * level
                book[f"bid_price_{level}"] = price - 10 * level
                book[f"ask_qty_{level}"] = 100 * level + (i + n) % 50
                book[f"bid_qty_{level}"] = 120 * level + (i * 3 + n) % 50
            book["total_ask_qty"] = sum(book[f"ask_qty_{k}"] for k in range(1, 11))
            book["total_bid_qty"] = sum(book[f"bid_qty_{k}"] for k in range(1, 11))
            books.append(book)
    q = hook.upsert("intraday_quotes", pd.DataFrame(quotes))
    b = hook.upsert("order_books", pd.DataFrame(books))
    return q, b


def load_realtime(hook, conn, tickers: list[str], day: dt.date, *, trades_per_minute: int = 3):
    """Pushed trades, 1-minute bars and the collector's ``kis_ws_stats`` rows over the session of ``day``."""
    import pandas as pd

    from krxflow.journal import Operation

    trades, bars = [], []
    for n, ticker in enumerate(tickers):
        base, cum_volume, price = 10_000 * (n + 1), 0, 10_000 * (n + 1)
        for i, minute in enumerate(session_minutes(day)):
            open_ = price
            prices = []
            for k in range(trades_per_minute):
                price = max(10, open_ + 10 * ((i + k + n) % 5 - 2))
                volume = 10 + (i * 7 + k * 3 + n) % 90
                cum_volume += volume
                prices.append((price, volume))
                ts = minute + dt.timedelta(seconds=k * (60 // trades_per_minute))
                trades.append({"ticker": ticker, "ts": ts, "cum_volume": cum_volume, "price": price,
                               "volume": volume, "side": "buy" if (i + k) % 2 else "sell", "halted": False,
                               "change": price - base, "received_at": ts + dt.timedelta(milliseconds=300)})
            bars.append({"ticker": ticker, "minute": minute, "open": open_, "high": max(p for p, _ in prices),
                         "low": min(p for p, _ in prices), "close": price, "volume": sum(v for _, v in prices),
                         "value": sum(p * v for p, v in prices)})
    stats = [{"table_name": "trades", "operation": str(Operation.KIS_WS_STATS), "status": "ok",
              "finished_at": minute, "seconds": 60.0, "rows_in": 5000 * 60,
              "details": {"messages": 5000 * 60, "unparsed": int(i % 7 == 0), "reconnects": int(i == 90),
                          "redis_errors": 0, "refused": 0, "lag_p50_s": 0.6, "lag_p99_s": 1.2 + (i % 3) / 10}}
             for i, minute in enumerate(session_minutes(day))]
    hook.ensure_partitions("trades", day, day)
    hook.ensure_partitions("minute_bars", day, day)
    t = hook.upsert("trades", pd.DataFrame(trades))
    b = hook.upsert("minute_bars", pd.DataFrame(bars))
    ids = conn.execute("SELECT nextval(pg_get_serial_sequence('load_stats', 'id')) FROM generate_series(1, %s)",
                       (len(stats),)).fetchall()
    frame = pd.DataFrame(stats)
    frame.insert(0, "id", [i[0] for i in ids])
    frame["details"] = frame["details"].map(json.dumps)
    hook.append("load_stats", frame)
    return t, b


def load_pipeline_stats(hook, now: dt.datetime, *, days: int = 3, windows_per_day: int = 12) -> int:
    """KIS polling windows, daily-price quality checks and backups over the ``days`` before ``now``."""
    journal = Journal(hook)
    written = 0
    for d in range(days):
        day_end = now - dt.timedelta(days=d)
        for w in range(windows_per_day):
            requests = 600 + 10 * w
            journal.record("intraday_quotes", Operation.KIS_POLL_WINDOW, rows_in=requests, inserted=requests - 50,
                           seconds=60.0, details={"requests": requests, "successes": requests - 12,
                                                  "throttles": 12, "retries": 9, "dedupe_hits": 40 + w,
                                                  "rows_written": requests - 50, "sweep_seconds": 55.5})
            written += 1
        journal.record("daily_prices", Operation.QUALITY_CHECK, status="warning" if d == 0 else "ok",
                       details={"gaps": [{"ticker": "005930", "missing": [str(day_end.date())]}] if d == 0 else [],
                                "checked_tickers": 2700})
        journal.record("backup", Operation.PG_DUMP, seconds=42.0, details={"path": f"/backups/krxflow-{d}.dump",
                                                                             "bytes": 123_456_789})
        written += 2
    return written


def load_pipeline_history(hook, conn, now: dt.datetime, *, days: int = 30, windows_per_day: int = 390,
                          dags_per_day: int = 40) -> int:
    """A month of ``load_stats`` as production leaves it, appended in one write through the hook.

    Per KST day: one KIS polling window per minute of the session, one write per DAG task, a
    daily-price quality check and a pg_dump backup; ``finished_at`` spread over the day.
    """
    import pandas as pd

    rows = []
    for d in range(days):
        day = (now - dt.timedelta(days=d)).astimezone(KST).date()
        open_at = dt.datetime.combine(day, dt.time(9, 0), KST)
        for w in range(windows_per_day):
            requests = 580 + (w * 7 + d) % 60
            throttles = (w + d) % 5
            rows.append({"dag_id": "kis_intraday", "task_id": "drain", "table_name": "intraday_quotes",
                         "operation": Operation.KIS_POLL_WINDOW, "rows_in": requests, "inserted": requests - 40,
                         "seconds": 60.0, "status": "warning" if throttles > 3 else "ok",
                         "finished_at": open_at + dt.timedelta(minutes=w + 1),
                         "details": {"requests": requests, "successes": requests - throttles, "throttles": throttles,
                                     "retries": throttles, "dedupe_hits": 30 + w % 20, "rows_written": requests - 40,
                                     "sweep_seconds": 52.0 + w % 7}})
        for k in range(dags_per_day):
            dag = ("krx_daily_prices", "krx_tickers", "krx_history", "db_matviews", "db_indicators")[k % 5]
            rows.append({"dag_id": dag, "task_id": f"load_{k}", "table_name": "daily_prices", "operation": Operation.UPSERT,
                         "rows_in": 2800, "inserted": 2790, "rejected": k % 3, "seconds": 1.5,
                         "status": "warning" if k % 3 else "ok",
                         "finished_at": dt.datetime.combine(day, dt.time(16, 0), KST) + dt.timedelta(minutes=k),
                         "details": {}})
        rows.append({"dag_id": "krx_daily_prices", "task_id": "quality", "table_name": "daily_prices",
                     "operation": Operation.QUALITY_CHECK, "status": "ok" if d % 4 else "warning", "seconds": 3.0,
                     "finished_at": dt.datetime.combine(day, dt.time(17, 0), KST),
                     "details": {"gaps": [{"ticker": "005930"}] if d % 4 == 0 else [], "checked_tickers": 2800}})
        rows.append({"dag_id": "db_backup", "task_id": "dump", "table_name": "backup", "operation": Operation.PG_DUMP,
                     "status": "ok", "seconds": 120.0, "finished_at": dt.datetime.combine(day, dt.time(2, 0), KST),
                     "details": {"bytes": 3_000_000_000}})
    rows = [row for row in rows if row["finished_at"] <= now]
    ids = conn.execute("SELECT nextval(pg_get_serial_sequence('load_stats', 'id')) FROM generate_series(1, %s)",
                       (len(rows),)).fetchall()
    frame = pd.DataFrame(rows)
    counters = ["rows_in", "inserted", "rejected"]
    frame[counters] = frame[counters].fillna(0).astype("int64")
    frame.insert(0, "id", [i[0] for i in ids])
    frame["details"] = frame["details"].map(json.dumps)
    return hook.append("load_stats", frame).rows_written
