"""The pykrx source against the offline KRX/Naver replay: pykrx's real requests and parsing, no network.

Covers normal days, holidays (no request; KRX's "-" rows), a halted day, the 2018 50:1 Samsung
split, a volume above 2^31, the login (GET/GET/POST, CD010), LOGOUT, a 403 block, an HTML
page, an empty answer on a trading day, the circuit breaker and the shared pacing.
"""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import pytest

from krxflow.krx import errors
from krxflow.krx.interface import ADJUSTED_COLUMNS, DAILY_COLUMNS, LISTING_COLUMNS
from krxflow.sample.market import SampleMarket, SampleSource
from tests.fakes.krx_replay import KrxReplay

TICKERS = 40


@pytest.fixture
def market():
    return SampleMarket(TICKERS)


@pytest.fixture
def krx(monkeypatch, redis_client):
    """A pykrx source with no pacing delay and no credentials (the krx_default Connection is absent)."""
    from krxflow.krx.pykrx_session import reset_pykrx_state
    from krxflow.krx.source import PykrxSource

    for name in ("AIRFLOW_CONN_KRX_DEFAULT", "KRX_ID", "KRX_PW"):  # restored (absent) after the test
        monkeypatch.delenv(name, raising=False)
    reset_pykrx_state()
    yield PykrxSource(min_interval=0)
    reset_pykrx_state()


@pytest.fixture
def replay(market):
    with KrxReplay(market) as fake:
        yield fake


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index(drop=True).astype(str)


def test_a_normal_day_is_one_all_market_request_with_the_sample_rows(krx, replay):
    frame = krx.daily_prices("2024-01-03")
    assert replay.received == {"MDCSTAT01501": 1}
    assert list(frame.columns) == DAILY_COLUMNS
    pd.testing.assert_frame_equal(_as_text(frame), _as_text(SampleSource(TICKERS).daily_prices("2024-01-03")))
    assert frame["trade_date"].unique().tolist() == [dt.date(2024, 1, 3)]
    assert set(replay.log[0][1]) >= {"bld", "trdDd", "mktId"} and replay.log[0][1]["mktId"] == "ALL"


def test_a_holiday_sends_nothing_and_returns_no_rows(krx, replay):
    frame = krx.daily_prices(dt.date(2024, 2, 9))  # Seollal
    assert frame.empty and list(frame.columns) == DAILY_COLUMNS
    assert replay.total == 0


def test_krx_holiday_rows_of_dashes_parse_as_missing_values(krx, replay):
    from pykrx.website.krx.market.core import 전종목시세

    from krxflow.krx.parsing import market_day_frame

    krx.bind_pykrx(None)
    raw = 전종목시세().fetch(trdDd="20240210", mktId="ALL")  # a Saturday: KRX lists everyone with "-"
    assert len(raw) and (raw["TDD_CLSPRC"] == "-").all()
    parsed = market_day_frame(raw, dt.date(2024, 2, 10))
    assert parsed["close"].isna().all() and parsed["listed_shares"].notna().all()


def test_the_listing_on_a_holiday_is_the_previous_sessions(krx, replay):
    listing = krx.listing("2024-02-10")
    assert list(listing.columns) == LISTING_COLUMNS
    assert replay.log[-1][1]["trdDd"] == "20240208"
    assert listing["isin"].str.match(r"^KR7\d{6}00\d$").all()
    assert set(listing["market"]) <= {"KOSPI", "KOSDAQ"}


def test_a_halted_day_has_no_open_high_low_and_carries_the_close(krx, replay, market):
    halted = krx.daily_prices("2018-05-02").set_index("ticker").loc["005930"]  # Samsung, before its split
    previous = krx.daily_prices("2018-04-27").set_index("ticker").loc["005930"]
    assert pd.isna(halted["open"]) and pd.isna(halted["high"]) and pd.isna(halted["low"])
    assert halted["volume"] == 0 and halted["close"] == previous["close"]


def test_samsung_2018_split_50_to_1_raw_and_adjusted(krx, replay):
    raw = krx.history("005930", "2018-04-20", "2018-05-10", adjusted=False)
    assert replay.received["MDCSTAT01701"] == 1
    assert list(raw.columns) == DAILY_COLUMNS and raw["trade_date"].is_monotonic_increasing
    before = raw[raw["trade_date"] == dt.date(2018, 4, 27)].iloc[0]
    after = raw[raw["trade_date"] == dt.date(2018, 5, 4)].iloc[0]
    assert before["listed_shares"] * 50 == after["listed_shares"]
    assert 40 < before["close"] / after["close"] < 60  # the raw price drops ~50x
    adjusted = krx.history("005930", "2018-04-20", "2018-05-10", adjusted=True)
    assert replay.received["naver"] == 1 and list(adjusted.columns) == ADJUSTED_COLUMNS
    a_before = adjusted[adjusted["trade_date"] == dt.date(2018, 4, 27)].iloc[0]
    a_after = adjusted[adjusted["trade_date"] == dt.date(2018, 5, 4)].iloc[0]
    assert 0.7 < a_before["close"] / a_after["close"] < 1.3  # no jump in the adjusted series
    assert a_before["volume"] == before["volume"] * 50
    pd.testing.assert_frame_equal(
        _as_text(adjusted), _as_text(SampleSource(TICKERS).history("005930", "2018-04-20", "2018-05-10")))


def test_a_volume_above_2_pow_31_survives(krx, replay):
    frame = krx.daily_prices("2024-01-03").set_index("ticker")
    assert frame.loc["010000", "volume"] > 2**31
    raw = krx.history("010000", "2024-01-02", "2024-01-05", adjusted=False)  # pykrx's own path casts to int32
    assert (raw["volume"] > 2**31).all()


def test_a_delisted_ticker_has_raw_history_but_no_adjusted_series(krx, replay, market):
    gone = next(t for t in SampleMarket(400).tickers if SampleMarket(400).profile(t).delisted is not None)
    with KrxReplay(SampleMarket(400)):
        krx_all = krx
        assert krx_all.history(gone, "2016-01-01", "2027-01-01", adjusted=True).empty
        assert not krx_all.history(gone, "2016-01-01", "2027-01-01", adjusted=False).empty
    delisted = krx.delisted()
    assert set(delisted.columns) == {"ticker", "name", "market", "isin"}


def test_logout_is_a_typed_error_that_is_not_retried(krx, replay):
    replay.fail("MDCSTAT01501", "logout")
    with pytest.raises(errors.KrxLogoutError, match="LOGOUT") as caught:
        krx.daily_prices("2024-01-03")
    from airflow.sdk.exceptions import AirflowFailException

    assert isinstance(caught.value, AirflowFailException)  # Airflow fails the task without retries


def test_anonymous_calls_get_logout_when_krx_requires_a_login(krx, market):
    with KrxReplay(market, require_login=True) as replay:
        with pytest.raises(errors.KrxLogoutError):
            krx.daily_prices("2024-01-03")
        assert replay.received["login"] == 0


def test_login_with_the_krx_default_connection(monkeypatch, market, redis_client):
    from krxflow.krx.source import PykrxSource

    for name in ("KRX_ID", "KRX_PW"):  # the source exports them for pykrx; gone again after the test
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:krx-secret@")
    with KrxReplay(market, require_login=True) as replay:
        frame = PykrxSource(min_interval=0).daily_prices("2024-01-03")
    assert len(frame) > 0
    # pykrx's login_krx(): GET the login page (a JSESSIONID), GET login.jsp, POST — then the data.
    kinds = [kind for kind, _ in replay.log]
    assert kinds == ["login_page", "login_jsp", "login", "MDCSTAT01501"]
    assert replay.log[2][1]["mbrId"] == "krx-user"


def test_password_change_required_cd010_is_a_login_error(monkeypatch, market, redis_client):
    from krxflow.krx.source import PykrxSource

    for name in ("KRX_ID", "KRX_PW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://another-user:old-password@")
    with KrxReplay(market, require_login=True, login_code="CD010") as replay:
        with pytest.raises(errors.KrxLoginError, match="CD010"):
            PykrxSource(min_interval=0).daily_prices("2024-01-03")
        assert replay.received["MDCSTAT01501"] == 0


@pytest.mark.parametrize("fault", ["403", "html"])
def test_a_block_fails_fast_and_opens_the_circuit_for_everyone(krx, replay, fault, redis_client):
    from krxflow.krx.pacing import circuit_key
    from krxflow.krx.source import PykrxSource

    replay.fail("MDCSTAT01501", fault)
    with pytest.raises(errors.KrxBlockedError, match="BLOCKED"):
        krx.daily_prices("2024-01-03")
    assert redis_client.ttl(circuit_key("krx")) > 23 * 3600
    sent = replay.total
    other_worker = PykrxSource(min_interval=0)  # another task: must not call KRX at all
    with pytest.raises(errors.KrxCircuitOpenError, match="circuit is OPEN"):
        other_worker.daily_prices("2024-01-04")
    assert replay.total == sent
    redis_client.delete(circuit_key("krx"))  # what the error tells an operator to do once the block is lifted
    assert len(other_worker.daily_prices("2024-01-04")) > 0


def test_a_naver_block_opens_only_the_naver_circuit(krx, replay):
    replay.fail("naver", "403")
    with pytest.raises(errors.KrxBlockedError):
        krx.history("005930", "2024-01-02", "2024-01-05", adjusted=True)
    assert len(krx.daily_prices("2024-01-03")) > 0  # KRX itself is still fine


def test_an_empty_answer_on_a_trading_day_is_an_error(krx, replay):
    replay.fail("MDCSTAT01501", "empty")
    with pytest.raises(errors.KrxEmptyAnswerError, match="trading day"):
        krx.daily_prices("2024-01-03")


def test_a_server_error_is_retryable(krx, replay):
    from airflow.sdk.exceptions import AirflowFailException

    replay.fail("MDCSTAT01501", "500")
    with pytest.raises(errors.KrxHttpError) as caught:
        krx.daily_prices("2024-01-03")
    assert not isinstance(caught.value, AirflowFailException)
    assert len(krx.daily_prices("2024-01-03")) > 0  # pykrx's ticker state was reset; the next call works


def test_requests_carry_a_timeout(krx, replay):
    krx.daily_prices("2024-01-03")
    krx.history("005930", "2024-01-02", "2024-01-05", adjusted=True)
    timeouts = [call.request.req_kwargs.get("timeout") for call in replay._mock.calls]
    assert timeouts == [30.0, 30.0]  # pykrx sends none of its own


def test_the_gate_counts_the_interval_from_the_previous_answer_across_workers(redis_client):
    from krxflow.krx.pacing import Pacer

    first, second = Pacer("krx-test", redis_client, 0.3), Pacer("krx-test", redis_client, 0.3)
    entered, left = [], []
    for pacer in (first, second, first):
        with pacer.turn():
            entered.append(time.monotonic())
            time.sleep(0.1)  # the request is on the wire: KRX receives it somewhere in here
        left.append(time.monotonic())
    assert all(b - a >= 0.3 - 0.005 for a, b in zip(left, entered[1:]))  # Redis' clock and ours: < 5 ms
    assert all(b - a >= 0.4 - 0.005 for a, b in zip(entered, entered[1:]))


def test_the_gate_lets_one_request_in_flight_and_a_block_stops_the_waiting_one(redis_client):
    import threading

    from krxflow.krx.pacing import Pacer

    holder, waiter = Pacer("krx-test", redis_client, 0), Pacer("krx-test", redis_client, 0)
    outcome = {}

    def wait_for_a_turn():
        try:
            with waiter.turn():
                outcome["sent"] = time.monotonic()
        except errors.KrxCircuitOpenError as exc:
            outcome["refused"] = str(exc)

    with holder.turn():  # a request is in flight ...
        thread = threading.Thread(target=wait_for_a_turn)
        thread.start()
        time.sleep(0.3)
        assert outcome == {}, "nothing is sent while another request is in flight"
        holder.open_circuit("HTTP 403 from the test")  # ... and its answer was a block
    thread.join(5)
    assert "sent" not in outcome and "circuit is OPEN" in outcome["refused"]
    assert "HTTP 403 from the test" in outcome["refused"]
