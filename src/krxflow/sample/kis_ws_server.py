"""A faithful fake of KIS's realtime WebSocket (and its ``/oauth2/Approval``), for tests and the bench.

Follows ``shared/reference/kis-open-api.md`` §8 and the official samples (``examples_llm/kis_auth.py``):

* ``POST /oauth2/Approval`` (``appkey`` + ``secretkey``) → ``{"approval_key": <uuid>}``; bad
  credentials → 403 in the ``error_code``/``error_description`` envelope. Served next to the REST
  fake (:func:`krxflow.sample.kis_server.make_app`, unchanged) on the same port.
* The WebSocket (any path, plain ``ws://``): one JSON text frame per (un)registration
  (``tr_type`` ``1``/``2``). Answers: ``OPSP0000`` SUBSCRIBE SUCCESS (with ``output.iv/key``),
  ``OPSP0001`` UNSUBSCRIBE SUCCESS, ``OPSP0002`` ALREADY IN SUBSCRIBE, ``OPSP0003``
  UNSUBSCRIBE ERROR(not found!), ``OPSP0008`` MAX SUBSCRIBE OVER past ``cap`` (41 like KIS),
  ``OPSP0011`` invalid approval, ``OPSP8996`` ALREADY IN USE appkey for a second session of an
  appkey, rt_cd ``9`` JSON PARSING ERROR for a malformed frame.
* ``PINGPONG`` text frames every ``ping_interval`` s; the answer is a pong frame with the same
  payload (counted); with ``pong_timeout`` set, a connection that does not answer is dropped.
* Data frames ``0|TR|NNN|…`` for every registration at ``rate`` records per second in total
  (``H0STCNT0``/``H0UNCNT0`` 46 fields, ``H0STASP0`` 59, ``H0UNASP0`` 65), up to
  ``records_per_frame`` records of one TR per frame; ``extra_trade_field`` appends a 47th field
  (the announced ``MARKET_CLS_CODE``) to trade records; exchange time = now (KST).
* :meth:`FakeRealtime.drop` ends every connection — abruptly (TCP abort, close code 1006, as
  KIS drops are seen) or with a close frame.

Control endpoints on the REST port: ``GET /_fake_ws/stats``, ``POST /_fake_ws/config`` (``rate``,
``records_per_frame``, ``cap``, ``ping_interval``, ``pong_timeout``, ``extra_trade_field``),
``POST /_fake_ws/drop`` (``{"abrupt": true|false}``). As a process (bench)::

    python -m krxflow.sample.kis_ws_server --rest-port 18081 --ws-port 18082 --records-rate 5000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import secrets
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from krxflow.sample.kis_server import DEMO_APPKEY, DEMO_APPSECRET, KST, FakeKis, _Ticker, connection_json
from krxflow.sample.kis_server import make_app as make_rest_app
from krxflow.sample.kis_server import add_gateway_arguments, gateway_of, tick_size
from krxflow.sample.serving import BackgroundServer, free_port, serve_app

FIELD_COUNTS = {"H0STCNT0": 46, "H0UNCNT0": 46, "H0STASP0": 59, "H0UNASP0": 65}
TRADE_TRS = {"H0STCNT0", "H0UNCNT0"}


class _Connection(ServerConnection):
    """A server connection that records the pong frames it receives (KIS's PINGPONG answer)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pongs: list[bytes] = []

    def acknowledge_pings(self, data: bytes) -> None:
        self.pongs.append(bytes(data))
        super().acknowledge_pings(data)


@dataclass
class _Client:
    ws: _Connection
    appkey: str | None = None
    subs: list[tuple[str, str]] = field(default_factory=list)
    last_ping: bytes | None = None
    last_ping_at: float = 0.0


@dataclass
class FakeRealtime:
    """State and behaviour of the fake realtime service."""

    accounts: dict[str, str] = field(default_factory=lambda: {DEMO_APPKEY: DEMO_APPSECRET})
    cap: int = 41
    rate: float = 200.0
    records_per_frame: int = 1
    ping_interval: float = 10.0
    pong_timeout: float | None = None
    extra_trade_field: bool = False
    seed: int = 11

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.approvals: dict[str, str] = {}     # approval key -> appkey
        self.tickers: dict[str, _Ticker] = {}
        self.clients: list[_Client] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.sent_by_tr: dict[str, int] = defaultdict(int)

    # ---------------------------------------------------------------- REST side
    def approve(self, body: dict) -> tuple[int, dict]:
        appkey, secret = str(body.get("appkey", "")), str(body.get("secretkey", ""))
        if appkey not in self.accounts:
            return 403, {"error_description": "유효하지 않은 AppKey입니다.", "error_code": "EGW00103"}
        if self.accounts[appkey] != secret:
            return 403, {"error_description": "유효하지 않은 AppSecret입니다.", "error_code": "EGW00105"}
        key = str(uuid.uuid4())
        self.approvals[key] = appkey
        self.counts["approvals"] += 1
        return 200, {"approval_key": key}

    def stats(self) -> dict:
        return {**self.counts, "sent_by_tr": dict(self.sent_by_tr), "connections_open": len(self.clients),
                "rate": self.rate, "records_per_frame": self.records_per_frame, "cap": self.cap}

    async def drop(self, abrupt: bool = True) -> int:
        """End every open connection (abruptly: TCP abort, seen as close code 1006)."""
        clients = list(self.clients)
        for client in clients:
            self.counts["drops"] += 1
            if abrupt:
                client.ws.transport.abort()
            else:
                await client.ws.close(1001, "going away")
        return len(clients)

    # ---------------------------------------------------------------- records
    def _ticker(self, code: str) -> _Ticker:
        if code not in self.tickers:
            self.tickers[code] = _Ticker.create(code)
        return self.tickers[code]

    def trade_record(self, code: str, now: dt.datetime) -> str:
        s = self._ticker(code)
        before = s.volume
        s.trade(self.rng)
        vol = s.volume - before
        change = s.price - s.base
        sign = "3" if change == 0 else ("2" if change > 0 else "5")
        rate = f"{change * 100 / s.base:.2f}"
        tick = tick_size(s.price)
        hhmmss, day = now.strftime("%H%M%S"), now.strftime("%Y%m%d")
        fields = [code, hhmmss, str(s.price), sign, str(change), rate, f"{s.value / max(s.volume, 1):.2f}",
                  str(s.open), str(s.high), str(s.low), str(s.price + tick), str(s.price), str(vol), str(s.volume),
                  str(s.value), "10", "12", "2", "105.30", "5000", "5265", self.rng.choice("15"), "51.30", "20.28",
                  "090000", "2", "0", "090000", "2", "0", "090000", "2", "0", day, "20", "N", "1200", "3400",
                  "500000", "700000", "0.05", "100000", "125.92", "0", "", str(s.base)]
        if self.extra_trade_field:
            fields.append("2")
        return "^".join(fields)

    def book_record(self, code: str, now: dt.datetime, tr_id: str) -> str:
        s = self._ticker(code)
        tick = tick_size(s.price)
        asks = [str(s.price + tick * i) for i in range(1, 11)]
        bids = [str(max(0, s.price - tick * i)) for i in range(0, 10)]
        ask_q = [str(self.rng.randint(1, 5000) * 10) for _ in range(10)]
        bid_q = [str(self.rng.randint(1, 5000) * 10) for _ in range(10)]
        fields = [code, now.strftime("%H%M%S"), "0", *asks, *bids, *ask_q, *bid_q,
                  str(sum(map(int, ask_q))), str(sum(map(int, bid_q))), "0", "0", "0", "0", "0", "0", "3", "0.00",
                  str(s.volume), "0", "0", "0", "0", "0"]
        if tr_id == "H0UNASP0":
            fields += [str(s.price), "0", "0", str(s.price), "0", "0"]
        return "^".join(fields)

    # ---------------------------------------------------------------- WebSocket side
    async def handle(self, ws: _Connection) -> None:
        client = _Client(ws)
        self.clients.append(client)
        self.counts["connections"] += 1
        pusher = asyncio.create_task(self._push(client))
        pinger = asyncio.create_task(self._ping(client))
        try:
            async for raw in ws:
                await self._on_message(client, raw)
        except Exception:  # the connection ended (dropped, closed); the fake doesn't care how
            pass
        finally:
            pusher.cancel()
            pinger.cancel()
            await asyncio.gather(pusher, pinger, return_exceptions=True)
            self.clients.remove(client)

    @staticmethod
    def _answer(tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str, output: bool = False) -> str:
        body = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
        if output:
            body["output"] = {"iv": secrets.token_hex(8), "key": secrets.token_hex(16)}
        return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})

    async def _on_message(self, client: _Client, raw) -> None:
        ws = client.ws
        try:
            message = json.loads(raw)
            header, body = message["header"], message["body"]["input"]
            key, tr_type = header["approval_key"], str(header["tr_type"])
            tr_id, tr_key = str(body["tr_id"]), str(body["tr_key"])
        except (ValueError, KeyError, TypeError):
            self.counts["malformed"] += 1
            await ws.send(self._answer("", "", "9", "", "JSON PARSING ERROR : header not found"))
            return
        appkey = self.approvals.get(key)
        if appkey is None:
            self.counts["invalid_approval"] += 1
            await ws.send(self._answer(tr_id, tr_key, "1", "OPSP0011", f"invalid approval : {key}"))
            return
        if client.appkey is None:
            if any(c.appkey == appkey for c in self.clients if c is not client):
                self.counts["appkey_in_use"] += 1
                await ws.send(json.dumps({"header": {"tr_id": "(null)", "tr_key": "", "encrypt": "N"},
                                          "body": {"rt_cd": "9", "msg_cd": "OPSP8996",
                                                   "msg1": "ALREADY IN USE appkey"}}))
                await ws.close()
                return
            client.appkey = appkey
        if tr_id not in FIELD_COUNTS or not tr_key or tr_type not in ("1", "2"):
            self.counts["malformed"] += 1
            await ws.send(self._answer(tr_id, tr_key, "9", "", "JSON PARSING ERROR : invalid tr_key"))
            return
        registration = (tr_id, tr_key)
        if tr_type == "1":
            self.counts["subscribe_requests"] += 1
            if registration in client.subs:
                await ws.send(self._answer(tr_id, tr_key, "1", "OPSP0002", "ALREADY IN SUBSCRIBE"))
            elif len(client.subs) >= self.cap:
                self.counts["refused_cap"] += 1
                await ws.send(self._answer(tr_id, tr_key, "1", "OPSP0008", "MAX SUBSCRIBE OVER"))
            else:
                client.subs.append(registration)
                self.counts["subscribed"] += 1
                await ws.send(self._answer(tr_id, tr_key, "0", "OPSP0000", "SUBSCRIBE SUCCESS", output=True))
        else:
            if registration in client.subs:
                client.subs.remove(registration)
                self.counts["unsubscribed"] += 1
                await ws.send(self._answer(tr_id, tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS", output=True))
            else:
                await ws.send(self._answer(tr_id, tr_key, "1", "OPSP0003", "UNSUBSCRIBE ERROR(not found!)"))

    async def _ping(self, client: _Client) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if (self.pong_timeout is not None and client.last_ping is not None
                    and client.last_ping not in client.ws.pongs
                    and time.monotonic() - client.last_ping_at > self.pong_timeout):
                self.counts["dropped_no_pong"] += 1
                client.ws.transport.abort()
                return
            text = json.dumps({"header": {"tr_id": "PINGPONG", "datetime": dt.datetime.now(KST).strftime("%Y%m%d%H%M%S")}})
            if client.last_ping is None or client.last_ping in client.ws.pongs:
                client.last_ping, client.last_ping_at = text.encode(), time.monotonic()
            await client.ws.send(text)
            self.counts["pings_sent"] += 1
            await asyncio.sleep(0)
            self.counts["pongs_received"] = sum(len(c.ws.pongs) for c in self.clients)

    async def _push(self, client: _Client) -> None:
        started = time.monotonic()
        sent = 0
        turn = 0
        while True:
            await asyncio.sleep(0.005)
            subs = list(client.subs)
            if not subs or self.rate <= 0:
                started, sent = time.monotonic(), 0
                continue
            due = int((time.monotonic() - started) * self.rate) - sent
            if due > 5 * self.rate:  # fell far behind (paused): don't burst
                started, sent, due = time.monotonic(), 0, 0
            now = dt.datetime.now(KST)
            while due > 0:
                take = min(due, max(1, self.records_per_frame))
                by_tr: dict[str, list[str]] = {}
                for _ in range(take):
                    tr_id, code = subs[turn % len(subs)]
                    turn += 1
                    record = (self.trade_record(code, now) if tr_id in TRADE_TRS
                              else self.book_record(code, now, tr_id))
                    by_tr.setdefault(tr_id, []).append(record)
                for tr_id, records in by_tr.items():
                    await client.ws.send(f"0|{tr_id}|{len(records):03d}|{'^'.join(records)}")
                    self.counts["frames_sent"] += 1
                    self.counts["records_sent"] += len(records)
                    self.counts["trades_sent" if tr_id in TRADE_TRS else "books_sent"] += len(records)
                    self.sent_by_tr[tr_id] += len(records)
                due -= take
                sent += take


def make_app(rest: FakeKis, realtime: FakeRealtime) -> web.Application:
    """The REST fake's application plus ``/oauth2/Approval`` and the ``/_fake_ws/*`` controls."""
    app = make_rest_app(rest)

    async def approval(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error_description": "잘못된 요청입니다.", "error_code": "EGW00132"}, status=403)
        status, payload = realtime.approve(body)
        return web.json_response(payload, status=status)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(realtime.stats())

    async def config(request: web.Request) -> web.Response:
        body = await request.json()
        for name, kind in (("rate", float), ("records_per_frame", int), ("cap", int), ("ping_interval", float),
                           ("extra_trade_field", bool)):
            if name in body:
                setattr(realtime, name, kind(body[name]))
        if "pong_timeout" in body:
            realtime.pong_timeout = None if body["pong_timeout"] is None else float(body["pong_timeout"])
        return web.json_response(realtime.stats())

    async def drop(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        return web.json_response({"dropped": await realtime.drop(bool(body.get("abrupt", True)))})

    app.router.add_post("/oauth2/Approval", approval)
    app.router.add_get("/_fake_ws/stats", stats)
    app.router.add_post("/_fake_ws/config", config)
    app.router.add_post("/_fake_ws/drop", drop)
    return app


async def start(rest: FakeKis, realtime: FakeRealtime, host: str = "127.0.0.1", rest_port: int = 0,
                ws_port: int = 0):
    """Start both servers in the running loop; returns (runner, ws server, rest url, ws url)."""
    runner, rest_url = await serve_app(make_app(rest, realtime), host, rest_port)
    ws_port = ws_port or free_port(host)
    server = await serve(realtime.handle, host, ws_port, create_connection=_Connection, ping_interval=None,
                         compression=None, max_queue=None)
    return runner, server, rest_url, f"ws://{host}:{ws_port}"


class FakeRealtimeThread(BackgroundServer):
    """Serve the REST fake + the realtime fake from a background thread (tests)::

        with FakeRealtimeThread(FakeRealtime(rate=500)) as srv:
            srv.connection_json(), srv.realtime.stats(), srv.call(srv.realtime.drop())
    """

    thread_name = "fake-kis-ws"

    def __init__(self, realtime: FakeRealtime | None = None, rest: FakeKis | None = None) -> None:
        super().__init__()
        self.realtime = realtime or FakeRealtime()
        self.rest = rest or FakeKis(rate=18)
        self.url = self.ws_url = ""

    async def start_serving(self):
        runner, server, self.url, self.ws_url = await start(self.rest, self.realtime)

        async def stop() -> None:
            server.close()
            await server.wait_closed()
            await runner.cleanup()

        return stop

    def connection_json(self, appkey: str = DEMO_APPKEY, appsecret: str = DEMO_APPSECRET, **extra) -> str:
        return connection_json(self.url, appkey, appsecret, env=self.rest.env, ws_url=self.ws_url, **extra)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake KIS realtime WebSocket + REST (loopback only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rest-port", type=int, default=18081)
    parser.add_argument("--ws-port", type=int, default=18082)
    parser.add_argument("--records-rate", type=float, default=200.0, help="realtime records per second per connection")
    parser.add_argument("--records-per-frame", type=int, default=1)
    parser.add_argument("--cap", type=int, default=41)
    parser.add_argument("--ping-interval", type=float, default=10.0)
    add_gateway_arguments(parser)  # the REST gateway's: --env, --rate (REST), --appkey, --sample, …
    args = parser.parse_args(argv)
    rest = gateway_of(args)
    realtime = FakeRealtime(rate=args.records_rate, records_per_frame=args.records_per_frame, cap=args.cap,
                            ping_interval=args.ping_interval, accounts=dict(rest.accounts))

    async def run() -> None:
        await start(rest, realtime, args.host, args.rest_port, args.ws_port)
        print(f"fake KIS realtime on ws://{args.host}:{args.ws_port}, REST http://{args.host}:{args.rest_port}",
              flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
