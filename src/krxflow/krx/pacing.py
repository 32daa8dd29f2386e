"""The gate every request to KRX and Naver passes, shared by all workers through Redis.

KRX blocks IPs that query "in bulk" for a day or more, and requests sent during a block extend
it. Three rules keep krxflow polite, and they hold across every Airflow worker and process
because they live in Redis, decided by one atomic script **immediately before each send**:

* **Circuit breaker**: a block (HTTP 403, an HTML page where data was expected) opens the circuit
  — a Redis key with a TTL (default 24 h, ``KRXFLOW_KRX_BLOCK_TTL``). While it exists nothing is
  sent: tasks fail at once with :class:`~krxflow.krx.errors.KrxCircuitOpenError` saying why and
  until when. An operator closes it early with ``redis-cli DEL <key>`` (the error names the key).
* **One request in flight** per service: the next request is sent only after the previous one's
  answer was read and classified, so at most one request ever goes into a block.
* **Minimum interval** (default 1 s, ``KRXFLOW_KRX_MIN_INTERVAL`` env or Airflow Variable),
  counted from the moment the previous request's *answer* was read (Redis' clock): KRX received
  that request before it answered, so no two requests ever reach KRX closer than the interval,
  whatever the network or a loaded machine does between krxflow's send and KRX's receipt.

The ``krx_api`` Pool (:data:`KRX_POOL`, :data:`KRX_POOL_SLOTS` slots) bounds how many tasks hold a
KRX conversation at once; the gate is what actually spaces their requests.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from typing import Iterator

from krxflow import redis_client
from krxflow.krx.errors import KrxCircuitOpenError
from krxflow.settings import number_setting

log = logging.getLogger(__name__)

#: The Airflow Pool every task that calls KRX runs in.
KRX_POOL = "krx_api"
#: Default slots of :data:`KRX_POOL` (KRX tolerates about one request per second per IP).
KRX_POOL_SLOTS = 2
KRX_POOL_DESCRIPTION = "Tasks calling KRX/Naver through pykrx (krxflow); paced to ~1 request/s per IP."
#: Default minimum seconds between two requests to one service, over all workers.
DEFAULT_MIN_INTERVAL = 1.0
#: Default seconds the circuit stays open after a block.
DEFAULT_BLOCK_TTL = 24 * 3600
#: Longest sleep between two looks at the gate while another request is in flight.
_POLL = 0.025

# KEYS: circuit, last answer, in-flight marker. ARGV: token, interval ms, in-flight TTL ms.
# Returns -1 while the circuit is open, -2 while another request is in flight, >0 = milliseconds
# until the interval since the last answer has passed, 0 = this caller may send now (marker set).
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local wait = last + tonumber(ARGV[2]) - now
if wait > 0 then return wait end
redis.call('SET', KEYS[3], ARGV[1], 'PX', tonumber(ARGV[3]))
return 0
"""

# KEYS: last answer, in-flight marker. ARGV: token, interval ms. The owner of the marker records
# when its answer was read (Redis' clock) and lets the next request go.
_RELEASE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], now, 'PX', tonumber(ARGV[2]) + 60000)
return redis.call('DEL', KEYS[2])
"""

# Delete KEYS[1] only if it still holds ARGV[1] (a lock or marker released by its owner only).
COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_TAKE_FROM_BUDGET = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return -1 end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return used
"""


def take_from_daily_budget(redis, key: str, budget: int, ttl_seconds: int) -> int:
    """Count one request against ``budget`` in the Redis counter ``key`` (a day's, shared by every
    worker), atomically: the new count, or -1 with nothing counted when the budget is spent."""
    return int(redis.register_script(_TAKE_FROM_BUDGET)(keys=[key], args=[int(budget), int(ttl_seconds)]))


def min_interval() -> float:
    return number_setting("KRXFLOW_KRX_MIN_INTERVAL", DEFAULT_MIN_INTERVAL)


def block_ttl() -> int:
    return int(number_setting("KRXFLOW_KRX_BLOCK_TTL", DEFAULT_BLOCK_TTL))


def circuit_key(service: str, namespace: str = "krx") -> str:
    return redis_client.key(namespace, "circuit", service)


def last_answer_key(service: str, namespace: str = "krx") -> str:
    return redis_client.key(namespace, "last_answer", service)


def in_flight_key(service: str, namespace: str = "krx") -> str:
    return redis_client.key(namespace, "in_flight", service)


class Pacer:
    """The shared gate of one service (``"krx"`` or ``"naver"``): circuit, one in flight, interval.

    :param interval: minimum seconds from one answer to the next send (default :func:`min_interval`);
        0 keeps the circuit check and the one-in-flight rule but no spacing (tests, the offline bench).
    :param in_flight_ttl: seconds after which a request's in-flight marker expires if its process
        died before reading the answer (the request timeout plus a margin).
    :param namespace: the first part of the gate's Redis keys (``krx``; OpenDART's gate, in
        :mod:`krxflow.dart.gate`, uses ``dart`` so that the two never share a key).
    :param circuit_error: the exception raised while the circuit is open.
    """

    def __init__(self, service: str, redis_client=None, interval: float | None = None, *,
                 in_flight_ttl: float = 60.0, namespace: str = "krx",
                 circuit_error: type[Exception] = KrxCircuitOpenError):
        self.service = service
        self.namespace = namespace
        self.circuit_error = circuit_error
        self._redis = redis_client
        self.interval = min_interval() if interval is None else float(interval)
        self.in_flight_ttl = in_flight_ttl
        self._claim = self._release = None

    @property
    def redis(self):
        if self._redis is None:
            self._redis = redis_client.client()
        return self._redis

    def check_circuit(self) -> None:
        """Raise :class:`KrxCircuitOpenError` while the circuit of this service is open."""
        key = circuit_key(self.service, self.namespace)
        raw = self.redis.get(key)
        if raw is None:
            return
        raise self._circuit_error(raw, self.redis.ttl(key))

    def _circuit_error(self, raw: str | None, ttl: int) -> Exception:
        key = circuit_key(self.service, self.namespace)
        try:
            info = json.loads(raw) if raw else {}
        except ValueError:
            info = {"reason": raw}
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + max(ttl, 0)))
        return self.circuit_error(
            f"{self.service} circuit is OPEN: {self.service} refused us ({info.get('reason')}, at "
            f"{info.get('opened_at')}). Nothing is sent to {self.service} until {until} (TTL {ttl}s). "
            f"Not retrying on purpose: requests during a block extend it. "
            f"Close it early only once the block is lifted: redis-cli DEL {key}")

    def open_circuit(self, reason: str, ttl: int | None = None) -> None:
        ttl = block_ttl() if ttl is None else ttl
        payload = json.dumps({"reason": reason, "opened_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self.redis.set(circuit_key(self.service, self.namespace), payload, ex=max(int(ttl), 1))
        log.error("%s circuit opened for %ss: %s", self.service, ttl, reason)

    @contextlib.contextmanager
    def turn(self) -> Iterator[float]:
        """Wait for this process's turn to send one request; yields the seconds waited.

        On entry the circuit is checked and the turn taken in one atomic step, so nothing is sent
        into an open circuit. The turn lasts until the block exits: send the request, read its
        answer and open the circuit if it was a block *inside* it; the exit records when the
        answer was read, and only an interval later may the next request — of any process — go out.
        """
        token = uuid.uuid4().hex
        interval_ms = int(round(self.interval * 1000))
        keys = tuple(f(self.service, self.namespace) for f in (circuit_key, last_answer_key, in_flight_key))
        if self._claim is None:
            self._claim = self.redis.register_script(_CLAIM)
            self._release = self.redis.register_script(_RELEASE)
        started = time.monotonic()
        while True:
            answer = int(self._claim(keys=keys, args=(token, interval_ms, int(self.in_flight_ttl * 1000))))
            if answer == 0:
                break
            if answer == -1:
                self.check_circuit()  # raises with the reason and TTL (unless closed meanwhile)
                continue
            time.sleep(_POLL if answer == -2 else answer / 1000)
        try:
            yield time.monotonic() - started
        finally:
            self._release(keys=keys[1:], args=(token, interval_ms))
