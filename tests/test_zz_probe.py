import asyncio, os, threading, time
import asyncio.selector_events as se
import pytest
from krxflow.sample.kis_server import FakeKis, FakeKisThread

WINDOW = float(os.environ.get("PROBE_WINDOW", "3"))
SECONDS = float(os.environ.get("PROBE_SECONDS", "30"))

def test_probe(redis_client, monkeypatch):
    from krxflow.kis import ratelimit
    from krxflow.sample.market import SampleMarket
    from tests.fakes.kis_session import run_session
    writes, acquired = [], []
    main = threading.get_ident()
    orig = se._SelectorSocketTransport.write
    def w(self, data):
        if threading.get_ident() == main and bytes(data[:4]) == b"GET ":
            writes.append(time.monotonic())
        return orig(self, data)
    monkeypatch.setattr(se._SelectorSocketTransport, "write", w)
    oacq = ratelimit.RateLimiter.acquire
    async def acq(self):
        r = await oacq(self)
        acquired.append(time.monotonic())
        return r
    monkeypatch.setattr(ratelimit.RateLimiter, "acquire", acq)
    tickers = SampleMarket(100).tickers[:20]
    with FakeKisThread(FakeKis(rate=18, sample=True)) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_KIS_DEFAULT", srv.connection_json())
        payloads = asyncio.run(run_session(tickers, "t-probe", SECONDS, WINDOW, stall=0.3, drain=False))
        stats = srv.fake.stats(); arrivals = list(srv.fake.arrivals)
    def worst(ts):
        ts = sorted(ts); return max((sum(1 for t in ts[i:i+40] if t - ts[i] < 1.0) for i in range(len(ts))), default=0)
    # lag between acquire and write (matched in order is not exact; compare window maxima)
    print("\nstats", {k: stats[k] for k in ("requests", "served", "throttled", "max_in_window") if k in stats})
    print("worst acquire-return window", worst(acquired), "worst client-write window", worst(writes), "worst arrival window", worst(arrivals))
    print("late_slots", sum(p["late_slots"] for p in payloads), "windows", len(payloads))
    assert False
