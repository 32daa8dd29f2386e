"""One KIS realtime WebSocket session: connect, register, answer PINGPONG, reconnect, resubscribe.

:class:`RealtimeSession` runs in the caller's event loop (the triggerer's) on the ``websockets``
client and never blocks it. Until its deadline it keeps one connection open to
``KisConfig.websocket_url`` (KIS allows one session per appkey):

* after connecting it sends one subscribe frame per registration (``tr_type`` ``"1"``), spaced
  ``send_interval`` apart as the official samples do, with the shared approval key
  (:class:`~krxflow.kis.approval.ApprovalKeyManager`);
* control frames: ``OPSP0000``/``OPSP0002`` count as registered; ``OPSP0008`` (over the cap)
  marks the registration refused; ``OPSP0011`` (approval key refused) drops the cached key and
  reconnects with a new one; ``OPSP8996`` (the appkey has another session) reconnects later;
  ``PINGPONG`` is answered with a pong frame carrying the same text (``await ws.pong(raw)``,
  like the official samples);
* data frames go to ``on_data(text)`` untouched (a synchronous callback; splitting and buffering
  are the trigger's);
* a dropped connection (close frame, reset, or nothing received for ``idle_timeout`` seconds)
  is reconnected after an exponential back-off with jitter (``backoff_base`` doubling up to
  ``backoff_cap``; reset once a connection delivered data), reusing the cached approval key, and
  every registration is sent again;
* at the deadline it reads on until the socket is quiet (at most ``in_flight_seconds``), closes,
  and returns — within a fixed bound after the deadline whatever it awaits (``overran``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

from krxflow.kis import realtime
from krxflow.kis.errors import KisConfigError

log = logging.getLogger(__name__)


@dataclass
class SessionStats:
    """What a session did (the trigger reports these per window)."""

    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    pingpongs: int = 0
    subscribe_sent: int = 0
    registered: int = 0
    refused: list[str] = field(default_factory=list)
    control_errors: int = 0
    approval_refused: int = 0
    appkey_in_use: int = 0
    overran: bool = False
    last_error: str | None = None

    def as_dict(self) -> dict:
        return {"connects": self.connects, "reconnects": self.reconnects, "frames": self.frames,
                "pingpongs": self.pingpongs, "subscribe_sent": self.subscribe_sent, "registered": self.registered,
                "refused": list(self.refused), "control_errors": self.control_errors,
                "approval_refused": self.approval_refused, "appkey_in_use": self.appkey_in_use,
                "overran": self.overran, "last_error": self.last_error}


class _Reconnect(Exception):
    """Leave the current connection and connect again (after the back-off)."""


class RealtimeSession:
    """Keep KIS's realtime push flowing until a deadline (see module doc).

    :param config: the KIS settings (``websocket_url``).
    :param approval: the shared approval-key manager.
    :param registrations: (tr_id, tr_key) pairs to register, at most the cap.
    :param on_data: called with every data frame's text.
    :param in_flight_seconds: at the deadline, read on for at most this long until the socket is quiet
        (what KIS sent before the deadline arrives within it; a continuous push is cut there).
    :param close_timeout: seconds the closing handshake may take before the socket is aborted.
    """

    #: After the deadline plus the in-flight read and the close, :meth:`run` returns whatever is awaited.
    OVERRUN_GRACE_SECONDS = 3.0

    def __init__(self, config, approval, registrations: list[tuple[str, str]], on_data, *,
                 send_interval: float = 0.05, idle_timeout: float = 60.0, backoff_base: float = 0.5,
                 backoff_cap: float = 30.0, open_timeout: float = 10.0, in_flight_seconds: float = 2.0,
                 close_timeout: float = 2.0) -> None:
        self.config = config
        self.approval = approval
        self.registrations = list(dict.fromkeys(registrations))
        self.on_data = on_data
        self.send_interval = send_interval
        self.idle_timeout = idle_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.open_timeout = open_timeout
        self.in_flight_seconds = in_flight_seconds
        self.close_timeout = close_timeout
        self.stats = SessionStats()
        self._registered: set[tuple[str, str]] = set()
        self._last_received = time.monotonic()

    async def run(self, deadline: float) -> None:
        """Stay connected and registered until ``time.monotonic()`` reaches ``deadline``.

        Returns by ``deadline`` + the in-flight read + the close + :attr:`OVERRUN_GRACE_SECONDS` even if
        something it awaits never completes (a stalled socket, a peer that never closes): the window is
        over then, so whatever is left is cancelled, counted as ``overran`` and logged.
        """
        bound = self.in_flight_seconds + self.close_timeout + self.OVERRUN_GRACE_SECONDS
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic()) + bound):
                await self._run(deadline)
        except TimeoutError:
            self.stats.overran = True
            log.warning("KIS realtime: the session was still busy %.1fs after the window's end; cancelled it",
                        bound)

    async def _run(self, deadline: float) -> None:
        attempt = 0
        while time.monotonic() < deadline:
            delivered = False
            try:
                delivered = await self._connection(deadline)
            except KisConfigError:  # bad appkey/secret: no reconnect can fix it
                raise
            except _Reconnect as exc:
                self.stats.last_error = str(exc)
            except (OSError, asyncio.TimeoutError) as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("KIS realtime: connection to %s failed: %s", self.config.websocket_url, exc)
            except Exception as exc:  # websockets.ConnectionClosed, InvalidHandshake, …
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("KIS realtime: connection lost: %r", exc)
            if time.monotonic() >= deadline:
                break
            attempt = 1 if delivered else attempt + 1
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)) * (0.75 + random.random() / 2)
            self.stats.reconnects += 1
            log.warning("KIS realtime: reconnecting in %.2fs (reconnect %d, %d/%d registered before)", delay,
                        self.stats.reconnects, len(self._registered), len(self.registrations))
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))

    async def _connection(self, deadline: float) -> bool:
        """One connection's life; True if it delivered data frames. Returns at the deadline."""
        from websockets.asyncio.client import connect

        key = await self.approval.get()
        frames_before = self.stats.frames
        async with connect(self.config.websocket_url, open_timeout=self.open_timeout, ping_interval=None,
                           close_timeout=self.close_timeout, max_size=2 ** 22, max_queue=4096, compression=None) as ws:
            self.stats.connects += 1
            self._registered.clear()
            self._last_received = time.monotonic()
            reader = asyncio.create_task(self._read(ws))
            try:
                for tr_id, tr_key in self.registrations:
                    if reader.done():
                        break
                    await ws.send(realtime.subscription_message(key, tr_id, tr_key))
                    self.stats.subscribe_sent += 1
                    if self.send_interval:
                        await asyncio.sleep(self.send_interval)
                while not reader.done():
                    now = time.monotonic()
                    if now >= deadline:
                        await self._read_what_is_in_flight(reader, limit=self.in_flight_seconds)
                        break
                    if now - self._last_received > self.idle_timeout:
                        raise _Reconnect(f"nothing received for {self.idle_timeout:.0f}s")
                    await asyncio.wait({reader}, timeout=min(1.0, deadline - now))
                if reader.done():
                    reader.result()  # raises what ended the connection
                    raise _Reconnect("the server closed the connection")
            finally:
                if not reader.done():
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
        return self.stats.frames > frames_before

    async def _read_what_is_in_flight(self, reader, limit: float, quiet: float = 0.5) -> None:
        """At the deadline, keep reading until the socket is quiet: frames KIS already sent are not dropped."""
        stop = time.monotonic() + limit
        while not reader.done() and time.monotonic() < stop and time.monotonic() - self._last_received < quiet:
            await asyncio.wait({reader}, timeout=quiet / 2)

    async def _read(self, ws) -> None:
        async for raw in ws:
            self._last_received = time.monotonic()
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", "replace")
            if raw[:1] in ("0", "1"):
                self.stats.frames += 1
                self.on_data(raw)
                continue
            try:
                control = realtime.parse_control(raw)
            except ValueError:
                self.stats.control_errors += 1
                log.warning("KIS realtime: unreadable control frame %r", raw[:200])
                continue
            if control.is_pingpong:
                self.stats.pingpongs += 1
                await ws.pong(raw)
                continue
            await self._control(control)

    async def _control(self, control: realtime.Control) -> None:
        registration = (control.tr_id, control.tr_key)
        if control.msg_cd in (realtime.SUBSCRIBED, realtime.ALREADY_SUBSCRIBED):
            if registration not in self._registered:
                self._registered.add(registration)
            self.stats.registered = len(self._registered)
        elif control.msg_cd == realtime.CAP_REACHED:
            name = f"{control.tr_id}:{control.tr_key}"
            if name not in self.stats.refused:
                self.stats.refused.append(name)
            log.warning("KIS realtime: %s refused, over the registration cap (%s)", name, control.msg1)
        elif control.msg_cd == realtime.INVALID_APPROVAL:
            self.stats.approval_refused += 1
            token = self.approval._token
            if token:
                await self.approval.invalidate(token)
            raise _Reconnect(f"approval key refused: {control.msg1}")
        elif control.msg_cd == realtime.APPKEY_IN_USE:
            self.stats.appkey_in_use += 1
            raise _Reconnect("the appkey has another realtime session (OPSP8996)")
        elif control.msg_cd == realtime.UNSUBSCRIBED:
            self._registered.discard(registration)
        elif not control.ok:
            self.stats.control_errors += 1
            log.warning("KIS realtime: %s %s answered %s %s", control.tr_id, control.tr_key, control.msg_cd,
                        control.msg1)

    @property
    def registered(self) -> set[tuple[str, str]]:
        return set(self._registered)
