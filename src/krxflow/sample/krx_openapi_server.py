"""A strict fake of the official KRX Open API (``data-dbg.krx.co.kr/svc/apis/...``), for tests and sample mode.

It follows ``shared/reference/dart-krx-openapi-universes.md`` section 2:

* ``/svc/apis/sto/{api_id}`` with ``api_id`` ∈ ``stk_bydd_trd``, ``ksq_bydd_trd`` (daily trading of
  every KOSPI / KOSDAQ issue) and ``stk_isu_base_info``, ``ksq_isu_base_info`` (base information).
  Both ways KRX's clients call it are accepted: ``GET …/{api_id}.json?basDd=YYYYMMDD`` (krx-openapi)
  and ``POST …/{api_id}`` with the JSON body ``{"basDd": "YYYYMMDD"}`` (KRX's own sample).
* The ``AUTH_KEY`` header: missing or unknown → HTTP 403 (as KRX answers a wrong key); a key not
  approved for the service (주식) → HTTP 200 with ``respCode`` 401.
* Exactly one ``basDd`` (8 digits) per call, else HTTP 400 with a ``respCode``. ``strtDd``/``endDd``
  are ignored, as KRX ignores them.
* Replies ``{"OutBlock_1": [...]}``, every value a string without thousands separators, ``"-"`` for
  missing; a halted issue has open/high/low ``"0"`` and volume ``"0"``.
* Holidays, weekends, days before the market and **a day not yet published** answer an empty
  ``OutBlock_1``. A session is published at ``publish_hour`` KST on the next calendar day
  (``clock`` is the fake's notion of now: tests move it); :attr:`FakeKrxOpenApi.unpublished`
  holds sessions answered empty whatever the clock says.
* A per-key daily call count (the KST day of ``clock``): past ``daily_limit`` calls HTTP 429.

The rows come from the offline :class:`~krxflow.sample.market.SampleMarket`, the same market the
portal replay (``tests/fakes/krx_replay.py``) answers MDCSTAT01501 from, so both paths give the same rows.
Every request is in :attr:`FakeKrxOpenApi.log`.

    python -m krxflow.sample.krx_openapi_server --port 18090   # sample mode
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
from aiohttp import web

from krxflow.market_time import KST
from krxflow.sample.serving import FakeAppThread

__all__ = ["DEMO_KEY", "FakeKrxOpenApi", "FakeKrxOpenApiThread", "make_app"]

#: The key sample mode puts into the ``krx_openapi_default`` Connection's password.
DEMO_KEY = "FAKEKRXOPENAPIDEMOKEY0000000000000000000"
#: The services of the stock category (주식) and the market each lists.
STOCK_SERVICES = {"stk_bydd_trd": "KOSPI", "ksq_bydd_trd": "KOSDAQ",
                  "stk_isu_base_info": "KOSPI", "ksq_isu_base_info": "KOSDAQ"}
_PATH = re.compile(r"^/svc/apis/(?P<cat>[a-z]+)/(?P<api>[a-z_]+?)(?P<json>\.json)?$")
_DATE = re.compile(r"^\d{8}$")


def _n(value) -> str:
    """A KRX Open API number: plain digits (no separators), ``"-"`` when missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "-"
    return str(int(value))


def _rate(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.2f}"


@dataclass
class FakeKrxOpenApi:
    """State and behaviour of the fake: keys, approvals, clock, publication, the daily limit."""

    market: object = None
    #: key → the categories it is approved for (``sto`` = 주식).
    keys: dict[str, set[str]] = field(default_factory=lambda: {DEMO_KEY: {"sto", "idx", "etp"}})
    daily_limit: int = 10_000
    #: KST hour of the next calendar day from which a session is answered.
    publish_hour: int = 8
    #: What "now" is for publication and the daily count (tests move it).
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(KST))
    unpublished: set[dt.date] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.market is None:
            from krxflow.sample.market import SampleMarket

            self.market = SampleMarket()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.log: list[dict] = []
        self.calls: dict[tuple[str, dt.date], int] = defaultdict(int)

    # ---------------------------------------------------------------- domain
    def published(self, day: dt.date) -> bool:
        """Whether the session ``day`` can be answered now (from ``publish_hour`` KST the next day)."""
        if day in self.unpublished:
            return False
        ready = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(self.publish_hour), KST)
        return self.clock().astimezone(KST) >= ready

    def rows(self, api: str, day: dt.date) -> list[dict]:
        from krxflow.sample.sessions import session_index

        if session_index(day) < 0 or not self.published(day):
            return []
        frame = self.market.day(day)
        frame = frame[frame["market"] == STOCK_SERVICES[api]]
        basdd = day.strftime("%Y%m%d")
        if api.endswith("_isu_base_info"):
            return [{"ISU_CD": r.isin, "ISU_SRT_CD": r.ticker, "ISU_NM": r.name, "ISU_ABBRV": r.name,
                     "ISU_ENG_NM": f"SAMPLE {r.ticker}", "LIST_DD": "20100104", "MKT_TP_NM": r.market,
                     "SECUGRP_NM": "주권", "SECT_TP_NM": r.sector or "-", "KIND_STKCERT_TP_NM": "보통주",
                     "PARVAL": "500", "LIST_SHRS": _n(r.listed_shares)}
                    for r in frame.itertuples(index=False)]
        rows = []
        for r in frame.itertuples(index=False):
            halted = r.open is pd.NA
            rows.append({
                "BAS_DD": basdd, "ISU_CD": r.ticker, "ISU_NM": r.name, "MKT_NM": r.market,
                "SECT_TP_NM": r.sector or "-", "TDD_CLSPRC": _n(r.close), "CMPPREVDD_PRC": _n(r.close - r.base_price),
                "FLUC_RT": _rate(r.change_rate), "TDD_OPNPRC": "0" if halted else _n(r.open),
                "TDD_HGPRC": "0" if halted else _n(r.high), "TDD_LWPRC": "0" if halted else _n(r.low),
                "ACC_TRDVOL": _n(r.volume), "ACC_TRDVAL": _n(r.trading_value), "MKTCAP": _n(r.market_cap),
                "LIST_SHRS": _n(r.listed_shares)})
        return rows

    def count(self, key: str) -> int:
        """Calls ``key`` made on the fake's current KST day."""
        return self.calls[(key, self.clock().astimezone(KST).date())]

    def answer(self, method: str, path: str, query: dict, body: dict | None, key: str | None) -> tuple[int, dict]:
        """(HTTP status, JSON body) of one request; every request is logged."""
        with self._lock:
            entry = {"method": method, "path": path, "query": dict(query), "body": body, "key": key, "status": None}
            self.log.append(entry)
            status, payload = self._answer(method, path, query, body, key)
            entry["status"] = status
            return status, payload

    def _answer(self, method, path, query, body, key) -> tuple[int, dict]:
        if not key or key not in self.keys:
            return 403, {"respCode": "403", "respMsg": "Forbidden: unknown AUTH_KEY"}
        today = self.clock().astimezone(KST).date()
        if self.calls[(key, today)] >= self.daily_limit:
            return 429, {"respCode": "429", "respMsg": f"daily limit of {self.daily_limit} calls exceeded"}
        self.calls[(key, today)] += 1
        match = _PATH.match(path)
        if match is None or (method == "GET") != bool(match["json"]):
            return 404, {"respCode": "404", "respMsg": f"no such service: {method} {path}"}
        cat, api = match["cat"], match["api"]
        if cat != "sto" or api not in STOCK_SERVICES:
            return 404, {"respCode": "404", "respMsg": f"no such service: {path}"}
        if cat not in self.keys[key]:
            return 200, {"respCode": "401", "respMsg": "the key is not approved for this service"}
        dates = list(query.get("basDd", [])) + ([body["basDd"]] if isinstance(body, dict) and "basDd" in body else [])
        if len(dates) != 1 or not isinstance(dates[0], str) or not _DATE.match(dates[0]):
            return 400, {"respCode": "400", "respMsg": f"exactly one basDd=YYYYMMDD is required, got {dates!r}"}
        day = dt.datetime.strptime(dates[0], "%Y%m%d").date()
        return 200, {"OutBlock_1": self.rows(api, day)}


def make_app(fake: FakeKrxOpenApi) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = None
        if request.method == "POST":
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return web.json_response({"respCode": "400", "respMsg": "the body is not JSON"}, status=400)
        query = {k: request.query.getall(k) for k in set(request.query.keys())}
        status, payload = fake.answer(request.method, request.path, query, body, request.headers.get("AUTH_KEY"))
        return web.Response(status=status, text=json.dumps(payload, ensure_ascii=False),
                            content_type="application/json", charset="utf-8")

    app = web.Application()
    app.router.add_route("*", "/svc/apis/{tail:.*}", handle)
    return app


class FakeKrxOpenApiThread(FakeAppThread):
    """Serve a :class:`FakeKrxOpenApi` from a background thread (tests)::

        with FakeKrxOpenApiThread(FakeKrxOpenApi(market)) as server:
            server.url, server.fake.log
    """

    thread_name = "fake-krx-openapi"
    fake_class = FakeKrxOpenApi

    def app(self) -> web.Application:
        return make_app(self.fake)

    def connection_uri(self, key: str = DEMO_KEY) -> str:
        """An ``AIRFLOW_CONN_KRX_OPENAPI_DEFAULT`` value pointing at this server."""
        return connection_json(self.url, key)


def connection_json(url: str, key: str = DEMO_KEY) -> str:
    """The ``krx_openapi_default`` Connection (JSON form of AIRFLOW_CONN_*) for a server at ``url``."""
    return json.dumps({"conn_type": "http", "host": url, "password": key})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake KRX Open API (loopback only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--daily-limit", type=int, default=10_000)
    args = parser.parse_args(argv)
    fake = FakeKrxOpenApi(daily_limit=args.daily_limit)
    print(f"fake KRX Open API on http://{args.host}:{args.port}", flush=True)
    web.run_app(make_app(fake), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
