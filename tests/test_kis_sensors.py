"""The KIS sensors keep BaseSensorOperator's contract (hook → trigger → sensor), like the HTTP provider's.

* deferrable (default): ``execute`` defers to the open's ``DateTimeTrigger`` or the window's
  trigger, each deferral bounded by what is left of ``timeout`` (the DAG tests run this path
  end to end through ``airflow dags test``);
* not deferrable: ``super().execute()`` and its poke loop, each poke one window against the fake
  KIS server, drained into PostgreSQL;
* ``timeout`` → :class:`AirflowSensorTimeout`, and with ``soft_fail`` a skip, on both paths;
* ``mode="reschedule"`` is refused when the sensor is built (the poke totals live on the instance);
* :class:`~krxflow.hooks.kis.KisHook` reads the Connection and describes its form.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from krxflow.hooks.kis import KisHook
from krxflow.intraday import drain as kis_drain
from krxflow.sample.kis_server import DEMO_APPKEY, FakeKis, FakeKisThread
from krxflow.sensors.kis_poll import KisPollSensor
from krxflow.sensors.kis_stream import KisStreamSensor
from krxflow.triggers.kis_poll import KisPollTrigger
from krxflow.triggers.kis_ws import KisStreamTrigger

TICKERS = ["005930", "000660", "035420", "000001", "999999"]  # 000001 halted, 999999 unknown


@pytest.fixture
def kis(monkeypatch, redis_client):
    with FakeKisThread(FakeKis(rate=18, move_probability=0.5)) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        yield srv


def _plan(start_in: float, seconds: float, window_seconds: int = 2) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    return {"tickers": TICKERS, "stream": f"sensor-{uuid.uuid4().hex[:8]}", "order_books": True,
            "start": (now + dt.timedelta(seconds=start_in)).isoformat(),
            "end": (now + dt.timedelta(seconds=start_in + seconds)).isoformat(), "window_seconds": window_seconds,
            "ws_trades": TICKERS[:2], "ws_books": TICKERS[:1], "ws_cap": 40, "ws_window_seconds": window_seconds}


# ------------------------------------------------------------------ not deferrable: the poke loop
def test_poke_loop_polls_each_window_and_drains_it(kis, clean_db, redis_client):
    plan = _plan(0, 5)
    sensor = KisPollSensor(task_id="poll", plan=plan, deferrable=False, poke_interval=0.1, timeout=120)
    totals = sensor.execute({})
    assert totals["windows"] >= 2, totals  # 5 s in 2 s windows, one per poke
    assert totals["requests"] == totals["successes"] == kis.fake.counts["served"] > 0
    quotes = clean_db.execute("SELECT count(*) FROM intraday_quotes").fetchone()[0]
    books = clean_db.execute("SELECT count(*) FROM order_books").fetchone()[0]
    assert quotes > 0 and books > 0 and quotes + books == totals["rows_written"]
    windows = clean_db.execute("SELECT details FROM load_stats WHERE operation = 'kis_poll_window'").fetchall()
    assert len(windows) == totals["windows"]
    assert sum(w[0]["rows_written"] for w in windows) == totals["rows_written"]
    assert kis_drain.pending_count(plan["stream"]) == 0


def test_poke_loop_times_out_before_the_open(redis_client):
    sensor = KisPollSensor(task_id="poll", plan=_plan(3600, 60), deferrable=False, poke_interval=0.1, timeout=0.5)
    with pytest.raises(AirflowSensorTimeout, match="timed out"):
        sensor.execute({})


def test_poke_loop_with_soft_fail_is_skipped_on_timeout(redis_client):
    sensor = KisStreamSensor(task_id="stream", plan=_plan(3600, 60), deferrable=False, poke_interval=0.1,
                             timeout=0.5, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.execute({})


@pytest.mark.parametrize("sensor_class", [KisPollSensor, KisStreamSensor])
@pytest.mark.parametrize("deferrable", [False, True])
def test_reschedule_mode_is_refused_with_what_to_use_instead(sensor_class, deferrable):
    """A rescheduled poke runs on a new operator instance: the totals of the earlier windows would be lost."""
    with pytest.raises(ValueError, match=r"mode='reschedule' is not supported.*deferrable=True.*mode='poke'"):
        sensor_class(task_id="s", plan=_plan(0, 60), deferrable=deferrable, mode="reschedule")
    assert sensor_class(task_id="s", plan=_plan(0, 60), deferrable=deferrable, mode="poke").mode == "poke"


def test_reschedule_mode_from_default_args_is_refused_too():
    from airflow.sdk import DAG

    with DAG("kis_reschedule_refused", schedule=None, default_args={"mode": "reschedule"}):
        with pytest.raises(ValueError, match="mode='reschedule' is not supported"):
            KisPollSensor(task_id="poll", plan=_plan(0, 60), deferrable=False)


# ------------------------------------------------------------------ deferrable: triggers, bounded by timeout
def test_deferrable_waits_for_the_open_then_defers_each_window_to_its_trigger(redis_client):
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    sensor = KisPollSensor(task_id="poll", plan=_plan(600, 60), timeout=dt.timedelta(minutes=5))
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert isinstance(deferred.value.trigger, DateTimeTrigger)
    assert deferred.value.method_name == "start_session"
    assert deferred.value.timeout <= dt.timedelta(minutes=5)  # bounded by the sensor's timeout, not the open

    sensor = KisPollSensor(task_id="poll", plan=_plan(0, 60, window_seconds=30))
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, KisPollTrigger) and trigger.tickers == TICKERS
    assert deferred.value.method_name == "execute_complete"
    assert dt.timedelta(seconds=30) <= deferred.value.timeout <= dt.timedelta(minutes=11)
    assert "started" in deferred.value.kwargs

    stream = KisStreamSensor(task_id="stream", plan=_plan(0, 60, window_seconds=0))
    with pytest.raises(TaskDeferred) as deferred:
        stream.execute({})
    assert isinstance(deferred.value.trigger, KisStreamTrigger)
    assert deferred.value.trigger.window_end == stream.plan["end"]  # 0: one window for the session


def test_deferrable_session_past_its_timeout_fails_or_skips(redis_client):
    long_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=17)).isoformat()
    event = {"status": "ok", "window": 1, "summary_buffered": True}
    sensor = KisPollSensor(task_id="poll", plan=_plan(0, 60))
    with pytest.raises(AirflowSensorTimeout):
        sensor.resume_execution("execute_complete", {"event": event, "totals": {}, "started": long_ago}, {})
    sensor = KisPollSensor(task_id="poll", plan=_plan(0, 60), soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": event, "totals": {}, "started": long_ago}, {})


def test_a_deferral_that_timed_out_in_the_triggerer_is_a_sensor_timeout_or_a_skip(redis_client):
    from airflow.sdk.bases.operator import TriggerFailureReason

    timed_out = {"error": TriggerFailureReason.TRIGGER_TIMEOUT.value, "traceback": None}
    with pytest.raises(AirflowSensorTimeout):
        KisStreamSensor(task_id="stream", plan=_plan(0, 60)).resume_execution("__fail__", timed_out, {})
    with pytest.raises(AirflowSkipException):
        KisStreamSensor(task_id="stream", plan=_plan(0, 60), soft_fail=True).resume_execution("__fail__", timed_out,
                                                                                              {})


# ------------------------------------------------------------------ the hook
def test_kis_hook_reads_the_connection_and_describes_its_form(kis):
    import asyncio

    config = KisHook().get_conn()
    assert config.base_url == kis.url and config.appkey == DEMO_APPKEY and config.env == "live"
    assert asyncio.run(KisHook(market="NX").aget_conn()).market == "NX"
    assert KisHook.conn_type == "kis" and KisHook.conn_name_attr == "kis_conn_id"
    form = KisHook.ui_field_behaviour()
    assert form["relabeling"] == {"host": "REST base URL", "login": "App key", "password": "App secret"}
    assert "port" in form["hidden-fields"] and '"env"' in form["placeholders"]["extra"]
    fields = KisHook.conn_fields()
    config_fields = {"env", "rate", "rate_margin", "token_interval", "timeout", "market", "ws_url"}
    assert config_fields <= set(fields) and all("schema" in field for field in fields.values())
