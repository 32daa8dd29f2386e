"""What krxflow sends to KRX, counted at the wire of the offline KRX, across several worker processes.

The promises of docs/backfill.md ("What krxflow sends to KRX"), checked against every request the replay received (logins and login
pages included), with its arrival time and sending process: one login for the installation,
no two requests closer than the interval, exactly one request into a block and none after it,
a block at the login treated like any other, a refused login never repeated.
"""

from __future__ import annotations

import pytest

from krxflow.krx import errors
from krxflow.sample.market import SampleMarket
from tests.fakes.krx_replay import KrxReplay
from tests.fakes.krx_traffic import run_workers

TICKERS = 40
INTERVAL = 0.3
CREDENTIALS = {"AIRFLOW_CONN_KRX_DEFAULT": "generic://krx-user:krx-secret@"}


@pytest.fixture
def credentials(monkeypatch, redis_client):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KRXFLOW_KRX_MIN_INTERVAL", "0")
    return redis_client


def test_three_workers_share_one_login_and_never_send_closer_than_the_interval(redis_client):
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"]
    jobs = [[["day", day] for day in days[0:2]] + [["history", "005930", "2019-01-02", "2024-01-05"]],
            [["day", day] for day in days[2:4]] + [["adjusted", "010000", "2023-01-02", "2024-01-05"]],
            [["day", day] for day in days[4:6]] + [["adjusted", "005930", "2023-01-02", "2024-01-05"]]]
    # KRX_ID/KRX_PW in the workers' environment: pykrx would log in at import with them; it must not.
    env = {**CREDENTIALS, "KRXFLOW_KRX_MIN_INTERVAL": str(INTERVAL), "KRX_ID": "krx-user", "KRX_PW": "krx-secret"}
    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        outcomes = run_workers(replay, jobs, env=env)
    assert all(o.startswith("ok ") and o != "ok 0" for worker in outcomes for o in worker), outcomes
    wire = replay.wire()
    kinds = replay.received
    assert kinds["login"] == 1 and kinds["login_page"] == 1 and kinds["login_jsp"] == 1
    assert kinds["MDCSTAT01501"] == 6 and kinds["naver"] == 2
    assert kinds["MDCSTAT01701"] == 3, "five years of one ticker: pykrx's 730-day split, three requests"
    assert len({entry["pid"] for entry in wire}) == 3
    krx_gaps, naver_gaps = replay.gaps(), replay.gaps(naver=True)
    assert min(krx_gaps) >= INTERVAL, krx_gaps
    assert min(naver_gaps) >= INTERVAL, naver_gaps


def test_a_block_gets_exactly_one_request_and_nothing_after_it_from_any_worker(redis_client):
    from krxflow.krx.pacing import circuit_key

    jobs = [[["day", "2024-01-02"], ["day", "2024-01-03"], ["day", "2024-01-04"], ["day", "2024-01-05"]],
            [["day", "2024-01-08"], ["day", "2024-01-09"], ["day", "2024-01-10"], ["day", "2024-01-11"]],
            [["history", "005930", "2019-01-02", "2024-01-05"], ["day", "2024-01-12"], ["day", "2024-01-15"]]]
    env = {**CREDENTIALS, "KRXFLOW_KRX_MIN_INTERVAL": "0.05"}
    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        replay.block("403", after=5)  # the login (3 requests) and two data requests get through
        outcomes = run_workers(replay, jobs, env=env)
    wire = replay.wire()
    statuses = [entry["status"] for entry in wire]
    assert statuses.count(403) == 1 and statuses[-1] == 403, "exactly one request into the block, none after it"
    assert len(wire) == 6
    flat = [o for worker in outcomes for o in worker]
    succeeded = sum(o.startswith("ok ") for o in flat)
    assert flat.count("KrxBlockedError") == 1 and succeeded <= 2
    assert flat.count("KrxCircuitOpenError") == len(flat) - 1 - succeeded, flat
    assert redis_client.ttl(circuit_key("krx")) > 23 * 3600


@pytest.mark.parametrize("fault, sent", [("403", 1), ("html", 3)])
def test_an_ip_wide_block_at_the_login_opens_the_circuit(credentials, fault, sent):
    from krxflow.krx.source import PykrxSource

    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        replay.block(fault)
        with pytest.raises(errors.KrxBlockedError, match="BLOCKED this IP"):
            PykrxSource().daily_prices("2024-01-03")
        # 403 on the login page is seen at once; an HTML page is what the login page *is*, so the
        # block shows at the login POST, which must answer JSON.
        assert replay.total == sent
        with pytest.raises(errors.KrxCircuitOpenError, match="circuit is OPEN"):
            PykrxSource().daily_prices("2024-01-04")
        assert replay.total == sent


def test_a_login_with_the_circuit_open_fails_at_once_and_sends_nothing(credentials):
    from krxflow.krx.source import PykrxSource

    source = PykrxSource()
    source.pacers["krx"].open_circuit("HTTP 403 from an earlier task")
    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        with pytest.raises(errors.KrxCircuitOpenError, match="circuit is OPEN.*HTTP 403 from an earlier task"):
            source.daily_prices("2024-01-03")
    assert replay.total == 0


def test_logout_renews_the_shared_session_once_for_every_worker(credentials):
    from krxflow.krx.source import PykrxSource

    first, second = PykrxSource(), PykrxSource()
    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        first.daily_prices("2024-01-03")
        second.daily_prices("2024-01-04")  # reuses the session: no login of its own
        assert replay.received["login"] == 1
        replay.expire_sessions()  # KRX forgot the session
        first.daily_prices("2024-01-05")  # LOGOUT, one new login, the same request again
        second.daily_prices("2024-01-08")  # the renewed session, no second login
    assert replay.received["login"] == 2
    assert [e["status"] for e in replay.wire() if e["kind"] == "MDCSTAT01501"] == [200, 200, 400, 200, 200]


def test_logout_right_after_a_new_login_is_an_error_not_a_loop(credentials):
    from krxflow.krx.source import PykrxSource

    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        replay.fail("MDCSTAT01501", "logout", times=2)
        with pytest.raises(errors.KrxLogoutError, match="again right after a new login"):
            PykrxSource().daily_prices("2024-01-03")
    assert replay.received["MDCSTAT01501"] == 2
    # KRX still counts the first session as logged in: the new login meets CD011 and takes over (skipDup=Y).
    assert [params["skipDup"] for kind, params in replay.log if kind == "login"] == [None, None, "Y"]


def test_a_refused_login_is_not_repeated_by_other_workers(credentials, monkeypatch):
    from krxflow.krx.source import PykrxSource

    with KrxReplay(SampleMarket(TICKERS), require_login=True, login_code="CD010") as replay:
        with pytest.raises(errors.KrxLoginError, match="CD010"):
            PykrxSource().daily_prices("2024-01-03")
        assert replay.received["login"] == 1
        with pytest.raises(errors.KrxLoginError, match="remembered"):
            PykrxSource().daily_prices("2024-01-04")
        assert replay.received["login"] == 1 and replay.total == 3
        # a new password on the Connection is worth one new try
        monkeypatch.setenv("AIRFLOW_CONN_KRX_DEFAULT", "generic://krx-user:new-secret@")
        replay.login_code = "CD001"
        assert len(PykrxSource().daily_prices("2024-01-04")) > 0
    assert replay.received["login"] == 2


def test_naver_requests_carry_no_krx_cookies(credentials):
    from krxflow.krx.source import PykrxSource

    source = PykrxSource()
    with KrxReplay(SampleMarket(TICKERS), require_login=True) as replay:
        source.daily_prices("2024-01-03")
        source.history("005930", "2024-01-02", "2024-01-05", adjusted=True)
        naver = [call.request for call in replay._mock.calls if "naver" in call.request.url]
    assert len(naver) == 1 and "JSESSIONID" not in naver[0].headers.get("Cookie", "")
