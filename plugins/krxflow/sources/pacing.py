"""Pacing of KRX requests across every worker, and the circuit breaker that stops them all.

KRX blocks IPs that query "in bulk" for a day or more, and retrying during a block extends it.
Two mechanisms keep krxflow polite, both shared through Redis so that they hold across all
Airflow workers and processes:

* **Pool** ``krx_api`` (:data:`KRX_POOL`, :data:`KRX_POOL_SLOTS` slots): bounds how many tasks
  talk to KRX at once. The deployment creates it from these constants.
* **Minimum interval** between two requests to one service (default 1 s,
  ``KRXFLOW_KRX_MIN_INTERVAL`` env or Airflow Variable): every request reserves the next free
  slot atomically in Redis and sleeps until it.
* **Circuit breaker**: a block (403, HTML page) opens the circuit — a Redis key with a TTL
  (default 24 h, ``KRXFLOW_KRX_BLOCK_TTL``). While it exists no task calls the service; tasks
  fail at once with :class:`~krxflow.sources.errors.KrxCircuitOpenError` saying why and until
  when. An operator closes it early with ``redis-cli DEL <key>`` (the error names the key).
"""

from __future__ import annotations

import json
import logging
import os
import time

from krxflow import cache
from krxflow.sources.errors import KrxCircuitOpenError

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

# Atomically reserve the next request slot: returns how many milliseconds to wait.
_RESERVE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_free)
redis.call('SET', KEYS[1], slot + interval, 'PX', interval + 60000)
return slot - now
"""


def _setting(name: str, default: float) -> float:
    """A number from the environment, else an Airflow Variable, else ``default``."""
    raw = os.environ.get(name)
    if raw is None:
        try:
            from airflow.sdk import Variable

            raw = Variable.get(name, default=None)
        except Exception:  # outside a task (CLI, bench) there may be no Variable backend
            raw = None
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from exc


def min_interval() -> float:
    return _setting("KRXFLOW_KRX_MIN_INTERVAL", DEFAULT_MIN_INTERVAL)


def block_ttl() -> int:
    return int(_setting("KRXFLOW_KRX_BLOCK_TTL", DEFAULT_BLOCK_TTL))


def circuit_key(service: str) -> str:
    return cache.key("krx", "circuit", service)


def pace_key(service: str) -> str:
    return cache.key("krx", "pace", service)


class Pacer:
    """Shared pacing and circuit breaking for one service (``"krx"`` or ``"naver"``)."""

    def __init__(self, service: str, redis_client=None, interval: float | None = None):
        self.service = service
        self._redis = redis_client
        self.interval = min_interval() if interval is None else interval

    @property
    def redis(self):
        if self._redis is None:
            self._redis = cache.client()
        return self._redis

    def check_circuit(self) -> None:
        """Raise :class:`KrxCircuitOpenError` while the circuit of this service is open."""
        key = circuit_key(self.service)
        raw = self.redis.get(key)
        if raw is None:
            return
        ttl = self.redis.ttl(key)
        try:
            info = json.loads(raw)
        except ValueError:
            info = {"reason": raw}
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + max(ttl, 0)))
        raise KrxCircuitOpenError(
            f"{self.service} circuit is OPEN: {self.service} blocked us ({info.get('reason')}, at "
            f"{info.get('opened_at')}). No task calls {self.service} until {until} (TTL {ttl}s). "
            f"Not retrying on purpose: retrying during a block extends it. "
            f"Close it early only once the block is lifted: redis-cli DEL {key}")

    def open_circuit(self, reason: str, ttl: int | None = None) -> None:
        ttl = block_ttl() if ttl is None else ttl
        payload = json.dumps({"reason": reason, "opened_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self.redis.set(circuit_key(self.service), payload, ex=max(int(ttl), 1))
        log.error("%s circuit opened for %ss: %s", self.service, ttl, reason)

    def close_circuit(self) -> None:
        self.redis.delete(circuit_key(self.service))

    def wait_turn(self) -> float:
        """Sleep until this process may send the next request; returns the seconds slept."""
        if self.interval <= 0:
            return 0.0
        wait_ms = int(self.redis.eval(_RESERVE_SLOT, 1, pace_key(self.service), int(self.interval * 1000)))
        if wait_ms > 0:
            time.sleep(wait_ms / 1000)
        return max(wait_ms, 0) / 1000

    def before_request(self) -> None:
        self.check_circuit()
        self.wait_turn()
