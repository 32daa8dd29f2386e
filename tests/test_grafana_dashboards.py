"""Grafana provisioning and dashboards: valid, wired to the provisioned datasource, and every panel's
SQL — expanded the way Grafana expands it — runs against the real schema with sample data and
returns the columns its panel type needs.

Data goes in through the normal load path (sample KRX source -> BatchedPostgresHook), the read
models are refreshed by the upkeep module, and the panel queries run as ``krxflow_readonly`` —
the role the Grafana datasource uses — so a missing grant fails here, not on a dashboard.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from grafana import build_dashboards, panel_sql
from grafana.panel_sql import DATASOURCE_TYPE, DATASOURCE_UID, kst_range
from krxflow.journal import Journal, Operation, Status

ROOT = Path(__file__).resolve().parents[1]
KST = ZoneInfo("Asia/Seoul")
FIRST, LAST = dt.date(2023, 1, 2), dt.date(2024, 12, 30)
INTRADAY_DAY = dt.date(2024, 12, 30)
#: Sessions whose other KRX reports (issue 17) are loaded for the report panels.
REPORT_SESSIONS = [dt.date(2024, 12, d) for d in (16, 17, 18, 19, 20, 23, 24, 26, 27, 30)]
#: Sessions whose universe (issue 27) is loaded, and the one the universe panels are shown for.
UNIVERSE_SESSIONS = [dt.date(2024, 12, 2), dt.date(2024, 12, 30)]
UNIVERSE_DAY = dt.date(2024, 12, 30)
SAMSUNG = "005930"
DASHBOARDS = panel_sql.load_dashboards()

#: What each panel must return: (dashboard uid, panel id) -> exact column names.
EXPECTED_COLUMNS = {
    ("krxflow-stock", 1): ["time", "open", "high", "low", "close", "volume", "ma5", "ma20", "ma60", "ma120"],
    ("krxflow-stock", 2): ["time", "close", "change_rate"],
    ("krxflow-stock", 3): ["ticker", "name", "market", "sector", "listed_shares", "market_cap", "last_trade_date",
                           "last_close", "first_seen", "delisted", "delisted_on"],
    ("krxflow-stock", 4): ["time", "volume", "trading_value"],
    ("krxflow-stock", 5): ["time", "close", "bb_upper", "bb_middle", "bb_lower"],
    ("krxflow-stock", 6): ["time", "rsi14"],
    ("krxflow-stock", 7): ["time", "macd", "macd_signal", "macd_hist"],
    ("krxflow-stock", 8): ["time", "stoch_k", "stoch_d"],
    ("krxflow-stock", 9): ["time", "metric", "net_value"],
    ("krxflow-stock", 10): ["time", "per", "pbr", "dividend_yield"],
    ("krxflow-stock", 11): ["time", "short_volume", "balance_quantity", "balance_ratio"],
    ("krxflow-stock", 12): ["index_code", "index_name", "index_group", "entered_on", "exited_on", "industry"],
    ("krxflow-stock", 13): ["date", "report", "filer", "remarks", "url"],
    ("krxflow-market", 15): ["ticker", "name", "market", "report", "filer", "remarks", "url"],
    ("krxflow-market", 1): ["time", "metric", "advancers", "decliners"],
    ("krxflow-market", 2): ["time", "metric", "ad_line"],
    ("krxflow-market", 3): ["time", "metric", "trading_value"],
    ("krxflow-market", 4): ["time", "metric", "mean_return"],
    ("krxflow-market", 5): ["time", "metric", "tickers_traded", "advancers", "decliners", "unchanged"],
    ("krxflow-market", 6): ["ticker", "name", "market", "close", "change_rate", "volume", "trading_value"],
    ("krxflow-market", 7): ["ticker", "name", "market", "close", "change_rate", "volume", "trading_value"],
    ("krxflow-market", 8): ["ticker", "name", "market", "close", "market_cap", "share_of_market_pct"],
    ("krxflow-market", 9): ["time", "open", "high", "low", "close", "volume", "advancers", "decliners"],
    ("krxflow-market", 10): ["time", "metric", "net_value"],
    ("krxflow-market", 11): ["ticker", "name", "market", "foreigners_net_value", "institutions_net_value",
                             "individuals_net_value"],
    ("krxflow-market", 12): ["time", "metric", "per_p25", "per_median", "per_p75", "pbr_median"],
    ("krxflow-market", 13): ["ticker", "name", "market", "balance_ratio", "balance_value", "short_share_of_volume_pct"],
    ("krxflow-market", 14): ["market", "industry", "change_rate", "market_cap", "tickers"],
    ("krxflow-intraday", 1): ["time", "price"],
    ("krxflow-intraday", 2): ["time", "price", "change_rate", "cum_volume", "halted"],
    ("krxflow-intraday", 3): ["time", "volume"],
    ("krxflow-intraday", 4): ["price", "ask_qty", "bid_qty"],
    ("krxflow-intraday", 5): ["time", "total_bid_qty", "total_ask_qty", "spread"],
    ("krxflow-intraday", 6): ["time", "price"],
    ("krxflow-intraday", 7): ["time", "buy_volume", "sell_volume", "volume"],
    ("krxflow-intraday", 8): ["time", "open", "high", "low", "close", "volume", "value"],
    ("krxflow-intraday", 9): ["time", "messages_per_second", "lag_p50_s", "lag_p99_s"],
    ("krxflow-intraday", 10): ["time", "reconnects", "unparsed_frames", "redis_errors", "refused_registrations"],
    ("krxflow-pipeline", 1): ["dag_id", "last_success", "table_name", "rows_written", "age_seconds", "last_attempt",
                              "last_status"],
    ("krxflow-pipeline", 2): ["time", "backup_age_seconds"],
    ("krxflow-pipeline", 3): ["time", "metric", "rows_written"],
    ("krxflow-pipeline", 4): ["time", "metric", "rejected"],
    ("krxflow-pipeline", 5): ["time", "table_name", "operation", "status", "gaps", "error", "details"],
    ("krxflow-pipeline", 6): ["time", "requests", "successes", "throttles", "retries"],
    ("krxflow-pipeline", 7): ["time", "requests_per_second", "rows_per_second", "sweep_seconds"],
    ("krxflow-pipeline", 8): ["time", "dedupe_hit_rate_pct", "throttle_rate_pct"],
    ("krxflow-pipeline", 9): ["time", "dag_id", "task_id", "map_index", "table_name", "operation", "status",
                              "rows_in", "rejected", "error"],
}
ALL_QUERIES = [q for d in DASHBOARDS.values() for q in panel_sql.panel_queries(d)]
NUMBER = (int, float, Decimal)


# ------------------------------------------------------------------------------------ static checks
def test_committed_json_is_what_the_builder_generates():
    for name, builder in build_dashboards.DASHBOARDS.items():
        committed = (ROOT / "grafana" / "dashboards" / name).read_text(encoding="utf-8")
        assert committed == build_dashboards.render(builder), f"run python grafana/build_dashboards.py ({name})"
    assert set(DASHBOARDS) == set(build_dashboards.DASHBOARDS)


def test_dashboards_are_valid_json_with_unique_uids_and_panel_ids():
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids)) == 4
    titles = {d["title"] for d in DASHBOARDS.values()}
    assert titles == {"krxflow · Stock", "krxflow · Market", "krxflow · Intraday", "krxflow · Pipeline health"}
    for dashboard in DASHBOARDS.values():
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard["uid"])
        ids = [p["id"] for p in panel_sql.iter_panels(dashboard)]
        assert len(ids) == len(set(ids)), dashboard["uid"]
        assert dashboard["timezone"] == "Asia/Seoul"
        assert isinstance(dashboard["schemaVersion"], int)
        for panel in panel_sql.iter_panels(dashboard):
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["targets"]


def test_there_are_at_least_15_panels_and_each_is_expected():
    assert len(ALL_QUERIES) >= 15
    assert {(q.dashboard_uid, q.panel_id) for q in ALL_QUERIES} == set(EXPECTED_COLUMNS)


def test_every_panel_and_variable_uses_the_provisioned_datasource_uid():
    for dashboard in DASHBOARDS.values():
        for panel in panel_sql.iter_panels(dashboard):
            assert panel["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
                assert target["rawQuery"] is True and target["editorMode"] == "code"
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


def test_datasource_provisioning_reads_credentials_from_the_environment():
    config = yaml.safe_load((ROOT / "grafana/provisioning/datasources/krxflow.yaml").read_text())
    assert config["apiVersion"] == 1
    [source] = config["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == DATASOURCE_TYPE
    assert source["jsonData"]["database"] == "${KRXFLOW_PG_DATABASE}"
    assert source["user"] == "${KRXFLOW_GRAFANA_DB_USER}"
    assert source["secureJsonData"] == {"password": "${KRXFLOW_GRAFANA_DB_PASSWORD}"}
    assert "password" not in source and "password" not in source["jsonData"]
    assert source["editable"] is False


def test_dashboard_provider_loads_the_dashboards_folder():
    config = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/krxflow.yaml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].endswith("/dashboards/krxflow")
    assert provider["allowUiUpdates"] is False


def test_time_filters_use_the_right_columns():
    """$__timeFilter only on timestamptz columns; KST dates for date columns; never UTC day buckets."""
    for q in ALL_QUERIES:
        for column in re.findall(r"\$__timeFilter\(([^)]*)\)", q.raw_sql):
            assert column in ("ts", "finished_at", "minute"), (q.name, column)
        assert not re.search(r"\$__timeGroup\w*\([^,]+,\s*'?1d", q.raw_sql), q.name
        if re.search(r"\b(trade_date|period_start)\b", q.raw_sql):
            assert "$__timeFilter" not in q.raw_sql
            assert "AT TIME ZONE 'Asia/Seoul'" in q.raw_sql
        if re.search(r"\b(intraday_quotes|order_books|trades)\b", q.raw_sql):
            assert "$__timeFilter(ts)" in q.raw_sql, q.name
        if re.search(r"\bminute_bars\b", q.raw_sql):
            assert "$__timeFilter(minute)" in q.raw_sql, q.name


def test_table_panels_are_bounded():
    for q in ALL_QUERIES:
        if q.format == "table" and q.panel_type == "table":
            assert re.search(r"\bLIMIT \d+\s*$", q.raw_sql), q.name


# ------------------------------------------------------------------------------------ against the database
@pytest.fixture(scope="module")
def loaded():
    """Two years of 30 sample tickers, refreshed read models, one intraday session, pipeline stats."""
    from psycopg import sql

    from grafana import sample_data
    from krxflow.db.connection import connection
    from krxflow.hooks import BatchedPostgresHook
    from krxflow.sample.market import SampleSource

    with connection() as conn:
        conn.execute(sql.SQL("TRUNCATE stocks, daily_prices, daily_prices_adjusted, daily_indicators, "
                             "intraday_quotes, order_books, trades, minute_bars, load_stats, krx_indices, krx_index_prices, "
                             "krx_investor_trading, krx_fundamentals, krx_short_selling, krx_short_balance, "
                             "krx_foreign_ownership, krx_industry_history, krx_index_members, krx_delistings, "
                             "krx_universe_checks, stock_changes, disclosures"))
        hook = BatchedPostgresHook(stats_context={"dag_id": "krx_daily_prices", "run_id": "test", "task_id": "load"})
        sample_data.load_market(hook, SampleSource(tickers=30), FIRST, LAST)
        sample_data.load_reports(hook, SampleSource(tickers=30), REPORT_SESSIONS)
        sample_data.load_universe(hook, SampleSource(tickers=30), UNIVERSE_SESSIONS)
        sample_data.load_disclosures(hook, 30, [*REPORT_SESSIONS, *UNIVERSE_SESSIONS])
        sample_data.refresh_read_models(conn, hook)
        tickers = [SAMSUNG] + [r[0] for r in conn.execute(
            "SELECT ticker FROM stocks WHERE NOT delisted AND ticker <> %s ORDER BY ticker LIMIT 2", (SAMSUNG,))]
        sample_data.load_intraday(hook, tickers, INTRADAY_DAY)
        sample_data.load_realtime(hook, conn, tickers, INTRADAY_DAY)
        now = dt.datetime.now(KST)
        sample_data.load_pipeline_stats(hook, now)
        from krxflow.krx import loading

        quality = loading.check_daily_quality(LAST, hook=hook)  # the krx_daily_prices DAG's own check
        Journal(hook).record("daily_prices", Operation.UPSERT, rows_in=5, inserted=4, rejected=1,
                             status=Status.WARNING, error="1 row rejected")
        # A write at 08:00 KST on a day is 23:00 UTC the day before: it must count for the KST day.
        boundary = dt.datetime.combine(now.date() - dt.timedelta(days=1), dt.time(8, 0), KST)
        probe_id = conn.execute("SELECT nextval(pg_get_serial_sequence('load_stats', 'id'))").fetchone()[0]
        hook.append("load_stats", [{"id": probe_id, "dag_id": "kst_boundary", "table_name": "boundary_probe", "operation": "append",
                                     "inserted": 777, "finished_at": boundary}])
    return {"now": now, "boundary": boundary, "quality": quality}


def _ranges(q: panel_sql.PanelQuery, now: dt.datetime):
    if q.dashboard_uid == "krxflow-intraday":
        return kst_range(str(INTRADAY_DAY), str(INTRADAY_DAY))
    if q.dashboard_uid == "krxflow-pipeline":
        return panel_sql.TimeRange(now - dt.timedelta(days=7), now + dt.timedelta(minutes=1))
    return kst_range("2024-01-01", str(LAST))


def _variable_combinations(q: panel_sql.PanelQuery):
    """Every combination of the custom variables the panel uses (query variables get a sample value)."""
    dashboard = next(d for d in DASHBOARDS.values() if d["uid"] == q.dashboard_uid)
    variables = panel_sql.variables(dashboard)
    fixed = {"ticker": SAMSUNG, "market": ["KOSPI", "KOSDAQ"], "day": str(UNIVERSE_DAY)}
    choices = {name: v.options for name, v in variables.items()
               if v.type == "custom" and not v.multi and re.search(rf"\${name}\b", q.raw_sql)}
    names = sorted(choices)
    for combo in itertools.product(*(choices[n] for n in names)):
        yield {**fixed, **dict(zip(names, combo))}, {n for n, v in variables.items() if v.multi}


def run_panel(conn, q: panel_sql.PanelQuery, values, multi, now):
    expanded = panel_sql.expand(q.raw_sql, _ranges(q, now), values, multi=multi, interval="5m")
    cursor = conn.execute(expanded)
    return [d.name for d in cursor.description], cursor.fetchall()


@pytest.fixture
def grafana_conn(loaded, pg):
    """The test connection acting as the Grafana datasource's role."""
    pg.execute("SET ROLE krxflow_readonly")
    yield pg
    pg.execute("RESET ROLE")


@pytest.mark.parametrize("q", ALL_QUERIES, ids=lambda q: f"{q.name}-{q.title}")
def test_panel_sql_runs_and_returns_the_columns_its_panel_needs(grafana_conn, loaded, q):
    expected = EXPECTED_COLUMNS[(q.dashboard_uid, q.panel_id)]
    combos = list(_variable_combinations(q))
    assert combos
    for values, multi in combos:
        columns, rows = run_panel(grafana_conn, q, values, multi, loaded["now"])
        label = f"{q.name} {values}"
        assert columns == expected, label
        assert rows, f"{label}: no rows on the sample data"
        if q.panel_type == "candlestick":
            assert columns[:6] == ["time", "open", "high", "low", "close", "volume"]
        if "time" in columns:
            times = [row[columns.index("time")] for row in rows]
            assert all(isinstance(t, (dt.datetime, *NUMBER)) for t in times), label
            if q.format == "time_series":
                assert times == sorted(times), f"{label}: time series must be ordered by time"
        if q.format == "time_series":
            value_columns = [c for c in columns if c not in ("time", "metric")]
            assert any(isinstance(row[columns.index(c)], NUMBER) for row in rows for c in value_columns), label
        if q.panel_type == "stat":
            assert any(isinstance(v, NUMBER) for v in rows[0]), label
        if q.panel_type == "barchart":
            assert all(isinstance(row[0], str) for row in rows), f"{label}: bar chart needs a text x field"


def _one(conn, uid, panel_id, values, now):
    q = next(q for q in ALL_QUERIES if (q.dashboard_uid, q.panel_id) == (uid, panel_id))
    dashboard = next(d for d in DASHBOARDS.values() if d["uid"] == uid)
    multi = {n for n, v in panel_sql.variables(dashboard).items() if v.multi}
    return run_panel(conn, q, {"ticker": SAMSUNG, "market": ["KOSPI", "KOSDAQ"], "day": str(UNIVERSE_DAY), **values},
                     multi, now)


def test_daily_candles_sit_on_kst_midnight_of_their_trading_day(grafana_conn, loaded):
    columns, rows = _one(grafana_conn, "krxflow-stock", 1, {"interval": "day", "adjusted": "false"}, loaded["now"])
    grafana_conn.execute("RESET ROLE")
    expected = grafana_conn.execute(
        "SELECT trade_date, close FROM daily_prices WHERE ticker = %s AND trade_date BETWEEN '2024-01-01' AND %s "
        "ORDER BY 1", (SAMSUNG, LAST)).fetchall()
    got = [(r[0].astimezone(KST), r[4]) for r in rows]
    assert all(t.time() == dt.time(0, 0) for t, _ in got)
    assert [(t.date(), close) for t, close in got] == [(d, Decimal(c)) for d, c in expected]


def test_weekly_candles_start_on_kst_monday_and_aggregate_the_days(grafana_conn, loaded):
    _, weeks = _one(grafana_conn, "krxflow-stock", 1, {"interval": "week", "adjusted": "false"}, loaded["now"])
    starts = [r[0].astimezone(KST) for r in weeks]
    assert all(s.weekday() == 0 and s.time() == dt.time(0, 0) for s in starts)
    grafana_conn.execute("RESET ROLE")
    week = starts[10].date()
    days = grafana_conn.execute(
        "SELECT high, low, close, volume FROM daily_prices WHERE ticker = %s AND trade_date BETWEEN %s AND %s "
        "ORDER BY trade_date", (SAMSUNG, week, week + dt.timedelta(days=6))).fetchall()
    candle = weeks[10]
    assert candle[2] == max(d[0] for d in days) and candle[3] == min(d[1] for d in days)
    assert candle[4] == days[-1][2] and candle[5] == sum(d[3] for d in days)


def test_moving_averages_are_overlaid_on_the_candles(grafana_conn, loaded):
    columns, rows = _one(grafana_conn, "krxflow-stock", 1, {"interval": "day", "adjusted": "true"}, loaded["now"])
    ma20 = [r[columns.index("ma20")] for r in rows]
    assert sum(v is not None for v in ma20) > len(rows) * 0.9
    _, months = _one(grafana_conn, "krxflow-stock", 1, {"interval": "month", "adjusted": "true"}, loaded["now"])
    closes = [m[4] for m in months]
    # 5-month MA on the monthly chart = mean of the last five monthly closes (history before the range counts)
    assert months[-1][6] == pytest.approx(float(sum(closes[-5:]) / 5))


def test_rows_per_day_groups_by_kst_day(grafana_conn, loaded):
    _, rows = _one(grafana_conn, "krxflow-pipeline", 3, {}, loaded["now"])
    probe = [(t.astimezone(KST), v) for t, metric, v in rows if metric == "boundary_probe"]
    assert probe == [(dt.datetime.combine(loaded["boundary"].date(), dt.time(0), KST), 777)]
    assert loaded["boundary"].astimezone(dt.timezone.utc).date() != loaded["boundary"].date()  # a UTC bucket would differ


def test_pipeline_health_reads_kis_windows_quality_gaps_and_backups(grafana_conn, loaded):
    _, last_loads = _one(grafana_conn, "krxflow-pipeline", 1, {}, loaded["now"])
    assert {"krx_daily_prices", "kst_boundary"} <= {r[0] for r in last_loads}
    _, backup = _one(grafana_conn, "krxflow-pipeline", 2, {}, loaded["now"])
    assert 0 <= backup[0][1] < 3600
    _, gaps = _one(grafana_conn, "krxflow-pipeline", 5, {}, loaded["now"])
    assert sorted(r[4] for r in gaps) == sorted([0, 0, 1, loaded["quality"]["gaps"]])
    _, dedupe = _one(grafana_conn, "krxflow-pipeline", 8, {}, loaded["now"])
    assert all(0 < r[1] < 100 and 0 < r[2] < 100 for r in dedupe)
    _, failed = _one(grafana_conn, "krxflow-pipeline", 9, {}, loaded["now"])
    assert {"warning"} == {r[6] for r in failed}


def test_collector_health_and_minute_candles_on_the_intraday_dashboard(grafana_conn, loaded):
    columns, rows = _one(grafana_conn, "krxflow-intraday", 9, {"ticker": SAMSUNG}, loaded["now"])
    rates = [r[columns.index("messages_per_second")] for r in rows]
    assert rates and all(rate == 5000 for rate in rates)
    assert max(r[columns.index("lag_p99_s")] for r in rows) == Decimal("1.4")
    columns, rows = _one(grafana_conn, "krxflow-intraday", 10, {"ticker": SAMSUNG}, loaded["now"])
    assert sum(r[columns.index("reconnects")] for r in rows) == 1
    columns, rows = _one(grafana_conn, "krxflow-intraday", 8, {"ticker": SAMSUNG}, loaded["now"])
    assert len(rows) == 391 and all(r[2] >= max(r[1], r[4]) and r[3] <= min(r[1], r[4]) for r in rows)
    columns, rows = _one(grafana_conn, "krxflow-intraday", 7, {"ticker": SAMSUNG}, loaded["now"])
    assert all(r[1] + r[2] == r[3] for r in rows if r[1] is not None and r[2] is not None)


def test_order_book_depth_lists_ten_levels_each_side(grafana_conn, loaded):
    _, rows = _one(grafana_conn, "krxflow-intraday", 4, {}, loaded["now"])
    asks = [r for r in rows if r[1] is not None]
    bids = [r for r in rows if r[2] is not None]
    assert len(asks) == len(bids) == 10
    assert min(int(r[0]) for r in asks) > max(int(r[0]) for r in bids)


def test_market_panels_respect_the_market_variable(grafana_conn, loaded):
    _, rows = _one(grafana_conn, "krxflow-market", 6, {"market": ["KOSDAQ"]}, loaded["now"])
    assert rows and {r[2] for r in rows} == {"KOSDAQ"}
    changes = [r[4] for r in rows]
    assert changes == sorted(changes, reverse=True)


def test_ticker_picker_searches_names_and_codes(grafana_conn, loaded):
    sql = build_dashboards.TICKER_VARIABLE_SQL
    cursor = grafana_conn.execute(sql)
    assert [d.name for d in cursor.description] == ["__value", "__text"]
    rows = cursor.fetchall()
    samsung = next(text for value, text in rows if value == SAMSUNG)
    assert f"({SAMSUNG})" in samsung and len(samsung) > len(SAMSUNG) + 3
    assert len(rows) == grafana_conn.execute("SELECT count(*) FROM stocks").fetchone()[0]


def test_the_stock_dashboard_is_adjusted_by_default_and_annotates_ex_dates(grafana_conn, loaded):
    from krxflow.sample.market import EVENT_TICKERS, universe

    stock = DASHBOARDS["stock.json"]
    adjusted = next(v for v in stock["templating"]["list"] if v["name"] == "adjusted")
    assert adjusted["current"]["value"] == "true"
    (annotation,) = stock["annotations"]["list"]
    assert annotation["datasource"]["uid"] == panel_sql.DATASOURCE_UID
    bonus = universe(30)[EVENT_TICKERS["bonus"]]
    expanded = panel_sql.expand(annotation["target"]["rawSql"], kst_range("2023-01-02", "2024-12-30"),
                                {"ticker": bonus}, multi=set(), interval="1d")
    cursor = grafana_conn.execute(expanded)
    rows = cursor.fetchall()
    assert [d.name for d in cursor.description] == ["time", "text", "tags"]
    assert len(rows) == 1 and rows[0][0] == dt.datetime(2023, 6, 15, tzinfo=KST) and "rights_or_bonus" in rows[0][1]


def test_report_panels_show_the_loaded_reports(grafana_conn, loaded):
    _, candles = _one(grafana_conn, "krxflow-market", 9, {"index": "1001"}, loaded["now"])
    assert len(candles) == len(REPORT_SESSIONS)
    assert all(r[3] <= min(r[1], r[4]) and r[2] >= max(r[1], r[4]) and r[6] is not None for r in candles)
    _, flows = _one(grafana_conn, "krxflow-market", 10, {}, loaded["now"])
    by_day: dict = {}
    for t, _metric, value in flows:
        by_day[t] = by_day.get(t, 0) + value
    assert len(by_day) == len(REPORT_SESSIONS) and set(by_day.values()) == {0}  # net buys sum to zero
    _, shorted = _one(grafana_conn, "krxflow-market", 13, {}, loaded["now"])
    ratios = [r[3] for r in shorted]
    assert ratios == sorted(ratios, reverse=True) and ratios[0] > 0
    _, investors = _one(grafana_conn, "krxflow-stock", 9, {}, loaded["now"])
    assert {m for _, m, _ in investors} == {"institutions", "foreigners", "individuals", "other corporations"}


def test_the_day_variable_lists_the_sessions_of_the_range_newest_first(grafana_conn, loaded):
    for uid in ("krxflow-stock", "krxflow-market"):
        dashboard = next(d for d in DASHBOARDS.values() if d["uid"] == uid)
        day = panel_sql.variables(dashboard)["day"]
        assert day.type == "query" and not day.multi
        expanded = panel_sql.expand(day.query, kst_range("2024-12-01", str(LAST)), {}, multi=set(), interval="1d")
        cursor = grafana_conn.execute(expanded)
        assert [d.name for d in cursor.description] == ["__text", "__value"]
        days = [r[1] for r in cursor.fetchall()]
        assert days[0] == str(LAST) and days == sorted(days, reverse=True) and len(days) == len(set(days)) > 15


def test_the_sector_heat_map_is_each_industrys_cap_weighted_return_on_the_day(grafana_conn, loaded):
    columns, rows = _one(grafana_conn, "krxflow-market", 14, {}, loaded["now"])
    grafana_conn.execute("RESET ROLE")
    expected = grafana_conn.execute(
        """SELECT i.market, i.industry, count(*), sum(p.market_cap),
                  round(100 * (sum(p.market_cap) / sum(p.market_cap / (1 + p.change_rate / 100)) - 1), 2)
           FROM industries_on(%(day)s) i JOIN daily_prices p ON p.ticker = i.ticker AND p.trade_date = %(day)s
           WHERE p.change_rate IS NOT NULL GROUP BY 1, 2""", {"day": UNIVERSE_DAY}).fetchall()
    got = {(r[0], r[1]): (r[4], r[3], r[2]) for r in rows}
    assert got == {(m, i): (n, cap, rate) for m, i, n, cap, rate in expected}
    assert {r[0] for r in rows} == {"KOSPI", "KOSDAQ"} and len(rows) > 5
    caps = [r[3] for r in rows]
    assert caps == sorted(caps, reverse=True)  # the biggest industries first
    assert sum(caps) == grafana_conn.execute("SELECT sum(market_cap) FROM daily_prices WHERE trade_date = %s AND "
                                             "ticker IN (SELECT ticker FROM industries_on(%s))",
                                             (UNIVERSE_DAY, UNIVERSE_DAY)).fetchone()[0]
    _, kospi = _one(grafana_conn, "krxflow-market", 14, {"market": ["KOSPI"]}, loaded["now"])
    assert kospi and {r[0] for r in kospi} == {"KOSPI"}
    heat_map = next(p for p in panel_sql.iter_panels(DASHBOARDS["market.json"]) if p["id"] == 14)
    assert heat_map["options"]["reduceOptions"] == {"calcs": ["lastNotNull"], "values": True,
                                                    "fields": "/^change_rate$/"}


def test_the_index_membership_panel_lists_the_stocks_indices_on_the_day(grafana_conn, loaded):
    columns, rows = _one(grafana_conn, "krxflow-stock", 12, {}, loaded["now"])
    codes = {r[0] for r in rows}
    grafana_conn.execute("RESET ROLE")
    members_of = {code for (code,) in grafana_conn.execute(
        "SELECT DISTINCT index_code FROM krx_index_members WHERE ticker = %s", (SAMSUNG,))}
    on_day = {code for code in members_of if grafana_conn.execute(
        "SELECT count(*) FROM universe_on(%s, %s) WHERE ticker = %s", (code, UNIVERSE_DAY, SAMSUNG)).fetchone()[0]}
    assert codes == on_day and "1028" in codes  # Samsung is in the KOSPI 200
    assert all(r[3] <= UNIVERSE_DAY and (r[4] is None or r[4] > UNIVERSE_DAY) for r in rows)
    kospi200 = next(r for r in rows if r[0] == "1028")
    assert kospi200[1] == "코스피 200" and kospi200[3] == UNIVERSE_SESSIONS[0]
    assert {r[5] for r in rows} == {grafana_conn.execute("SELECT industry_on(%s, %s)",
                                                          (SAMSUNG, UNIVERSE_DAY)).fetchone()[0]} != {None}
    _, earlier = _one(grafana_conn, "krxflow-stock", 12, {"day": "2024-11-29"}, loaded["now"])
    assert earlier == [], "before the first loaded session krxflow knows no membership"


def test_the_filings_panels_list_opendarts_filings(grafana_conn, loaded):
    """Stock: the ticker's filings in the range, newest first; Market: the chosen day's, by market."""
    columns, rows = _one(grafana_conn, "krxflow-stock", 13, {}, loaded["now"])
    _, kospi = _one(grafana_conn, "krxflow-market", 15, {"market": ["KOSPI"]}, loaded["now"])
    _, both = _one(grafana_conn, "krxflow-market", 15, {}, loaded["now"])
    grafana_conn.execute("RESET ROLE")
    expected = grafana_conn.execute("SELECT url FROM disclosures WHERE ticker = %s ORDER BY rcept_no DESC",
                                    (SAMSUNG,)).fetchall()
    assert rows and [r[columns.index("url")] for r in rows] == [u for (u,) in expected]
    on_day = dict(grafana_conn.execute("SELECT s.market, count(*) FROM disclosures d JOIN stocks s USING (ticker) "
                                       "WHERE d.rcept_dt = %s GROUP BY 1", (UNIVERSE_DAY,)).fetchall())
    assert len(kospi) == on_day["KOSPI"] and {r[2] for r in kospi} == {"KOSPI"}
    assert len(both) == on_day["KOSPI"] + on_day["KOSDAQ"]
