"""Sample mode's fake KIS server serves kis_realtime too: `make run` without KIS keys gets a WebSocket.

The server `make run` (and the compose ``sample`` profile) starts, run as that command line, with the
Connection that ``krxflow.bootstrap`` declares for sample mode: the product's own approval-key
manager and realtime session get an approval key for the sample appkey, register, and receive data.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import aiohttp
import pytest

from krxflow import bootstrap
from krxflow import redis_client as redis_clients
from krxflow.kis.approval import ApprovalKeyManager
from krxflow.kis.config import KisConfig
from krxflow.kis.ws import RealtimeSession
from krxflow.sample.serving import free_port
from krxflow.settings import KIS_CONN_ID


@pytest.fixture
def sample_kis_server():
    """``python -m krxflow.sample.kis_ws_server`` as `make run` starts it; (REST URL, WebSocket URL)."""
    rest_port, ws_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    proc = subprocess.Popen([sys.executable, "-m", "krxflow.sample.kis_ws_server", "--host", "127.0.0.1",
                             "--rest-port", str(rest_port), "--ws-port", str(ws_port), "--env", "live",
                             "--appkey", bootstrap.SAMPLE_KIS_APPKEY, "--appsecret", bootstrap.SAMPLE_KIS_APPSECRET],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once both servers listen
        assert "fake KIS realtime" in line, proc.stderr.read()[-3000:]
        yield f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{ws_port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_sample_connection_reaches_the_realtime_websocket(sample_kis_server, redis_client):
    rest_url, ws_url = sample_kis_server
    declared = {spec.conn_id: spec for spec in bootstrap.declared_connections(
        {"KRXFLOW_FAKE_KIS_URL": rest_url, "KRXFLOW_FAKE_KIS_WS_URL": ws_url})}
    kis = declared[KIS_CONN_ID]
    assert kis.conn_type == "kis" and kis.extra["ws_url"] == ws_url
    config = KisConfig.from_parts(kis.host, kis.port, kis.login, kis.password, kis.extra, {}, conn_type=kis.conn_type)
    frames: list[str] = []

    async def run() -> None:
        redis = redis_clients.async_client()
        async with aiohttp.ClientSession() as http:
            session = RealtimeSession(config, ApprovalKeyManager(config, redis, http),
                                      [("H0STCNT0", "005930"), ("H0STASP0", "005930")], frames.append)
            await session.run(time.monotonic() + 3)
        await redis.aclose()

    asyncio.run(run())
    assert any(frame.startswith("0|H0STCNT0|") for frame in frames), frames[:3]
    assert any(frame.startswith("0|H0STASP0|") for frame in frames), frames[:3]
