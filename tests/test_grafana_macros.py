"""The Grafana SQL expander (``grafana/panel_sql.py``) reproduces Grafana's own expansions.

Expected strings come from Grafana's PostgreSQL datasource documentation and its macro engine
tests (pkg/tsdb/grafana-postgresql-datasource/macros_test.go), and from the SQL datasource's
variable interpolation (single values raw with quotes doubled, multi-values quoted and joined).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from grafana.panel_sql import MacroError, TimeRange, expand, expand_macros, interpolate_variables, kst_range

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=timezone.utc)
FIVE_MINUTES = TimeRange(FROM, FROM + timedelta(minutes=5))


@pytest.mark.parametrize("sql, expected", [
    ("select $__time(time_column)", 'select time_column AS "time"'),
    ("select min($__time(time_column))", 'select min(time_column AS "time")'),
    ("select $__timeEpoch(time_column)", 'select extract(epoch from time_column) as "time"'),
    ("WHERE $__timeFilter(time_column)",
     "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"),
    ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
    ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
    ("SELECT $__timeGroup(time_column,'5m')", "SELECT floor(extract(epoch from time_column)/300)*300"),
    ("SELECT $__timeGroupAlias(time_column,'5m')", 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"'),
    ("$__timeGroup(time_column , '5m')", "floor(extract(epoch from time_column)/300)*300"),
    # pre-5.3 dashboards: a comma right after $__timeGroup means the alias form
    ("SELECT $__timeGroup(time_column,'5m'), value", 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value'),
    ("SELECT $__timeGroup(time_column,'5m') as time, value", "SELECT floor(extract(epoch from time_column)/300)*300 as time, value"),
    ("GROUP BY $__timeGroup(ts, 1d)", "GROUP BY floor(extract(epoch from ts)/86400)*86400"),
    ("GROUP BY $__timeGroup(ts, 20ms)", "GROUP BY floor(extract(epoch from ts)/0.02)*0.02"),
    ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
    ("select $__unixEpochNanoFilter(time)",
     "select time >= 1523556000000000000 AND time <= 1523556300000000000"),
    ("select $__unixEpochNanoFrom()", "select 1523556000000000000"),
    ("SELECT $__unixEpochGroup(time_column+time_adjustment,'5m')", "SELECT floor((time_column+time_adjustment)/300)*300"),
    ("SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')",
     'SELECT floor((time_column+time_adjustment)/300)*300 AS "time"'),
])
def test_macros_expand_like_grafana(sql, expected):
    assert expand_macros(sql, FIVE_MINUTES) == expected


def test_fractional_seconds_use_go_rfc3339nano():
    rng = TimeRange(datetime(1960, 2, 1, 7, 0, 0, 500000, tzinfo=timezone.utc),
                    datetime(1980, 2, 3, 8, 0, 0, 500000, tzinfo=timezone.utc))
    assert expand_macros("WHERE $__timeFilter(t)", rng) == \
        "WHERE t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"


def test_time_range_is_sent_in_utc():
    rng = kst_range("2024-12-30", "2024-12-30")  # one KST day
    assert expand_macros("$__timeFrom() $__timeTo()", rng) == "'2024-12-29T15:00:00Z' '2024-12-30T14:59:59.999Z'"


@pytest.mark.parametrize("sql, message", [
    ("select $__nope(x)", 'unknown macro "__nope"'),
    ("select $__timeFilter()", "missing time column argument"),
    ("select $__timeGroup(ts)", "needs time column and interval"),
    ("select $__timeGroup(ts, 'soon')", "error parsing interval"),
])
def test_bad_macros_fail_like_grafana(sql, message):
    with pytest.raises(MacroError, match=message):
        expand_macros(sql, FIVE_MINUTES)


def test_single_value_variables_are_inserted_raw_with_quotes_doubled():
    values = {"ticker": "005930", "adjusted": "true", "name": "O'Neil"}
    sql = "WHERE ticker = '$ticker' AND adjusted = ${adjusted} AND n = '[[name]]' AND x = $missing"
    assert interpolate_variables(sql, values) == \
        "WHERE ticker = '005930' AND adjusted = true AND n = 'O''Neil' AND x = $missing"


def test_multi_value_variables_become_quoted_lists():
    assert interpolate_variables("market IN ($market)", {"market": ["KOSPI", "KOSDAQ"]}) == \
        "market IN ('KOSPI','KOSDAQ')"
    # a multi-value variable with one selection is still quoted; :raw opts out
    assert interpolate_variables("IN ($m) ${m:raw}", {"m": "KOSPI"}, multi={"m"}) == "IN ('KOSPI') KOSPI"


def test_builtin_interval_and_range_variables():
    sql = "$__timeGroupAlias(ts, $__interval) $__interval_ms $__from $__to"
    assert expand(sql, FIVE_MINUTES, interval="30s") == \
        'floor(extract(epoch from ts)/30)*30 AS "time" 30000 1523556000000 1523556300000'


def test_variables_are_interpolated_before_macros():
    assert expand("WHERE $__timeFilter($col)", FIVE_MINUTES, {"col": "ts"}) == \
        "WHERE ts BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"


@pytest.mark.parametrize("hours, expected", [(1, "1m"), (24 * 7, "15m"), (24 * 30, "1h"), (24 * 365 * 5, "7d")])
def test_auto_interval_is_range_over_data_points_rounded_up_and_at_least_1m(hours, expected):
    from grafana.panel_sql import auto_interval

    rng = TimeRange(FROM, FROM + timedelta(hours=hours))
    assert auto_interval(rng) == expected
