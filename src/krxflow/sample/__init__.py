"""Sample mode's stand-ins: the offline sample market and the local fake KIS servers.

* :mod:`~krxflow.sample.market` (with :mod:`~krxflow.sample.market_reports` and
  :mod:`~krxflow.sample.sessions`) — a deterministic offline KRX market behind
  :class:`~krxflow.krx.interface.KrxSource`, used when no KRX login is given;
* :mod:`~krxflow.sample.kis_server`, :mod:`~krxflow.sample.kis_ws_server` — the fake KIS REST gateway
  and realtime WebSocket; ``make run`` and the compose ``sample`` profile run them when no KIS keys
  are given; the tests and the bench drive the same servers in-process or as processes.
"""
