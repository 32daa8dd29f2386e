"""The REST client `make run` and the end-to-end tests share (krxflow.stack.demo.AirflowApi): a GET
the api-server answers late is asked again within the caller's deadline; nothing else is hidden.

Against a scripted HTTP server on loopback. Every case counts the requests the server saw; the
late answer is held until the client's next attempt arrives, so the first attempt can only end by
the client's read timeout, however loaded the machine is.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from krxflow.stack.demo import AirflowApi


class ScriptedApi:
    """``/auth/token``, and under ``/api/v2``: ``/late`` (the first request is held until a second
    one arrives), ``/hang`` (held until the test ends), ``/broken`` (HTTP 500); PATCH holds too."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.second_arrived = threading.Event()
        self.released = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up on this attempt
                    pass

            def count(self) -> int:
                key = f"{self.command} {self.path.split('?')[0]}"
                api.seen[key] = api.seen.get(key, 0) + 1
                return api.seen[key]

            def do_POST(self):
                self.count()
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.answer(200, {"access_token": "t"})

            def do_GET(self):
                n = self.count()
                if self.path.startswith("/api/v2/late"):
                    if n == 1:
                        api.second_arrived.wait(30)
                    else:
                        api.second_arrived.set()
                    self.answer(200, {"attempt": n})
                elif self.path.startswith("/api/v2/hang"):
                    api.released.wait(30)
                    self.answer(200, {})
                else:
                    self.answer(500, {"detail": "boom"})

            def do_PATCH(self):
                self.count()
                api.released.wait(30)
                self.answer(200, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.second_arrived.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    server = ScriptedApi()
    yield server
    server.close()


def test_a_get_answered_late_is_asked_again(scripted):
    api = AirflowApi(scripted.url, "admin", "pw", read_timeout=0.5)
    try:
        assert api.get("/late") == {"attempt": 2}  # the first attempt timed out, the second got the answer
    finally:
        api.close()
    assert scripted.seen == {"POST /auth/token": 1, "GET /api/v2/late": 2}


def test_a_get_that_never_answers_fails_at_the_callers_deadline(scripted):
    api = AirflowApi(scripted.url, "admin", "pw", read_timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=r"GET /api/v2/hang: no answer .* \([2-9] attempt\(s\)"):
            api.get("/hang", deadline=started + 3)
    finally:
        api.close()
    assert time.monotonic() - started < 60  # bounded by the deadline (a hang guard, not a timing)
    assert scripted.seen["GET /api/v2/hang"] >= 2


def test_an_error_answer_and_a_change_are_never_retried(scripted):
    api = AirflowApi(scripted.url, "admin", "pw", read_timeout=0.5)
    try:
        with pytest.raises(RuntimeError, match="GET /broken -> 500"):
            api.get("/broken")
        # a PATCH that timed out may have been applied: sent once, the timeout raised
        with pytest.raises(TimeoutError, match=r"PATCH /api/v2/dags/x: no answer .* \(1 attempt\(s\)"):
            api.request("PATCH", "/dags/x", json={"is_paused": False})
    finally:
        api.close()
    assert scripted.seen["GET /api/v2/broken"] == 1 and scripted.seen["PATCH /api/v2/dags/x"] == 1
