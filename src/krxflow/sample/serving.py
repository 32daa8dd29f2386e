"""Running a fake server: a free loopback port, and a server on an event loop of its own in a thread.

The fake REST gateways (:class:`FakeAppThread`: KIS, OpenDART, the KRX Open API) and the fake
realtime service (:class:`~krxflow.sample.kis_ws_server.FakeRealtimeThread`) are served the same
way in tests: started on a daemon thread's loop, the test talking to them over loopback and reading or
changing their state directly, stopped on leaving the ``with`` block.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Awaitable, Callable

from aiohttp import web


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def serve_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (0: a free port) in the running loop; returns the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port(host)
    await web.TCPSite(runner, host, port).start()
    return runner, f"http://{host}:{port}"


class BackgroundServer:
    """A context manager serving from a background thread with its own event loop.

    Subclasses start their servers in :meth:`start_serving` (run in that loop) and return the
    coroutine function that stops them.
    """

    #: The thread's name.
    thread_name = "fake-server"

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start_serving(self) -> Callable[[], Awaitable[None]]:
        """Start serving in the running loop; returns what stops it."""
        raise NotImplementedError

    def __enter__(self):
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            asyncio.set_event_loop(loop)
            try:
                stop = loop.run_until_complete(self.start_serving())
            except BaseException as exc:  # report to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(stop())
                loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def __exit__(self, *exc_info) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def call(self, coroutine, timeout: float = 10.0):
        """Run ``coroutine`` in the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class FakeAppThread(BackgroundServer):
    """A fake service's aiohttp application served from a background thread on a loopback port.

    Subclasses name the fake's class (``fake_class``, built with no arguments when none is given)
    and build its application in :meth:`app`; ``url`` is the base URL once started.
    """

    fake_class: type

    def __init__(self, fake=None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.fake = fake if fake is not None else self.fake_class()
        self.host, self.port = host, port
        self.url = ""

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start_serving(self):
        runner, self.url = await serve_app(self.app(), self.host, self.port)
        return runner.cleanup
