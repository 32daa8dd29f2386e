"""KIS client: exact parsing, the shared token, the shared rate limiter, error handling.

Against the fake KIS server on loopback and the real Redis (per-session key prefix).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from krxflow.kis import errors
from krxflow.kis.client import KisClient
from krxflow.kis.config import KisConfig
from krxflow.kis.parsing import parse_book, parse_decimal, parse_int, parse_quote
from krxflow.kis.ratelimit import RateLimiter
from krxflow.sample.kis_server import (DEMO_APPKEY, DEMO_APPSECRET, OTHER_ENV_APPKEY, FakeKis, FakeKisThread,
                                    connection_json)
from tests.fakes.loop_gaps import LoopGaps

ROOT = Path(__file__).resolve().parents[1]


def make_config(url: str, **overrides) -> KisConfig:
    values = dict(base_url=url, appkey=DEMO_APPKEY, appsecret=DEMO_APPSECRET, env="live", rate=18)
    values.update(overrides)
    return KisConfig(**values)


@pytest.fixture
def server(redis_client):
    with FakeKisThread(FakeKis(rate=18, token_interval=60)) as srv:
        yield srv


@pytest.fixture
async def aredis(redis_client):
    from krxflow import redis_client

    client = redis_client.async_client()
    yield client
    await client.aclose()


def run_children(script: str, count: int, env_extra: dict, timeout: float = 60) -> list[dict]:
    """Start ``count`` Python processes running ``script`` at once; each prints one JSON line."""
    env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# ------------------------------------------------------------------ parsing
def test_numbers_are_parsed_exactly_from_strings():
    assert parse_int("65850", "x") == 65850
    assert parse_int("-150", "x") == -150
    assert parse_int("5919637922", "x") == 5919637922
    assert parse_int("", "x") is None
    assert parse_decimal("-0.23", "x") == Decimal("-0.23")
    assert parse_decimal("65735.37", "x") == Decimal("65735.37")
    with pytest.raises(errors.KisResponseError, match="stck_prpr"):
        parse_int("65,85O", "stck_prpr")
    with pytest.raises(errors.KisResponseError):
        parse_decimal("1e5", "prdy_ctrt")


def test_quote_and_book_rows():
    output = {"stck_prpr": "65850", "prdy_vrss": "-150", "prdy_ctrt": "-0.23", "acml_vol": "1943202",
              "acml_tr_pbmn": "127737129950", "stck_oprc": "65700", "stck_hgpr": "66000", "stck_lwpr": "65500",
              "iscd_stat_cls_code": "55", "temp_stop_yn": "N"}
    import datetime as dt

    ts = dt.datetime(2026, 7, 1, 0, 47, tzinfo=dt.timezone.utc)
    row = parse_quote("005930", output, ts)
    assert row == {"ticker": "005930", "ts": ts, "price": 65850, "change": -150, "change_rate": Decimal("-0.23"),
                   "cum_volume": 1943202, "cum_value": 127737129950, "open": 65700, "high": 66000, "low": 65500,
                   "halted": False}
    assert parse_quote("005930", {**output, "iscd_stat_cls_code": "58"}, ts)["halted"] is True
    assert parse_quote("005930", {**output, "temp_stop_yn": "Y"}, ts)["halted"] is True
    assert parse_quote("999999", {**output, "stck_prpr": "0"}, ts) is None  # KIS's "unknown code"
    book = {f"askp{i}": str(65800 + 100 * i) for i in range(1, 11)}
    book |= {f"bidp{i}": str(65900 - 100 * i) for i in range(1, 11)}
    book |= {f"askp_rsqn{i}": str(1000 * i) for i in range(1, 11)} | {f"bidp_rsqn{i}": str(10 * i) for i in range(1, 11)}
    book |= {"total_askp_rsqn": "55000", "total_bidp_rsqn": "550"}
    brow = parse_book("005930", book, ts)
    assert brow["ask_price_1"] == 65900 and brow["bid_price_10"] == 64900 and brow["ask_qty_10"] == 10000
    assert brow["total_ask_qty"] == 55000 and brow["total_bid_qty"] == 550
    assert parse_book("999999", {}, ts) is None


def test_config_from_connection_uri_and_json(monkeypatch):
    from krxflow.hooks.kis import KisHook

    monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", "http://PSkey:sec%2Fret@127.0.0.1:18080?env=paper")
    paper = KisHook().get_conn()
    assert (paper.base_url, paper.appkey, paper.appsecret, paper.env, paper.rate) == (
        "http://127.0.0.1:18080", "PSkey", "sec/ret", "paper", 1.0)
    monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", connection_json("http://127.0.0.1:1", rate=9))
    live = KisHook().get_conn()
    assert live.base_url == "http://127.0.0.1:1" and live.rate == 9 and live.env == "live"
    assert DEMO_APPSECRET not in repr(live)
    monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", json.dumps({"conn_type": "http", "login": "k", "password": "s",
                                                               "extra": {"env": "paper"}}))
    assert KisHook().get_conn().base_url == "https://openapivts.koreainvestment.com:29443"
    monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", json.dumps({"conn_type": "http", "host": "http://x"}))
    with pytest.raises(ValueError, match="appkey"):
        KisHook().get_conn()


# ------------------------------------------------------------------ fake server rules
async def test_fake_token_endpoint_follows_kis_rules(server):
    import aiohttp

    body = {"grant_type": "client_credentials", "appkey": DEMO_APPKEY, "appsecret": DEMO_APPSECRET}
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/oauth2/tokenP", json=body) as resp:
            first = await resp.json()
            assert resp.status == 200 and first["token_type"] == "Bearer" and first["expires_in"] > 86000
        async with session.post(server.url + "/oauth2/tokenP", json=body) as resp:
            assert resp.status == 403 and (await resp.json())["error_code"] == "EGW00133"
        server.fake.last_issuance[DEMO_APPKEY] -= 61  # a minute later: same token (within 6 h)
        async with session.post(server.url + "/oauth2/tokenP", json=body) as resp:
            assert (await resp.json())["access_token"] == first["access_token"]
        async with session.post(server.url + "/oauth2/tokenP", json={**body, "appsecret": "wrong"}) as resp:
            assert resp.status == 403 and (await resp.json())["error_code"] == "EGW00105"


# ------------------------------------------------------------------ token
def test_token_shared_by_two_processes_is_issued_once(server, redis_client):
    script = """
        import asyncio, json, os
        from krxflow import redis_client
        from krxflow.kis.client import KisClient
        from krxflow.hooks.kis import KisHook

        async def main():
            redis = redis_client.async_client()
            async with KisClient(KisHook().get_conn(), redis) as kis:
                outputs = await asyncio.gather(*(kis.inquire_price(t) for t in ("005930", "000660", "035420")))
                token = await kis.tokens.get()
                print(json.dumps({"prices": [o["stck_prpr"] for o in outputs], "token": token,
                                  "issued_here": kis.tokens.issued, "requests": kis.stats.requests}))
            await redis.aclose()
        asyncio.run(main())
    """
    results = run_children(script, 2, {"AIRFLOW_CONN_KIS_DEFAULT": server.connection_json()})
    assert all(len(r["prices"]) == 3 and all(int(p) > 0 for p in r["prices"]) for r in results)
    assert results[0]["token"] == results[1]["token"]
    assert sum(r["issued_here"] for r in results) == 1
    assert server.fake.counts["token_requests"] == 1 and server.fake.counts["tokens_issued"] == 1
    assert server.fake.counts.get("token_throttled", 0) == 0


async def test_token_reused_across_calls_and_clients(server, aredis):
    async with KisClient(make_config(server.url), aredis) as kis:
        for ticker in ("005930", "000660", "035420", "005380", "051910"):
            await kis.inquire_price(ticker)
    async with KisClient(make_config(server.url), aredis) as again:  # a new client finds it in Redis
        await again.inquire_asking_price("005930")
        assert again.tokens.issued == 0
    assert server.fake.counts["token_requests"] == 1


async def test_expired_token_egw00123_is_renewed_once(aredis, redis_client):
    with FakeKisThread(FakeKis(token_interval=1)) as srv:
        async with KisClient(make_config(srv.url, token_interval=1), aredis) as kis:
            await kis.inquire_price("005930")
            first = await kis.tokens.get()
            srv.fake.expire_tokens()
            output = await kis.inquire_price("000660")  # EGW00123 → renew (after the 1/interval guard) → retry
            assert int(output["stck_prpr"]) > 0
            assert kis.stats.token_renewals == 1 and kis.stats.errors == 0
            assert await kis.tokens.get() != first
        assert srv.fake.counts["expired_token"] == 1
        assert srv.fake.counts["tokens_issued"] == 2
        assert srv.fake.counts.get("token_throttled", 0) == 0  # the guard waited instead of hammering tokenP


async def test_token_rate_limit_egw00133_is_waited_out(redis_client):
    with FakeKisThread(FakeKis(token_interval=1.5)) as srv:
        async with KisClient(make_config(srv.url, token_interval=1.5)) as first:  # no Redis: no shared guard
            await first.inquire_price("005930")
        srv.fake.expire_tokens()
        async with KisClient(make_config(srv.url, token_interval=1.5)) as second:
            output = await second.inquire_price("005930")  # EGW00123, then EGW00133, waits, then a new token
            assert int(output["stck_prpr"]) > 0
        assert srv.fake.counts["token_throttled"] >= 1
        assert srv.fake.counts["tokens_issued"] == 2


# ------------------------------------------------------------------ errors
async def test_throttling_egw00201_backs_off_and_retries(aredis, redis_client):
    with FakeKisThread(FakeKis(rate=3)) as srv:
        # The client believes it may send 40/s; the gateway allows 3/s: EGW00201 must be absorbed.
        async with KisClient(make_config(srv.url, rate=40), aredis) as kis:
            outputs = await asyncio.gather(*(kis.inquire_price(f"{i:06d}") for i in range(10, 22)))
        assert all(int(o["stck_prpr"]) > 0 for o in outputs)
        assert kis.stats.throttles > 0 and kis.stats.retries >= kis.stats.throttles
        assert kis.stats.successes == 12 and kis.stats.errors == 0
        assert srv.fake.counts["throttled"] == kis.stats.throttles


async def test_bad_credentials_and_wrong_domain_fail_fast(server, aredis):
    async with KisClient(make_config(server.url, appsecret="not-the-secret"), aredis) as kis:
        with pytest.raises(errors.KisConfigError, match="EGW00105.*appsecret"):
            await kis.inquire_price("005930")
    assert server.fake.counts["token_requests"] == 1  # no retry loop
    server.fake.accounts[OTHER_ENV_APPKEY] = "other-secret"  # has a token, but it is the other domain's key
    async with KisClient(make_config(server.url, appkey=OTHER_ENV_APPKEY, appsecret="other-secret"), aredis) as kis:
        with pytest.raises(errors.KisConfigError, match="EGW02004.*other environment"):
            await kis.inquire_price("005930")
        assert kis.stats.requests == 1 and kis.stats.retries == 0


async def test_injected_5xx_and_slow_answers_are_retried(server, aredis):
    server.fake.fail_next = 2
    server.fake.slow_next, server.fake.slow_seconds = 1, 0.3
    async with KisClient(make_config(server.url), aredis) as kis:
        output = await kis.inquire_price("005930")
        assert int(output["stck_prpr"]) > 0
        assert kis.stats.retries == 2 and kis.stats.successes == 1
    async with KisClient(make_config(server.url, timeout=0.2), aredis, max_retries=1) as kis:
        server.fake.slow_next, server.fake.slow_seconds = 5, 1.0
        with pytest.raises(errors.KisTransientError):
            await kis.inquire_price("005930")
        assert kis.stats.requests == 2


# ------------------------------------------------------------------ rate limiter
def test_limiter_shared_by_processes_never_exceeds_the_limit(redis_client):
    """Three processes × 8 coroutines hammer one appkey's limiter: no one-second window above 18."""
    script = """
        import asyncio, json, time
        from krxflow import redis_client
        from krxflow.kis.ratelimit import RateLimiter

        async def main():
            redis = redis_client.async_client()
            limiter = RateLimiter(redis, "load-test", rate=18)
            stamps = []
            deadline = time.time() + 3.0
            async def worker():
                while time.time() < deadline:
                    await limiter.acquire()
                    stamps.append(time.time())
            await asyncio.gather(*(worker() for _ in range(8)))
            print(json.dumps({"stamps": stamps, "fallbacks": limiter.fallbacks}))
            await redis.aclose()
        asyncio.run(main())
    """
    results = run_children(script, 3, {})
    stamps = sorted(s for r in results for s in r["stamps"])
    assert all(r["fallbacks"] == 0 for r in results)
    worst = max(sum(1 for t in stamps[i:i + 40] if t - stamps[i] < 1.0) for i in range(len(stamps)))
    assert worst <= 18
    assert len(stamps) >= 3 * 15  # the budget is used, not just respected
    assert all(len(r["stamps"]) > 5 for r in results)  # and shared by every process


async def test_limiter_keeps_the_gateway_under_its_limit(server, aredis):
    """Twelve callers at once make 60 calls (a count, not a time: a loaded machine only makes it
    slower): the gateway never sees more than 18 in a second and throttles none; the calls are
    done well within the hang guard (60 calls take ~3.5 s at 18/s)."""
    wanted = 60
    async with KisClient(make_config(server.url), aredis) as kis:
        guard = time.monotonic() + 120

        async def worker(n):
            while kis.stats.requests < wanted and time.monotonic() < guard:
                await kis.inquire_price(f"{n:06d}")

        await asyncio.gather(*(worker(n) for n in range(1, 13)))
    assert server.fake.counts.get("throttled", 0) == 0
    assert server.fake.max_in_window <= 18
    assert kis.stats.requests >= wanted, f"only {kis.stats.requests} calls before the hang guard"


async def test_a_stall_while_the_call_connects_does_not_send_it_with_the_next_slot(redis_client, aredis, monkeypatch):
    """The loop stalls after the limiter granted a slot, while the call opens its connection (every
    window's first calls do): the call must not go out late, into the next slot's second. At one
    call per second, a slot sent 0.8 s late and the next one on time would be two calls 0.6 s apart
    at the gateway (EGW00201); with the slot confirmed once the connection is up, the late one is
    given up and the calls stay a full interval apart."""
    with FakeKisThread(FakeKis(rate=1, token_interval=0)) as srv:
        loop = asyncio.get_running_loop()
        connect = loop.create_connection
        stalled = []

        async def create_connection(*args, **kwargs):
            if not stalled:  # the first connection: a neighbour blocks the loop while it is made
                stalled.append(time.monotonic())
                loop.call_soon(time.sleep, 0.8)
            return await connect(*args, **kwargs)

        monkeypatch.setattr(loop, "create_connection", create_connection)
        # 30 % margin at 1/s: slots 1.43 s apart, 0.21 s of slack, so the gateway's count does not hang on
        # the loopback's jitter; the stall (0.8 s) is well past the slack.
        limiter = RateLimiter(aredis, "stall-on-connect", rate=1, margin=0.3)
        async with KisClient(make_config(srv.url, rate=1), aredis) as first:
            await first.tokens.get()  # the shared token, in Redis: the client below opens no connection for it
        stalled.clear()
        async with KisClient(make_config(srv.url, rate=1), aredis, limiter=limiter) as kis:
            await kis.inquire_price("005930")  # connects (stalled), then sent
            await kis.inquire_price("000660")  # the pooled connection: sent at its slot
        arrivals = list(srv.fake.arrivals)
    assert srv.fake.counts.get("throttled", 0) == 0 and kis.stats.throttles == 0
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 1.0, arrivals
    assert len(stalled) == 1 and limiter.late_slots == 1  # the stall made the first slot late, once


async def test_limiter_falls_back_in_process_when_redis_is_down():
    import redis.asyncio

    dead = redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = RateLimiter(dead, "nowhere", rate=20)
    for _ in range(5):
        await limiter.acquire()
    # every reservation was made in process: one per call, and one per slot a starved loop met late
    assert limiter.fallbacks == 5 + limiter.late_slots
    await dead.aclose()


async def test_limiter_gives_up_slots_a_stalled_event_loop_made_late(redis_client, aredis):
    """A loop blocked for 0.3 s wakes every caller whose slot passed meanwhile at once: those slots
    are given up and taken again, so the calls still never exceed the limit in any one second.

    The budget is still used: while the loop runs, the callers take nearly every slot. Counted
    against the time the loop could run (its gaps taken out: the neighbour's stalls, and whatever a
    loaded machine adds), not against the wall clock."""
    limiter = RateLimiter(aredis, "stalled-loop", rate=18)
    stamps: list[float] = []
    started = time.monotonic()
    deadline = started + 4.0
    stalls = 0

    async def worker():
        while time.monotonic() < deadline:
            await limiter.acquire()
            stamps.append(time.monotonic())

    async def busy_neighbour():
        nonlocal stalls
        while time.monotonic() < deadline:
            await asyncio.sleep(0.7)
            time.sleep(0.3)  # blocks the loop, as a CPU-bound neighbour in the triggerer would
            stalls += 1

    loop = LoopGaps(longer_than=0.025)  # ~ the limiter's slack at 18/s
    await asyncio.gather(busy_neighbour(), *(worker() for _ in range(12)), loop.watch(until=deadline))
    gaps = loop.gaps
    stamps.sort()
    worst = max(sum(1 for t in stamps[i:i + 40] if t - stamps[i] < 1.0) for i in range(len(stamps)))
    assert stalls >= 3 and len(gaps) >= stalls  # the watcher saw every stall
    assert limiter.late_slots > 0  # the stalls did make slots late
    assert worst <= 18, worst
    # The slots that passed while the loop could run: each gap costs its own slots and one more
    # (the first slot after it may be met a little late).
    running = (stamps[-1] - started) - sum(gaps)
    usable = running / limiter.interval - len(gaps)
    assert len(stamps) >= 0.8 * usable, (len(stamps), usable, gaps)  # the budget is still used
