"""The XKRX calendar: the cached session table answers exactly as ``exchange_calendars`` does."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from krxflow import calendar


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, and no table cached in this process."""
    monkeypatch.setenv("KRXFLOW_CACHE_DIR", str(tmp_path))
    calendar.sessions.cache_clear()
    yield tmp_path
    calendar.sessions.cache_clear()


def test_every_day_of_the_window_agrees_with_exchange_calendars():
    cal = calendar.xkrx()
    first, last = cal.first_session.date(), cal.last_session.date()
    assert (calendar.first_session(), calendar.last_session()) == (first, last)
    expected = [ts.date() for ts in cal.sessions]
    assert calendar.trading_days(first, last) == expected
    day = first
    while day < last:
        assert calendar.is_trading_day(day) == cal.is_session(day.isoformat()), day
        if day > first:
            assert calendar.previous_trading_day(day) == cal.date_to_session(
                (day - dt.timedelta(days=1)).isoformat(), direction="previous").date(), day
        assert calendar.next_trading_day(day) == cal.date_to_session(
            (day + dt.timedelta(days=1)).isoformat(), direction="next").date(), day
        day += dt.timedelta(days=1)


def test_known_korean_days():
    assert not calendar.is_trading_day("2024-02-09")  # 설날
    assert not calendar.is_trading_day("20240915")  # a Sunday in 추석
    assert calendar.is_trading_day(dt.datetime(2024, 1, 2, 9, 30, tzinfo=calendar.KST))
    assert calendar.previous_trading_day("2024-02-13") == dt.date(2024, 2, 8)
    assert calendar.next_trading_day("2024-02-08") == dt.date(2024, 2, 13)
    assert calendar.trading_days("2024-02-08", "2024-02-13") == [dt.date(2024, 2, 8), dt.date(2024, 2, 13)]
    assert calendar.trading_days("2024-02-13", "2024-02-08") == []


def test_session_hours_keep_late_opens_in_kst():
    opens, closes = calendar.session_hours("2024-01-02")  # the year's first session opens at 10:00
    assert (opens.isoformat(), closes.isoformat()) == ("2024-01-02T10:00:00+09:00", "2024-01-02T15:30:00+09:00")
    # 수능 (CSAT) day: 10:00 to 16:30. exchange_calendars 4.13 lists CSAT days only up to 2020.
    opens, closes = calendar.session_hours("2019-11-14")
    assert (opens.hour, closes.hour, closes.minute) == (10, 16, 30)
    opens, closes = calendar.session_hours("2024-03-04")
    assert (opens.hour, closes.hour, closes.minute) == (9, 15, 30)
    for day in ("2024-01-02", "2019-11-14", "2024-03-04"):
        expected = calendar.xkrx().session_open_close(day)
        assert calendar.session_hours(day) == tuple(ts.to_pydatetime() for ts in expected)
    with pytest.raises(ValueError, match="not an XKRX trading day"):
        calendar.session_hours("2024-02-09")


def test_days_outside_the_window_are_refused_clearly():
    with pytest.raises(ValueError, match="outside the XKRX calendar's range"):
        calendar.is_trading_day("1990-01-02")
    with pytest.raises(ValueError, match="outside the XKRX calendar's range"):
        calendar.next_trading_day(calendar.last_session() + dt.timedelta(days=30))


def test_the_table_is_cached_on_disk_and_read_back_identically(private_cache):
    built = calendar.sessions()
    files = list(private_cache.glob("xkrx-sessions-*.npz"))
    assert len(files) == 1 and files[0].stat().st_size > 0
    calendar.sessions.cache_clear()
    loaded = calendar.sessions()
    assert loaded is not built
    for name in ("days", "opens", "closes"):
        assert (getattr(loaded, name) == getattr(built, name)).all()
    # A fresh process reads the file instead of building the calendar (never imports exchange_calendars).
    probe = ("import sys, krxflow.calendar as c; c.sessions(); "
             "print('exchange_calendars' in sys.modules, c.last_session())")
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "KRXFLOW_CACHE_DIR": str(private_cache)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", calendar.last_session().isoformat()]


def test_a_corrupt_or_unwritable_cache_is_not_an_error(private_cache, monkeypatch):
    calendar.sessions()
    (path,) = private_cache.glob("xkrx-sessions-*.npz")
    path.write_bytes(b"not an npz file")
    calendar.sessions.cache_clear()
    assert calendar.is_trading_day("2024-03-04")  # rebuilt, and the file rewritten
    calendar.sessions.cache_clear()
    assert calendar.sessions().last == calendar.xkrx().last_session.date()

    blocker = private_cache / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KRXFLOW_CACHE_DIR", str(blocker / "below-a-file"))
    calendar.sessions.cache_clear()
    assert calendar.is_trading_day("2024-03-04")


def test_a_runs_session_or_a_skip():
    """session_of_run: the run's KST day; a closed day skips the task unless the run asks for it anyway."""
    from airflow.sdk.exceptions import AirflowSkipException

    from krxflow.calendar import session_of_run

    # 2024-02-07 16:00 UTC is 2024-02-08 01:00 KST, a session; 2024-02-09 (Seollal) is not
    assert session_of_run(dt.datetime(2024, 2, 7, 16, tzinfo=dt.timezone.utc)) == dt.date(2024, 2, 8)
    holiday = dt.datetime(2024, 2, 9, 9, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    with pytest.raises(AirflowSkipException, match="2024-02-09 .KST. is not an XKRX session"):
        session_of_run(holiday)
    assert session_of_run(holiday, closed_ok=True) == dt.date(2024, 2, 9)
