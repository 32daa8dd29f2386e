"""KRXSessionTimetable: runs for XKRX sessions only, at the given KST time, serializable, backfill-ready."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.timetables.base import TimeRestriction

from krxflow.timetables import KRXSessionTimetable


def _runs(timetable, earliest, latest, catchup=True):
    restriction = TimeRestriction(earliest, latest, catchup)
    infos, info = [], None
    while True:
        info = timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
        if info is None:
            return infos
        infos.append(info)


def test_one_run_per_session_none_on_holidays_or_weekends():
    # 2024-02-07 .. 2024-02-14: Seollal holidays 9 and 12 February, weekend 10-11.
    infos = _runs(KRXSessionTimetable(), pendulum.datetime(2024, 2, 7, tz="UTC"), pendulum.datetime(2024, 2, 14, tz="UTC"))
    days = [i.logical_date.in_timezone("Asia/Seoul").date() for i in infos]
    assert days == [dt.date(2024, 2, 7), dt.date(2024, 2, 8), dt.date(2024, 2, 13), dt.date(2024, 2, 14)]
    first = infos[0]
    assert first.run_after == pendulum.datetime(2024, 2, 7, 18, tz="Asia/Seoul")
    assert first.data_interval.end == first.run_after


def test_early_run_time_keeps_the_session_date_where_ds_would_be_wrong():
    infos = _runs(KRXSessionTimetable(at="08:30"), pendulum.datetime(2024, 3, 4, tz="UTC"),
                  pendulum.datetime(2024, 3, 4, tz="UTC"))
    [info] = infos
    assert info.logical_date.in_timezone("Asia/Seoul").date() == dt.date(2024, 3, 4)
    assert info.logical_date.in_timezone("UTC").date() == dt.date(2024, 3, 3)  # `ds` would say the 3rd
    assert info.run_after == pendulum.datetime(2024, 3, 4, 8, 30, tz="Asia/Seoul")


def test_backfill_bounds_are_read_as_kst_dates():
    # `airflow backfill create --from-date 2024-05-01 --to-date 2024-05-07`: bare dates are UTC midnight.
    infos = _runs(KRXSessionTimetable(), pendulum.datetime(2024, 5, 1, tz="UTC"), pendulum.datetime(2024, 5, 7, tz="UTC"))
    days = [i.logical_date.in_timezone("Asia/Seoul").date() for i in infos]
    # 1 May (Labour day) is a KRX holiday in 2024, 5-6 May Children's day (+ substitute), 4-5 weekend.
    assert days == [dt.date(2024, 5, 2), dt.date(2024, 5, 3), dt.date(2024, 5, 7)]


def test_without_catchup_it_starts_at_the_latest_session_not_the_start_date():
    info = KRXSessionTimetable().next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(pendulum.datetime(2016, 1, 1, tz="UTC"), None, False))
    now = pendulum.now("UTC")
    assert info is not None and (now - info.run_after).in_days() <= 7
    assert info.run_after.in_timezone("Asia/Seoul").time() == dt.time(18, 0)


def test_manual_runs_get_an_interval_on_their_kst_day():
    interval = KRXSessionTimetable().infer_manual_data_interval(run_after=pendulum.datetime(2024, 2, 13, 20, tz="UTC"))
    assert interval.start.in_timezone("Asia/Seoul") == pendulum.datetime(2024, 2, 14, tz="Asia/Seoul")
    assert interval.end == pendulum.datetime(2024, 2, 13, 20, tz="UTC")


def test_rejects_a_bad_time():
    with pytest.raises(ValueError, match="HH:MM"):
        KRXSessionTimetable(at="6pm")


def test_serializes_through_airflow_and_the_plugin_registers_it(airflow_db):
    from airflow import plugins_manager
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    from krxflow.plugin import KrxflowPlugin

    assert KrxflowPlugin.name == "krxflow" and KRXSessionTimetable in KrxflowPlugin.timetables
    registered = plugins_manager.get_timetables_plugins()
    assert registered.get("krxflow.timetables.KRXSessionTimetable") is KRXSessionTimetable
    encoded = encode_timetable(KRXSessionTimetable(at="08:30"))
    decoded = decode_timetable(encoded)
    assert decoded == KRXSessionTimetable(at="08:30") and decoded.summary == "XKRX sessions @ 08:30 KST"


def test_bare_dates_and_kst_offsets_give_the_same_backfill():
    """docs/backfill.md and the DAG docs say one thing: bare --from-date/--to-date are KST session dates,
    and the `+09:00` form in docs/backfill.md's example means the same runs."""
    bare = _runs(KRXSessionTimetable(), pendulum.parse("2024-01-01"), pendulum.parse("2024-03-31"))
    kst = _runs(KRXSessionTimetable(), pendulum.parse("2024-01-01T00:00:00+09:00"),
                pendulum.parse("2024-03-31T23:59:59+09:00"))
    days = [i.logical_date.in_timezone("Asia/Seoul").date() for i in bare]
    assert days == [i.logical_date.in_timezone("Asia/Seoul").date() for i in kst]
    assert (days[0], days[-1]) == (dt.date(2024, 1, 2), dt.date(2024, 3, 29))  # as docs/backfill.md says
