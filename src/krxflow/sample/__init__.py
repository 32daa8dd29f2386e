"""Sample mode's local stand-ins for KIS: the fake REST gateway and the fake realtime WebSocket.

``make run`` and the compose ``sample`` profile run :mod:`krxflow.sample.kis_server` when no KIS keys
are given; the tests and the bench drive the same servers in-process or as processes.
"""
