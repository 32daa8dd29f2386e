"""The KIS client's settings, read from the ``kis_default`` Connection by :class:`~krxflow.hooks.kis.KisHook`.

* ``host`` — the REST base URL (``https://openapi.koreainvestment.com:9443`` live,
  ``https://openapivts.koreainvestment.com:29443`` paper; the fake server's URL in tests/demo).
  Empty means the official URL of ``env``.
* ``login`` / ``password`` — appkey / appsecret.
* extras: ``env`` (``live`` | ``paper``, default live), ``rate`` (requests per second for this
  appkey; default 18 live, 1 paper — KIS's 2026-04 limits), ``rate_margin`` (fraction kept below
  the limit so network jitter never pushes the gateway's one-second window over it; default
  0.05), ``token_interval`` (seconds between token issuances, default 60 like KIS),
  ``timeout`` (seconds per HTTP call, default 10), ``market`` (``J`` KRX | ``NX`` | ``UN``),
  ``ws_url`` (the realtime WebSocket, default ``ws://ops.koreainvestment.com:21000`` live,
  ``:31000`` paper — official samples use plain ``ws://``; the fake server's in tests).

The config is a plain dataclass so a trigger can rebuild it from its serialized kwargs without a
database round trip, and the appsecret never appears in ``repr``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


LIVE_URL = "https://openapi.koreainvestment.com:9443"
PAPER_URL = "https://openapivts.koreainvestment.com:29443"
DEFAULT_RATE = {"live": 18, "paper": 1}
WS_URL = {"live": "ws://ops.koreainvestment.com:21000", "paper": "ws://ops.koreainvestment.com:31000"}


@dataclass(frozen=True)
class KisConfig:
    base_url: str
    appkey: str
    appsecret: str = field(repr=False)
    env: str = "live"
    rate: float = 18
    rate_margin: float = 0.05
    token_interval: float = 60.0
    timeout: float = 10.0
    market: str = "J"
    ws_url: str = ""

    def __post_init__(self) -> None:
        if self.env not in ("live", "paper"):
            raise ValueError(f"KIS env must be 'live' or 'paper', not {self.env!r}")
        if not self.appkey or not self.appsecret:
            raise ValueError("the KIS Connection needs login (appkey) and password (appsecret)")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"the KIS Connection's host must be a base URL (http[s]://…), not {self.base_url!r}")
        if self.rate <= 0:
            raise ValueError("the KIS rate must be positive")
        if not 0 <= self.rate_margin < 0.5:
            raise ValueError("rate_margin must be within [0, 0.5)")

    @property
    def websocket_url(self) -> str:
        """The realtime WebSocket's URL (``ws_url``, else the official one of ``env``)."""
        return (self.ws_url or WS_URL[self.env]).rstrip("/")

    @property
    def key_id(self) -> str:
        """A short, stable, non-secret name of the appkey for Redis keys and logs."""
        return f"{self.env}-{hashlib.sha256(self.appkey.encode()).hexdigest()[:16]}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_connection(cls, conn, **overrides) -> "KisConfig":
        """Build from an Airflow Connection object (sdk or core)."""
        return cls.from_parts(conn.host, conn.port, conn.login, conn.password, conn.extra_dejson or {}, overrides,
                              conn_type=getattr(conn, "conn_type", None))

    @classmethod
    def from_parts(cls, host, port, login, password, extra: dict, overrides: dict,
                    conn_type=None) -> "KisConfig":
        env = str(extra.get("env", "live")).lower()
        base_url = (host or "").strip()
        if base_url and "://" not in base_url:
            scheme = conn_type.lower() if (conn_type or "").lower() in ("http", "https") else "https"
            base_url = f"{scheme}://{base_url}{f':{port}' if port else ''}"
        elif base_url and port and base_url.count(":") < 2:
            base_url = f"{base_url}:{port}"
        base_url = base_url.rstrip("/") or (LIVE_URL if env == "live" else PAPER_URL)
        values = dict(base_url=base_url, appkey=login or "", appsecret=password or "", env=env,
                      rate=float(extra.get("rate", DEFAULT_RATE.get(env, 1))),
                      rate_margin=float(extra.get("rate_margin", 0.05)),
                      token_interval=float(extra.get("token_interval", 60)),
                      timeout=float(extra.get("timeout", 10)), market=str(extra.get("market", "J")),
                      ws_url=str(extra.get("ws_url", "") or ""))
        values.update(overrides)
        return cls(**values)
