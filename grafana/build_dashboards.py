"""Build ``grafana/dashboards/*.json`` from the panel definitions below.

The dashboards are provisioned from JSON, but JSON is a poor place to write and review SQL, so the
panels are declared here and the JSON is generated: ``python grafana/build_dashboards.py``.
``tests/test_grafana_dashboards.py`` fails when the committed JSON and this file disagree.

Conventions every panel follows
  * Datasource: the provisioned ``krxflow-pg`` (never the default, never a name).
  * Daily tables are keyed by a KST ``date``: the dashboard's time range is turned into KST
    dates (``($__timeFrom()::timestamptz AT TIME ZONE <MARKET_TZ>)::date``) and a trading day is
    drawn at KST midnight (``trade_date::timestamp AT TIME ZONE <MARKET_TZ>``).
  * ``timestamptz`` columns (ticks, order books, ``load_stats.finished_at``) use ``$__timeFilter``
    on that column, so partitions are pruned and indexes used. Days are grouped in KST with
    ``date_trunc('day', ts AT TIME ZONE <MARKET_TZ>)``, never ``$__timeGroup(ts, '1d')`` (UTC days).
  * Every table panel has a LIMIT; every time series is bounded by the time range.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
from krxflow.journal import Operation  # the journal's operation names
from krxflow.settings import MARKET_TZ
from krxflow.krx.interface import INSTITUTIONS  # plain constants, no dependencies
OUT = HERE / "dashboards"
DS = {"type": "grafana-postgresql-datasource", "uid": "krxflow-pg"}

KST_FROM = f"($__timeFrom()::timestamptz AT TIME ZONE '{MARKET_TZ}')::date"
KST_TO = f"($__timeTo()::timestamptz AT TIME ZONE '{MARKET_TZ}')::date"


def day_time(column: str) -> str:
    """A KST trading day drawn at KST midnight."""
    return f"({column}::timestamp AT TIME ZONE '{MARKET_TZ}')"


def kst_day_bucket(column: str) -> str:
    """The KST calendar day of a timestamptz, as the instant of its KST midnight."""
    return f"(date_trunc('day', {column} AT TIME ZONE '{MARKET_TZ}') AT TIME ZONE '{MARKET_TZ}')"


# ------------------------------------------------------------------------------------ Stock
TICKER_VARIABLE_SQL = (
    "SELECT ticker AS __value, name || ' (' || ticker || ')' || CASE WHEN delisted THEN ' · delisted' ELSE '' END"
    " AS __text FROM stocks ORDER BY delisted, name, ticker"
)

DAILY_OHLCV = f"""
    SELECT trade_date, open::numeric AS open, high::numeric AS high, low::numeric AS low,
           close::numeric AS close, volume, trading_value::numeric AS trading_value
    FROM daily_prices
    WHERE NOT $adjusted AND ticker = '$ticker' AND trade_date BETWEEN {KST_FROM} AND {KST_TO}
    UNION ALL
    SELECT trade_date, open, high, low, close, volume, NULL::numeric
    FROM daily_prices_adjusted
    WHERE $adjusted AND ticker = '$ticker' AND trade_date BETWEEN {KST_FROM} AND {KST_TO}"""


def period_candles(unit: str) -> str:
    """Week or month candles with moving averages over that period's closes (in that unit)."""
    return f"""
    SELECT period_start, open, high, low, close, volume,
           CASE WHEN count(*) OVER w5 = 5 THEN avg(close) OVER w5 END AS ma5,
           CASE WHEN count(*) OVER w20 = 20 THEN avg(close) OVER w20 END AS ma20,
           CASE WHEN count(*) OVER w60 = 60 THEN avg(close) OVER w60 END AS ma60,
           CASE WHEN count(*) OVER w120 = 120 THEN avg(close) OVER w120 END AS ma120
    FROM period_candles
    WHERE '$interval' = '{unit}' AND period = '{unit}' AND ticker = '$ticker' AND adjusted = $adjusted AND period_start <= {KST_TO}
    WINDOW w5 AS (ORDER BY period_start ROWS 4 PRECEDING), w20 AS (ORDER BY period_start ROWS 19 PRECEDING),
           w60 AS (ORDER BY period_start ROWS 59 PRECEDING), w120 AS (ORDER BY period_start ROWS 119 PRECEDING)"""


CANDLES_SQL = f"""SELECT {day_time('c.period_start')} AS "time", c.open, c.high, c.low, c.close, c.volume,
       c.ma5, c.ma20, c.ma60, c.ma120
FROM (
    SELECT d.trade_date AS period_start, d.open, d.high, d.low, d.close, d.volume,
           i.ma5, i.ma20, i.ma60, i.ma120
    FROM ({DAILY_OHLCV}
    ) d
    LEFT JOIN daily_indicators i
           ON i.ticker = '$ticker' AND i.adjusted = $adjusted AND i.trade_date = d.trade_date
    WHERE '$interval' = 'day'
    UNION ALL
    SELECT * FROM ({period_candles('week')}
    ) w WHERE period_start >= date_trunc('week', {KST_FROM})::date
    UNION ALL
    SELECT * FROM ({period_candles('month')}
    ) m WHERE period_start >= date_trunc('month', {KST_FROM})::date
) c
ORDER BY 1"""

VOLUME_SQL = f"""SELECT {day_time('v.period_start')} AS "time", v.volume, v.trading_value
FROM (
    SELECT trade_date AS period_start, volume, trading_value FROM ({DAILY_OHLCV}
    ) d WHERE '$interval' = 'day'
    UNION ALL
    SELECT period_start, volume, trading_value::numeric FROM period_candles
    WHERE '$interval' = 'week' AND period = 'week' AND ticker = '$ticker' AND adjusted = $adjusted
      AND period_start BETWEEN date_trunc('week', {KST_FROM})::date AND {KST_TO}
    UNION ALL
    SELECT period_start, volume, trading_value::numeric FROM period_candles
    WHERE '$interval' = 'month' AND period = 'month' AND ticker = '$ticker' AND adjusted = $adjusted
      AND period_start BETWEEN date_trunc('month', {KST_FROM})::date AND {KST_TO}
) v
ORDER BY 1"""


def indicator_sql(*columns: str) -> str:
    return (f"""SELECT {day_time('trade_date')} AS "time", {', '.join(columns)}
FROM daily_indicators
WHERE ticker = '$ticker' AND adjusted = $adjusted AND trade_date BETWEEN {KST_FROM} AND {KST_TO}
ORDER BY trade_date""")


LATEST_CLOSE_SQL = f"""SELECT {day_time('trade_date')} AS "time", close, change_rate
FROM daily_prices
WHERE ticker = '$ticker' AND trade_date BETWEEN {KST_TO} - 31 AND {KST_TO}
ORDER BY trade_date DESC
LIMIT 1"""

STOCK_INFO_SQL = f"""SELECT s.ticker, s.name, s.market, s.sector, s.listed_shares,
       coalesce(p.market_cap, s.market_cap) AS market_cap, p.trade_date AS last_trade_date, p.close AS last_close,
       s.first_seen, s.delisted, s.delisted_on
FROM stocks s
LEFT JOIN LATERAL (
    SELECT trade_date, close, market_cap FROM daily_prices
    WHERE ticker = s.ticker AND trade_date BETWEEN {KST_TO} - 31 AND {KST_TO}
    ORDER BY trade_date DESC LIMIT 1
) p ON true
WHERE s.ticker = '$ticker'
LIMIT 1"""

# ------------------------------------------------------------------------------------ Market
# The last session in the time range, as a scalar subquery (one row, one column named trade_date).
LAST_SESSION = (f"(SELECT max(trade_date) AS trade_date FROM daily_market_summary "
                f"WHERE trade_date BETWEEN {KST_FROM} AND {KST_TO})")

SUMMARY_RANGE = f"trade_date BETWEEN {KST_FROM} AND {KST_TO} AND market IN ($market)"


# The last session is found first and joined LATERALly: the planner then probes the one partition
# of that day, where `trade_date = (SELECT max(...))` made it plan a parallel scan of every partition
# (3-5x slower on five years of data, see bench/grafana_queries.py).
LAST_SESSION_LATERAL = f"{LAST_SESSION} last"


def movers_sql(order: str) -> str:
    return f"""SELECT p.ticker, s.name, s.market, p.close, p.change_rate, p.volume, p.trading_value
FROM {LAST_SESSION_LATERAL}
CROSS JOIN LATERAL (
    SELECT ticker, close, change_rate, volume, trading_value FROM daily_prices
    WHERE trade_date = last.trade_date AND volume > 0 AND change_rate IS NOT NULL
) p
JOIN stocks s ON s.ticker = p.ticker
WHERE s.market IN ($market)
ORDER BY p.change_rate {order}, p.trading_value DESC NULLS LAST
LIMIT 20"""


MARKET_CAP_LEADERS_SQL = f"""SELECT p.ticker, s.name, s.market, p.close, coalesce(p.market_cap, s.market_cap) AS market_cap,
       round(100.0 * coalesce(p.market_cap, s.market_cap)
             / nullif(sum(coalesce(p.market_cap, s.market_cap)) OVER (PARTITION BY s.market), 0), 2) AS share_of_market_pct
FROM {LAST_SESSION_LATERAL}
CROSS JOIN LATERAL (
    SELECT ticker, close, market_cap FROM daily_prices WHERE trade_date = last.trade_date
) p
JOIN stocks s ON s.ticker = p.ticker
WHERE s.market IN ($market)
ORDER BY market_cap DESC NULLS LAST
LIMIT 20"""

# ------------------------------------------------------------------------------------ KRX reports (issue 17)
#: Investor types in the groups the panels draw (institutions = KRX's 기관합계).
INSTITUTION_LIST = ", ".join(f"'{name}'" for name in INSTITUTIONS)
INVESTOR_GROUP = f"""CASE WHEN investor IN ({INSTITUTION_LIST}) THEN 'institutions'
            WHEN investor IN ('foreign', 'other_foreign') THEN 'foreigners'
            WHEN investor = 'individual' THEN 'individuals'
            ELSE 'other corporations' END"""

INDEX_CANDLES_SQL = f"""SELECT {day_time('p.trade_date')} AS "time", p.open, p.high, p.low, p.close, p.volume,
       b.advancers, b.decliners
FROM krx_index_prices p
LEFT JOIN LATERAL (
    SELECT sum(advancers)::int AS advancers, sum(decliners)::int AS decliners FROM daily_market_summary
    WHERE trade_date = p.trade_date AND market IN ($market)
) b ON true
WHERE p.index_code = '$index' AND p.trade_date BETWEEN {KST_FROM} AND {KST_TO}
ORDER BY p.trade_date"""

INVESTOR_FLOWS_SQL = f"""SELECT {day_time('t.trade_date')} AS "time", {INVESTOR_GROUP.replace('investor', 't.investor')} AS metric,
       sum(t.net_value) AS net_value
FROM krx_investor_trading t
JOIN stocks s ON s.ticker = t.ticker
WHERE t.trade_date BETWEEN {KST_FROM} AND {KST_TO} AND s.market IN ($market)
GROUP BY t.trade_date, 2
ORDER BY t.trade_date, 2"""

LAST_INVESTOR_SESSION = (f"(SELECT max(trade_date) AS trade_date FROM krx_investor_trading "
                         f"WHERE trade_date BETWEEN {KST_FROM} AND {KST_TO}) last")

TOP_FOREIGN_BUYS_SQL = f"""SELECT t.ticker, s.name, s.market,
       sum(t.net_value) FILTER (WHERE t.investor IN ('foreign', 'other_foreign')) AS foreigners_net_value,
       sum(t.net_value) FILTER (WHERE t.investor IN ({INSTITUTION_LIST})) AS institutions_net_value,
       sum(t.net_value) FILTER (WHERE t.investor = 'individual') AS individuals_net_value
FROM {LAST_INVESTOR_SESSION}
CROSS JOIN LATERAL (
    SELECT ticker, investor, net_value FROM krx_investor_trading WHERE trade_date = last.trade_date
) t
JOIN stocks s ON s.ticker = t.ticker
WHERE s.market IN ($market)
GROUP BY t.ticker, s.name, s.market
ORDER BY foreigners_net_value DESC NULLS LAST
LIMIT 20"""

VALUATION_SQL = f"""SELECT {day_time('f.trade_date')} AS "time", s.market AS metric,
       percentile_cont(0.25) WITHIN GROUP (ORDER BY f.per) FILTER (WHERE f.per > 0) AS per_p25,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY f.per) FILTER (WHERE f.per > 0) AS per_median,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY f.per) FILTER (WHERE f.per > 0) AS per_p75,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY f.pbr) FILTER (WHERE f.pbr > 0) AS pbr_median
FROM krx_fundamentals f
JOIN stocks s ON s.ticker = f.ticker
WHERE f.trade_date BETWEEN {KST_FROM} AND {KST_TO} AND s.market IN ($market)
GROUP BY f.trade_date, s.market
ORDER BY f.trade_date, s.market"""

MOST_SHORTED_SQL = f"""SELECT b.ticker, s.name, s.market, b.balance_ratio, b.balance_value,
       round(100.0 * t.short_volume / nullif(t.volume, 0), 2) AS short_share_of_volume_pct
FROM (SELECT max(trade_date) AS trade_date FROM krx_short_balance
      WHERE trade_date BETWEEN {KST_FROM} AND {KST_TO}) last
CROSS JOIN LATERAL (
    SELECT ticker, balance_ratio, balance_value FROM krx_short_balance WHERE trade_date = last.trade_date
) b
JOIN stocks s ON s.ticker = b.ticker
LEFT JOIN krx_short_selling t ON t.ticker = b.ticker AND t.trade_date = last.trade_date
WHERE s.market IN ($market)
ORDER BY b.balance_ratio DESC NULLS LAST, b.balance_value DESC NULLS LAST
LIMIT 20"""

STOCK_INVESTORS_SQL = f"""SELECT {day_time('trade_date')} AS "time", {INVESTOR_GROUP} AS metric, sum(net_value) AS net_value
FROM krx_investor_trading
WHERE ticker = '$ticker' AND trade_date BETWEEN {KST_FROM} AND {KST_TO}
GROUP BY trade_date, 2
ORDER BY trade_date, 2"""

STOCK_FUNDAMENTALS_SQL = f"""SELECT {day_time('trade_date')} AS "time", per, pbr, dividend_yield
FROM krx_fundamentals
WHERE ticker = '$ticker' AND trade_date BETWEEN {KST_FROM} AND {KST_TO}
ORDER BY trade_date"""

STOCK_SHORTS_SQL = f"""SELECT {day_time('coalesce(t.trade_date, b.trade_date)')} AS "time", t.short_volume,
       b.balance_quantity, b.balance_ratio
FROM (SELECT * FROM krx_short_selling WHERE ticker = '$ticker' AND trade_date BETWEEN {KST_FROM} AND {KST_TO}) t
FULL JOIN (SELECT * FROM krx_short_balance WHERE ticker = '$ticker' AND trade_date BETWEEN {KST_FROM} AND {KST_TO}) b
    ON b.trade_date = t.trade_date
ORDER BY 1"""

# ------------------------------------------------------------------------------------ The universe (issue 27)
#: The sessions of the time range, newest first: the ``day`` variable (Grafana picks the newest by default).
DAY_VARIABLE_SQL = f"""SELECT DISTINCT trade_date::text AS __text, trade_date::text AS __value
FROM daily_market_summary
WHERE trade_date BETWEEN {KST_FROM} AND {KST_TO}
ORDER BY 2 DESC"""

#: ``$day`` as a date (no session in the range: NULL, and the panels show nothing).
CHOSEN_DAY = "NULLIF('$day', '')::date"

SECTOR_HEAT_MAP_SQL = f"""SELECT r.market, r.industry, r.change_rate, r.market_cap, r.tickers
FROM industry_returns_on({CHOSEN_DAY}) r
WHERE r.market IN ($market)
ORDER BY r.market_cap DESC NULLS LAST, r.market, r.industry
LIMIT 100"""

INDEX_MEMBERSHIP_SQL = f"""SELECT m.index_code, coalesce(i.name, m.index_code) AS index_name, i.index_group,
       m.entered_on, m.exited_on, industry_on(m.ticker, {CHOSEN_DAY}) AS industry
FROM krx_index_members m
LEFT JOIN krx_indices i ON i.index_code = m.index_code
WHERE m.ticker = '$ticker' AND m.entered_on <= {CHOSEN_DAY}
  AND (m.exited_on IS NULL OR m.exited_on > {CHOSEN_DAY})
ORDER BY m.index_code
LIMIT 100"""

# ------------------------------------------------------------------------------------ OpenDART (issue 28)
STOCK_DISCLOSURES_SQL = f"""SELECT rcept_dt AS date, report_nm AS report, flr_nm AS filer, rm AS remarks, url
FROM disclosures
WHERE ticker = '$ticker' AND rcept_dt BETWEEN {KST_FROM} AND {KST_TO}
ORDER BY rcept_no DESC
LIMIT 200"""

DAY_DISCLOSURES_SQL = f"""SELECT d.ticker, d.corp_name AS name, s.market, d.report_nm AS report, d.flr_nm AS filer,
       d.rm AS remarks, d.url
FROM disclosures d
JOIN stocks s ON s.ticker = d.ticker
WHERE d.rcept_dt = {CHOSEN_DAY} AND s.market IN ($market)
ORDER BY d.rcept_no DESC
LIMIT 500"""

INDEX_CHOICES = [("코스피", "1001"), ("코스피 200", "1028"), ("코스닥", "2001"), ("코스닥 150", "2203"),
                 ("KRX 300", "5300")]


# ------------------------------------------------------------------------------------ Intraday
def kis_number(key: str) -> str:
    return f"coalesce((details ->> '{key}')::numeric, 0)"


def stats_series(source: str, *columns: str) -> str:
    """A time series of ``columns`` (aggregates over load_stats details) of the rows ``source`` selects."""
    listed = ",\n       ".join(columns)
    return f"""SELECT $__timeGroupAlias(finished_at, $__interval),
       {listed}
{source}
GROUP BY 1
ORDER BY 1"""


TICKS_SQL = """SELECT ts AS "time", price
FROM intraday_quotes
WHERE ticker = '$ticker' AND $__timeFilter(ts)
ORDER BY ts"""

TICK_VOLUME_SQL = f"""SELECT $__timeGroupAlias(ts, $__interval), sum(traded) AS volume
FROM (
    SELECT ts, greatest(cum_volume - lag(cum_volume) OVER (
               PARTITION BY (ts AT TIME ZONE '{MARKET_TZ}')::date ORDER BY ts), 0) AS traded
    FROM intraday_quotes
    WHERE ticker = '$ticker' AND $__timeFilter(ts)
) t
GROUP BY 1
ORDER BY 1"""

_LEVELS = ",\n        ".join(
    [f"('ask', {n}, ob.ask_price_{n}, ob.ask_qty_{n})" for n in range(10, 0, -1)]
    + [f"('bid', {n}, ob.bid_price_{n}, ob.bid_qty_{n})" for n in range(1, 11)]
)
ORDER_BOOK_SQL = f"""SELECT l.price::text AS price, CASE WHEN l.side = 'ask' THEN l.qty END AS ask_qty,
       CASE WHEN l.side = 'bid' THEN l.qty END AS bid_qty
FROM (
    SELECT * FROM order_books
    WHERE ticker = '$ticker' AND $__timeFilter(ts)
    ORDER BY ts DESC
    LIMIT 1
) ob
CROSS JOIN LATERAL (VALUES
        {_LEVELS}
) AS l(side, level, price, qty)
WHERE l.price IS NOT NULL
ORDER BY l.price DESC"""

BOOK_TOTALS_SQL = """SELECT $__timeGroupAlias(ts, $__interval), avg(total_bid_qty) AS total_bid_qty,
       avg(total_ask_qty) AS total_ask_qty,
       avg(ask_price_1 - bid_price_1) AS spread
FROM order_books
WHERE ticker = '$ticker' AND $__timeFilter(ts)
GROUP BY 1
ORDER BY 1"""

LAST_TICK_SQL = """SELECT ts AS "time", price, change_rate, cum_volume, halted
FROM intraday_quotes
WHERE ticker = '$ticker' AND $__timeFilter(ts)
ORDER BY ts DESC
LIMIT 1"""

TRADES_SQL = """SELECT ts AS "time", price
FROM trades
WHERE ticker = '$ticker' AND $__timeFilter(ts)
ORDER BY ts, cum_volume"""

TRADE_VOLUME_SQL = """SELECT $__timeGroupAlias(ts, $__interval),
       sum(volume) FILTER (WHERE side = 'buy') AS buy_volume, sum(volume) FILTER (WHERE side = 'sell') AS sell_volume,
       sum(volume) AS volume
FROM trades
WHERE ticker = '$ticker' AND $__timeFilter(ts)
GROUP BY 1
ORDER BY 1"""

MINUTE_CANDLES_SQL = """SELECT minute AS "time", open, high, low, close, volume, value
FROM minute_bars
WHERE ticker = '$ticker' AND $__timeFilter(minute)
ORDER BY minute"""

KIS_WS_STATS = f"FROM load_stats WHERE operation = '{Operation.KIS_WS_STATS}' AND $__timeFilter(finished_at)"

COLLECTOR_RATE_SQL = stats_series(
    KIS_WS_STATS,
    f"sum({kis_number('messages')}) / nullif(sum(seconds), 0) AS messages_per_second",
    "max((details ->> 'lag_p50_s')::numeric) AS lag_p50_s",
    "max((details ->> 'lag_p99_s')::numeric) AS lag_p99_s")

COLLECTOR_TROUBLE_SQL = stats_series(
    KIS_WS_STATS,
    f"sum({kis_number('reconnects')}) AS reconnects",
    f"sum({kis_number('unparsed')}) AS unparsed_frames",
    f"sum({kis_number('redis_errors')}) AS redis_errors",
    f"max({kis_number('refused')}) AS refused_registrations")

# ------------------------------------------------------------------------------------ Pipeline health
LAST_LOAD_PER_DAG_SQL = """WITH RECURSIVE dags AS (
    (SELECT dag_id FROM load_stats WHERE dag_id IS NOT NULL ORDER BY dag_id LIMIT 1)
    UNION ALL
    SELECT (SELECT l.dag_id FROM load_stats l WHERE l.dag_id > d.dag_id ORDER BY l.dag_id LIMIT 1)
    FROM dags d WHERE d.dag_id IS NOT NULL
)
SELECT d.dag_id, ok.finished_at AS last_success, ok.table_name, ok.rows_written,
       extract(epoch from now() - ok.finished_at) AS age_seconds,
       last.finished_at AS last_attempt, last.status AS last_status
FROM dags d
LEFT JOIN LATERAL (
    SELECT finished_at, table_name, rows_written FROM load_stats
    WHERE dag_id = d.dag_id AND status = 'ok' ORDER BY finished_at DESC LIMIT 1
) ok ON true
LEFT JOIN LATERAL (
    SELECT finished_at, status FROM load_stats WHERE dag_id = d.dag_id ORDER BY finished_at DESC LIMIT 1
) last ON true
WHERE d.dag_id IS NOT NULL
ORDER BY ok.finished_at NULLS FIRST
LIMIT 200"""

ROWS_PER_DAY_SQL = f"""SELECT {kst_day_bucket('finished_at')} AS "time", table_name AS metric, sum(rows_written) AS rows_written
FROM load_stats
WHERE $__timeFilter(finished_at) AND operation IN ('{Operation.UPSERT}', '{Operation.APPEND}')
GROUP BY 1, 2
ORDER BY 1"""

REJECTS_PER_DAY_SQL = f"""SELECT {kst_day_bucket('finished_at')} AS "time", table_name AS metric, sum(rejected) AS rejected
FROM load_stats
WHERE $__timeFilter(finished_at) AND operation IN ('{Operation.UPSERT}', '{Operation.APPEND}')
GROUP BY 1, 2
ORDER BY 1"""

GAPS_SQL = f"""SELECT finished_at AS "time", table_name, operation, status,
       CASE jsonb_typeof(details -> 'gaps')
            WHEN 'number' THEN (details ->> 'gaps')::numeric
            WHEN 'array' THEN jsonb_array_length(details -> 'gaps')
            WHEN 'object' THEN (SELECT count(*) FROM jsonb_object_keys(details -> 'gaps'))
            ELSE 0 END AS gaps,
       error, details::text AS details
FROM load_stats
WHERE $__timeFilter(finished_at) AND operation = '{Operation.QUALITY_CHECK}'
ORDER BY finished_at DESC
LIMIT 200"""

KIS_WINDOWS = f"FROM load_stats WHERE operation = '{Operation.KIS_POLL_WINDOW}' AND $__timeFilter(finished_at)"


KIS_REQUESTS_SQL = stats_series(
    KIS_WINDOWS,
    f"sum({kis_number('requests')}) AS requests",
    f"sum({kis_number('successes')}) AS successes",
    f"sum({kis_number('throttles')}) AS throttles",
    f"sum({kis_number('retries')}) AS retries")

KIS_THROUGHPUT_SQL = stats_series(
    KIS_WINDOWS,
    f"sum({kis_number('requests')}) / nullif(sum(seconds), 0) AS requests_per_second",
    f"sum({kis_number('rows_written')}) / nullif(sum(seconds), 0) AS rows_per_second",
    "avg((details ->> 'sweep_seconds')::numeric) AS sweep_seconds")

KIS_DEDUPE_SQL = stats_series(
    KIS_WINDOWS,
    f"100.0 * sum({kis_number('dedupe_hits')}) / nullif(sum({kis_number('successes')}), 0) AS dedupe_hit_rate_pct",
    f"100.0 * sum({kis_number('throttles')}) / nullif(sum({kis_number('requests')}), 0) AS throttle_rate_pct")

BACKUP_AGE_SQL = f"""SELECT max(finished_at) AS "time", extract(epoch from now() - max(finished_at)) AS backup_age_seconds
FROM load_stats
WHERE table_name = 'backup' AND operation = '{Operation.PG_DUMP}' AND status = 'ok'"""

FAILED_LOADS_SQL = """SELECT finished_at AS "time", dag_id, task_id, map_index, table_name, operation, status,
       rows_in, rejected, error
FROM load_stats
WHERE $__timeFilter(finished_at) AND status <> 'ok'
ORDER BY finished_at DESC
LIMIT 100"""


# ------------------------------------------------------------------------------------ JSON builders
def target(sql: str, fmt: str) -> dict:
    return {"refId": "A", "datasource": DS, "editorMode": "code", "format": fmt, "rawQuery": True,
            "rawSql": sql}


def panel(pid: int, title: str, ptype: str, sql: str, fmt: str, grid: tuple[int, int, int, int], *,
          description: str = "", unit: str | None = None, options: dict | None = None,
          overrides: list | None = None, custom: dict | None = None, field_defaults: dict | None = None) -> dict:
    x, y, w, h = grid
    defaults: dict = dict(field_defaults or {})
    if unit:
        defaults["unit"] = unit
    if custom:
        defaults["custom"] = custom
    return {
        "id": pid, "type": ptype, "title": title, "description": description,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "datasource": DS,
        "targets": [target(sql, fmt)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }


def custom_variable(name: str, label: str, choices: list[tuple[str, str]], default: str, *,
                    multi: bool = False) -> dict:
    options = [{"text": text, "value": value, "selected": value == default} for text, value in choices]
    current = next(o for o in options if o["value"] == default)
    return {
        "name": name, "label": label, "type": "custom", "multi": multi, "includeAll": False,
        "query": ",".join(f"{text} : {value}" if text != value else value for text, value in choices),
        "options": options, "current": {"text": current["text"], "value": current["value"]},
        "hide": 0,
    }


def multi_variable(name: str, label: str, values: list[str]) -> dict:
    return {
        "name": name, "label": label, "type": "custom", "multi": True, "includeAll": False,
        "query": ",".join(values),
        "options": [{"text": v, "value": v, "selected": True} for v in values],
        "current": {"text": values, "value": values}, "hide": 0,
    }


def ticker_variable() -> dict:
    return {
        "name": "ticker", "label": "Stock (name or code)", "type": "query", "datasource": DS,
        "query": TICKER_VARIABLE_SQL, "definition": TICKER_VARIABLE_SQL, "refresh": 1, "sort": 0,
        "multi": False, "includeAll": False, "hide": 0,
        "current": {"text": "삼성전자 (005930)", "value": "005930"},
    }


def day_variable() -> dict:
    """The session the universe panels show: a session of the time range (newest by default)."""
    return {
        "name": "day", "label": "Session (KST)", "type": "query", "datasource": DS,
        "query": DAY_VARIABLE_SQL, "definition": DAY_VARIABLE_SQL, "refresh": 2, "sort": 0,
        "multi": False, "includeAll": False, "hide": 0, "current": {},
    }


def dashboard(uid: str, title: str, description: str, panels: list[dict], variables: list[dict], *,
              time_from: str, time_to: str = "now", refresh: str = "", annotations: list[dict] = ()) -> dict:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["krxflow"],
        "timezone": MARKET_TZ, "weekStart": "monday", "editable": False, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "refresh": refresh,
        "time": {"from": time_from, "to": time_to},
        "templating": {"list": variables},
        "annotations": {"list": list(annotations)},
        "links": [{"type": "dashboards", "tags": ["krxflow"], "asDropdown": True, "title": "krxflow"}],
        "panels": panels,
    }


TS_LINES = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "showPoints": "never", "spanNulls": True}
TS_BARS = {"drawStyle": "bars", "fillOpacity": 80, "lineWidth": 1, "showPoints": "never"}
LEGEND = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
          "tooltip": {"mode": "multi", "sort": "none"}}


EX_DATES_SQL = f"""SELECT {day_time('ex_date')} AS "time",
       kind || ' x' || round(factor, 6) || ' (base ' || base_price || ' / previous close ' || previous_close || ')'
           || coalesce(' — ' || note, '') AS text,
       CASE WHEN flagged THEN 'ex-date,flagged' ELSE 'ex-date' END AS tags
FROM adjustment_factors
WHERE ticker = '$ticker' AND ex_date BETWEEN {KST_FROM} AND {KST_TO}
ORDER BY ex_date"""


def sql_annotation(name: str, raw_sql: str, color: str) -> dict:
    """A Grafana annotation from a SQL query of the provisioned datasource (time, text, tags)."""
    return {"name": name, "datasource": DS, "enable": True, "hide": False, "iconColor": color,
            "target": {"refId": "Anno", "rawQuery": True, "rawSql": raw_sql, "format": "table"}}


def stock_dashboard() -> dict:
    panels = [
        panel(1, "$ticker candles ($interval)", "candlestick", CANDLES_SQL, "table", (0, 0, 24, 12),
              description="OHLC candles per day, week (KST Monday) or month, with moving averages of the "
                          "same period (day: from daily_indicators). Raw or split-adjusted per $adjusted.",
              options={"mode": "candles+volume", "candleStyle": "candles", "colorStrategy": "open-close",
                       "colors": {"up": "red", "down": "blue"}, "includeAllFields": True,
                       "fields": {"open": "open", "high": "high", "low": "low", "close": "close",
                                  "volume": "volume"}, **LEGEND}),
        panel(2, "Latest close", "stat", LATEST_CLOSE_SQL, "table", (0, 12, 6, 4), unit="locale",
              options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^close$/", "values": False},
                       "colorMode": "none", "graphMode": "none"}),
        panel(3, "Stock", "table", STOCK_INFO_SQL, "table", (6, 12, 18, 4)),
        panel(4, "Volume ($interval)", "timeseries", VOLUME_SQL, "time_series", (0, 16, 24, 6),
              custom=TS_BARS, options=LEGEND,
              overrides=[{"matcher": {"id": "byName", "options": "trading_value"},
                          "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                         {"id": "custom.drawStyle", "value": "line"}]}]),
        panel(5, "Bollinger bands (20, 2σ, daily)", "timeseries",
              indicator_sql("close", "bb_upper", "bb_middle", "bb_lower"), "time_series", (0, 22, 24, 8),
              custom=TS_LINES, options=LEGEND),
        panel(6, "RSI 14 (daily)", "timeseries", indicator_sql("rsi14"), "time_series", (0, 30, 8, 7),
              custom={**TS_LINES, "thresholdsStyle": {"mode": "line"}}, options=LEGEND),
        panel(7, "MACD 12/26/9 (daily)", "timeseries", indicator_sql("macd", "macd_signal", "macd_hist"),
              "time_series", (8, 30, 8, 7), custom=TS_LINES, options=LEGEND,
              overrides=[{"matcher": {"id": "byName", "options": "macd_hist"},
                          "properties": [{"id": "custom.drawStyle", "value": "bars"},
                                         {"id": "custom.fillOpacity", "value": 60}]}]),
        panel(8, "Stochastic 14/3 (daily)", "timeseries", indicator_sql("stoch_k", "stoch_d"), "time_series",
              (16, 30, 8, 7), custom=TS_LINES, options=LEGEND),
        panel(9, "$ticker net buying by investor type", "timeseries", STOCK_INVESTORS_SQL, "time_series",
              (0, 37, 24, 8), unit="currencyKRW", custom=TS_BARS, options=LEGEND,
              description="Net buys (won) of institutions, foreigners, individuals and other corporations per "
                          "session (krx_investor_trading); they sum to zero every day."),
        panel(10, "$ticker PER / PBR / dividend yield", "timeseries", STOCK_FUNDAMENTALS_SQL, "time_series",
              (0, 45, 12, 8), custom=TS_LINES, options=LEGEND,
              description="KRX's fundamentals at each close (krx_fundamentals). No PER for a loss maker.",
              overrides=[{"matcher": {"id": "byName", "options": "dividend_yield"},
                          "properties": [{"id": "unit", "value": "percent"},
                                         {"id": "custom.axisPlacement", "value": "right"}]}]),
        panel(11, "$ticker short selling and balance", "timeseries", STOCK_SHORTS_SQL, "time_series",
              (12, 45, 12, 8), custom=TS_LINES, options=LEGEND,
              description="Shares sold short per session and the outstanding short balance (KRX publishes "
                          "balances two sessions late).",
              overrides=[{"matcher": {"id": "byName", "options": "balance_ratio"},
                          "properties": [{"id": "unit", "value": "percent"},
                                         {"id": "custom.axisPlacement", "value": "right"}]}]),
        panel(12, "$ticker index memberships on $day", "table", INDEX_MEMBERSHIP_SQL, "table", (0, 53, 24, 7),
              description="The followed indices (KOSPI 200, KOSDAQ 150, KRX 300, the KOSPI/KOSDAQ sector indices) "
                          "the stock belonged to on the chosen session, with the membership's entry and exit "
                          "(empty: still a member) and its KRX industry that day (krx_index_members, "
                          "industry_on)."),
        panel(13, "$ticker filings (OpenDART)", "table", STOCK_DISCLOSURES_SQL, "table", (0, 60, 24, 8),
              description="The company's filings received in the time range, newest first (disclosures, from "
                          "OpenDART by the dart_disclosures DAG); url opens the filing in DART's viewer."),
    ]
    variables = [
        ticker_variable(),
        custom_variable("interval", "Candle", [("day", "day"), ("week", "week"), ("month", "month")], "day"),
        custom_variable("adjusted", "Prices", [("Raw", "false"), ("Adjusted", "true")], "true"),
        day_variable(),
    ]
    return dashboard("krxflow-stock", "krxflow · Stock", "One stock: candles, moving averages, Bollinger bands, "
                     "volume, RSI, MACD and Stochastic, KRX's reports and the index memberships on a session. "
                     "Adjusted by default (from KRX's base prices); ex-dates are annotated with their factor.", panels, variables, time_from="now-1y",
                     annotations=[sql_annotation("Ex-dates (adjustment factors)", EX_DATES_SQL, "orange")])


def market_dashboard() -> dict:
    panels = [
        panel(1, "Advancers / decliners", "timeseries", f"""SELECT {day_time('trade_date')} AS "time", market AS metric,
       advancers, decliners
FROM daily_market_summary
WHERE {SUMMARY_RANGE}
ORDER BY trade_date""", "time_series", (0, 0, 12, 8), custom=TS_LINES, options=LEGEND),
        panel(2, "Advance–decline line", "timeseries", f"""SELECT {day_time('trade_date')} AS "time", market AS metric,
       sum(advancers - decliners) OVER (PARTITION BY market ORDER BY trade_date) AS ad_line
FROM daily_market_summary
WHERE {SUMMARY_RANGE}
ORDER BY trade_date""", "time_series", (12, 0, 12, 8), custom=TS_LINES, options=LEGEND),
        panel(3, "Trading value", "timeseries", f"""SELECT {day_time('trade_date')} AS "time", market AS metric, trading_value
FROM daily_market_summary
WHERE {SUMMARY_RANGE}
ORDER BY trade_date""", "time_series", (0, 8, 12, 8), unit="currencyKRW", custom=TS_BARS, options=LEGEND),
        panel(4, "Mean daily return (%)", "timeseries", f"""SELECT {day_time('trade_date')} AS "time", market AS metric, mean_return
FROM daily_market_summary
WHERE {SUMMARY_RANGE}
ORDER BY trade_date""", "time_series", (12, 8, 12, 8), unit="percent", custom=TS_LINES, options=LEGEND),
        panel(5, "Tickers traded (last session)", "stat", f"""SELECT {day_time('trade_date')} AS "time", market AS metric,
       tickers_traded, advancers, decliners, unchanged
FROM daily_market_summary
WHERE trade_date = {LAST_SESSION} AND market IN ($market)
ORDER BY market""", "table", (0, 16, 24, 4),
              options={"reduceOptions": {"calcs": ["lastNotNull"], "values": True, "fields": ""},
                       "colorMode": "none", "graphMode": "none"}),
        panel(6, "Top gainers (last session)", "table", movers_sql("DESC"), "table", (0, 20, 8, 12)),
        panel(7, "Top losers (last session)", "table", movers_sql("ASC"), "table", (8, 20, 8, 12)),
        panel(8, "Market-cap leaders (last session)", "table", MARKET_CAP_LEADERS_SQL, "table", (16, 20, 8, 12)),
        panel(9, "Index $index with breadth", "candlestick", INDEX_CANDLES_SQL, "table", (0, 32, 24, 12),
              description="Daily index candles (krx_index_prices) with the day's advancers and decliners of "
                          "the selected markets.",
              options={"mode": "candles+volume", "candleStyle": "candles", "colorStrategy": "open-close",
                       "colors": {"up": "red", "down": "blue"}, "includeAllFields": True,
                       "fields": {"open": "open", "high": "high", "low": "low", "close": "close",
                                  "volume": "volume"}, **LEGEND}),
        panel(10, "Net buying by investor type", "timeseries", INVESTOR_FLOWS_SQL, "time_series", (0, 44, 12, 8),
              unit="currencyKRW", custom=TS_BARS, options=LEGEND,
              description="Market-wide net buys (won) per session of institutions, foreigners, individuals and "
                          "other corporations (krx_investor_trading)."),
        panel(11, "Top foreign net buys (last session)", "table", TOP_FOREIGN_BUYS_SQL, "table", (12, 44, 12, 8),
              unit="currencyKRW"),
        panel(12, "PER / PBR distribution", "timeseries", VALUATION_SQL, "time_series", (0, 52, 12, 8),
              custom=TS_LINES, options=LEGEND,
              description="Quartiles of PER (profitable tickers) and median PBR per market and session "
                          "(krx_fundamentals)."),
        panel(13, "Most-shorted tickers (last balance)", "table", MOST_SHORTED_SQL, "table", (12, 52, 12, 8),
              description="Short balance as % of listed shares (krx_short_balance, two sessions late) and "
                          "that day's short share of volume."),
        panel(14, "Sector heat map ($day)", "stat", SECTOR_HEAT_MAP_SQL, "table", (0, 60, 24, 10), unit="percent",
              description="Cap-weighted return (%) of each KRX industry of the selected markets on the chosen "
                          "session, biggest industries first: every ticker's change against its base price "
                          "weighted by its market cap (industry_returns_on). Red up, blue down.",
              options={"reduceOptions": {"calcs": ["lastNotNull"], "values": True,
                                                      "fields": "/^change_rate$/"},
                                    "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                                    "orientation": "auto", "justifyMode": "center", "wideLayout": True},
              field_defaults={"decimals": 2, "min": -3, "max": 3,
                              "color": {"mode": "continuous-BlYlRd", "fixedColor": "red"}}),
        panel(15, "Filings on $day (OpenDART)", "table", DAY_DISCLOSURES_SQL, "table", (0, 70, 24, 8),
              description="Every filing of a company of the selected markets received on the chosen day, newest "
                          "first (disclosures, from OpenDART by the dart_disclosures DAG)."),
    ]
    variables = [multi_variable("market", "Market", ["KOSPI", "KOSDAQ"]),
                 custom_variable("index", "Index", INDEX_CHOICES, "1001"), day_variable()]
    return dashboard("krxflow-market", "krxflow · Market", "KOSPI/KOSDAQ breadth, trading value, returns, "
                     "movers, market-cap leaders and the sector heat map of a session (days are KST trading "
                     "days).", panels, variables,
                     time_from="now-6M")


def intraday_dashboard() -> dict:
    panels = [
        panel(1, "$ticker ticks", "timeseries", TICKS_SQL, "time_series", (0, 0, 18, 10), unit="locale",
              custom=TS_LINES, options=LEGEND),
        panel(2, "Last quote", "stat", LAST_TICK_SQL, "table", (18, 0, 6, 10),
              options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False, "fields": ""},
                       "colorMode": "value", "graphMode": "none", "orientation": "horizontal"}),
        panel(3, "Traded volume per $__interval", "timeseries", TICK_VOLUME_SQL, "time_series", (0, 10, 12, 8),
              custom=TS_BARS, options=LEGEND),
        panel(4, "Order-book depth (latest snapshot)", "barchart", ORDER_BOOK_SQL, "table", (12, 10, 12, 16),
              options={"orientation": "horizontal", "xField": "price", "stacking": "normal", "showValue": "auto",
                       "barWidth": 0.9, **LEGEND}),
        panel(5, "Book totals and spread", "timeseries", BOOK_TOTALS_SQL, "time_series", (0, 18, 12, 8),
              custom=TS_LINES, options=LEGEND,
              overrides=[{"matcher": {"id": "byName", "options": "spread"},
                          "properties": [{"id": "custom.axisPlacement", "value": "right"}]}]),
        panel(6, "$ticker every trade (KIS push)", "timeseries", TRADES_SQL, "time_series", (0, 26, 18, 10),
              unit="locale", custom=TS_LINES, options=LEGEND,
              description="Every trade KIS pushed over the WebSocket (trades), exchange time."),
        panel(7, "Traded volume per $__interval by side (push)", "timeseries", TRADE_VOLUME_SQL, "time_series",
              (18, 26, 6, 10), custom=TS_BARS, options=LEGEND),
        panel(8, "$ticker 1-minute candles", "candlestick", MINUTE_CANDLES_SQL, "time_series", (0, 36, 24, 10),
              description="minute_bars (kis_minute_bars DAG, after the close).",
              options={"mode": "candles+volume", "candleStyle": "candles", "colorStrategy": "open-close",
                       "colors": {"up": "red", "down": "blue"}, **LEGEND}),
        panel(9, "Collector: messages/s and lag (exchange time → commit)", "timeseries", COLLECTOR_RATE_SQL,
              "time_series", (0, 46, 12, 8), custom=TS_LINES, options=LEGEND,
              overrides=[{"matcher": {"id": "byRegexp", "options": "lag_.*"},
                          "properties": [{"id": "custom.axisPlacement", "value": "right"}, {"id": "unit", "value": "s"}]}]),
        panel(10, "Collector: reconnects, unparsed frames, Redis errors", "timeseries", COLLECTOR_TROUBLE_SQL,
              "time_series", (12, 46, 12, 8), custom=TS_BARS, options=LEGEND),
    ]
    return dashboard("krxflow-intraday", "krxflow · Intraday", "KIS snapshots, every pushed trade, the live order "
                     "book, minute candles and the realtime collector's health for one stock.", panels,
                     [ticker_variable()], time_from="now/d", refresh="10s")


def pipeline_dashboard() -> dict:
    panels = [
        panel(1, "Last successful load per DAG", "table", LAST_LOAD_PER_DAG_SQL, "table", (0, 0, 16, 9),
              overrides=[{"matcher": {"id": "byName", "options": "age_seconds"},
                          "properties": [{"id": "unit", "value": "s"}]}]),
        panel(2, "Newest backup age", "stat", BACKUP_AGE_SQL, "table", (16, 0, 8, 9), unit="s",
              options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False,
                                         "fields": "/^backup_age_seconds$/"},
                       "colorMode": "background", "graphMode": "none"}),
        panel(3, "Rows written per KST day", "timeseries", ROWS_PER_DAY_SQL, "time_series", (0, 9, 12, 8),
              custom=TS_BARS, options=LEGEND),
        panel(4, "Rows rejected per KST day", "timeseries", REJECTS_PER_DAY_SQL, "time_series", (12, 9, 12, 8),
              custom=TS_BARS, options=LEGEND),
        panel(5, "Gaps found by quality checks", "table", GAPS_SQL, "table", (0, 17, 24, 8)),
        panel(6, "KIS requests, throttles, retries", "timeseries", KIS_REQUESTS_SQL, "time_series",
              (0, 25, 8, 8), custom=TS_BARS, options=LEGEND),
        panel(7, "KIS throughput", "timeseries", KIS_THROUGHPUT_SQL, "time_series", (8, 25, 8, 8),
              custom=TS_LINES, options=LEGEND),
        panel(8, "KIS dedupe hit rate and throttle rate", "timeseries", KIS_DEDUPE_SQL, "time_series",
              (16, 25, 8, 8), unit="percent", custom=TS_LINES, options=LEGEND),
        panel(9, "Failed and warning writes", "table", FAILED_LOADS_SQL, "table", (0, 33, 24, 8)),
    ]
    return dashboard("krxflow-pipeline", "krxflow · Pipeline health", "Loads, rejects, quality gaps, KIS polling "
                     "and backups, from load_stats.", panels, [], time_from="now-7d", refresh="1m")


DASHBOARDS = {
    "stock.json": stock_dashboard,
    "market.json": market_dashboard,
    "intraday.json": intraday_dashboard,
    "pipeline_health.json": pipeline_dashboard,
}


def render(builder) -> str:
    return json.dumps(builder(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, builder in DASHBOARDS.items():
        (OUT / name).write_text(render(builder), encoding="utf-8")
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
