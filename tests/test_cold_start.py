"""The cold start is resumable: killed midway and run again, it ends with the tables of an uninterrupted run.

Two empty databases, the sample market (150 tickers, with listings, delistings, renames and
splits) over four months (an ex-date among them). One database gets an uninterrupted cold start; in the other the cold
start is SIGKILLed once about half of the sessions are journaled, then run again to the end. Both
runs are separate processes (``python -m krxflow.krx.cold_start``), as a killed task and its
rerun are. The rerun must request only what was not loaded (at most the session in flight again),
and every table the cold start writes must hold the same rows in both databases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

pytestmark = pytest.mark.integration

TICKERS = 150
FIRST, LAST = "2024-08-01", "2024-11-29"
#: Every table a cold start writes, with the columns compared (updated_at / recorded_at are the clock of the write).
TABLES = {
    "daily_prices": "*",
    "daily_prices_adjusted": "*",
    "adjustment_factors": "*",
    "stocks": "ticker, name, market, isin, sector, listed_shares, market_cap, first_seen, last_seen, delisted, "
              "delisted_on",
    "stock_changes": "ticker, changed_on, field, old_value, new_value",
}


def _env(url: str) -> dict:
    return {**os.environ, "AIRFLOW_CONN_POSTGRES_DEFAULT": url, "KRXFLOW_SOURCE": "sample",
            "KRXFLOW_SAMPLE_TICKERS": str(TICKERS)}


def _cold_start(url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "krxflow.krx.cold_start", "--first", FIRST, "--last", LAST],
                            env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _journaled(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM load_stats WHERE operation = 'cold_start_session'").fetchone()[0]


def _contents(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {table: conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3").fetchall()
                for table, columns in TABLES.items()}


def _migrated(url: str) -> str:
    subprocess.run([sys.executable, "-m", "krxflow.db", "migrate"], env=_env(url), check=True,
                   capture_output=True, timeout=300)
    return url


@pytest.fixture(scope="module")
def uninterrupted(scratch_database):
    """An empty database given one uninterrupted cold start: its URL and the run's summary. Both tests
    compare against it and only read it, so the module runs it once."""
    url = _migrated(scratch_database("cold_a"))
    return url, _finish(_cold_start(url))


@pytest.fixture
def second_market(scratch_database):
    """Another empty, migrated database."""
    return _migrated(scratch_database("cold_b"))


def test_a_killed_cold_start_resumes_to_the_tables_of_an_uninterrupted_one(uninterrupted, second_market):
    from krxflow.calendar import trading_days

    (whole, reference), interrupted = uninterrupted, second_market
    sessions = len(trading_days(FIRST, LAST))

    assert reference["requested"] == sessions
    assert _journaled(whole) == sessions

    victim = _cold_start(interrupted)
    deadline = time.monotonic() + 600
    while _journaled(interrupted) < sessions // 2:
        assert victim.poll() is None, "the cold start ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    journaled = _journaled(interrupted)
    assert sessions // 2 <= journaled < sessions
    with psycopg.connect(interrupted) as conn:
        days_with_prices = conn.execute("SELECT count(DISTINCT trade_date) FROM daily_prices").fetchone()[0]
    assert days_with_prices - journaled <= 2  # only the sessions in flight were written but not journaled

    resumed = _finish(_cold_start(interrupted))
    assert resumed["requested"] == sessions - journaled  # nothing journaled is asked for again
    assert _journaled(interrupted) == sessions

    expected, got = _contents(whole), _contents(interrupted)
    for table in TABLES:
        assert got[table] == expected[table], table
    assert expected["daily_prices"] and expected["adjustment_factors"] and expected["stocks"]
    # and a third run loads nothing at all
    assert _finish(_cold_start(interrupted))["requested"] == 0
    assert _contents(interrupted) == expected


def test_placing_the_master_on_change_points_equals_placing_it_on_every_session(uninterrupted, second_market):
    """The cold start's shortcut (master only where the listing changes) against the daily loader's way."""
    from krxflow.calendar import trading_days

    (cold, _), daily = uninterrupted, second_market
    script = ("import sys; from krxflow.sources import get_source; from krxflow.krx.loading import "
              "load_daily_prices; source = get_source(); "
              f"[load_daily_prices(source, day) for day in {[d.isoformat() for d in trading_days(FIRST, LAST)]!r}]")
    subprocess.run([sys.executable, "-c", script], env=_env(daily), check=True, capture_output=True, timeout=900)
    with psycopg.connect(cold) as conn:
        placed, sessions = conn.execute(
            "SELECT count(*) FILTER (WHERE (details->>'master_placed')::boolean), count(*) FROM load_stats "
            "WHERE operation = 'cold_start_session'").fetchone()
    assert placed < sessions  # the shortcut was taken
    expected, got = _contents(daily), _contents(cold)
    for table in ("daily_prices", "stock_changes"):
        assert got[table] == expected[table], table
    # the cold start also ran the listing of the last session (known delisted tickers): compare the
    # tickers both saw trading
    traded = {row[0] for row in expected["daily_prices"]}
    assert [r for r in got["stocks"] if r[0] in traded] == [r for r in expected["stocks"] if r[0] in traded]
