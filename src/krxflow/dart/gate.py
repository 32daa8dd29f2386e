"""The one gate every OpenDART request of the installation passes, in Redis (keys ``dart:*``).

It is the KRX gate (:class:`krxflow.krx.pacing.Pacer`) under its own keys, plus a daily budget:

* **Per-minute cap** (default 300/min, ``KRXFLOW_DART_PER_MINUTE``; OpenDART blocks an IP for
  24 h beyond ~1,000/min): one request in flight and ``60 / cap`` seconds (0.2 s by default, the
  pause dart-fss makes) from one answer to the next send, over every worker, so no 60 seconds
  ever hold more than ``cap`` requests.
* **Daily budget** (default 18,000 per KST day, ``KRXFLOW_DART_DAILY_BUDGET``; OpenDART allows
  about 20,000 per key): counted in Redis per KST day; once spent, :class:`DartBudgetError` says so
  and nothing is sent until 00:00 KST.
* **Circuit**: status 020 (OpenDART's limit reached anyway: another installation on the same key)
  opens the DART circuit until the next KST day; while open, :class:`DartCircuitOpenError`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Iterator

from krxflow import redis_client
from krxflow.dart.errors import DartBudgetError, DartCircuitOpenError
from krxflow.krx.pacing import Pacer, circuit_key, take_from_daily_budget
from krxflow.settings import number_setting
from krxflow.market_time import KST, kst_now

log = logging.getLogger(__name__)

NAMESPACE = "dart"
SERVICE = "opendart"
DEFAULT_PER_MINUTE = 300
DEFAULT_DAILY_BUDGET = 18_000


def per_minute_cap() -> float:
    return number_setting("KRXFLOW_DART_PER_MINUTE", DEFAULT_PER_MINUTE)


def daily_budget() -> int:
    return int(number_setting("KRXFLOW_DART_DAILY_BUDGET", DEFAULT_DAILY_BUDGET))


def budget_key(day: dt.date) -> str:
    return redis_client.key(NAMESPACE, "sent", f"{day:%Y%m%d}")


def seconds_to_next_kst_day(now: dt.datetime | None = None) -> int:
    now = now or kst_now()
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0), tzinfo=KST)
    return max(int((midnight - now).total_seconds()) + 60, 60)


class DartGate:
    """The installation's OpenDART gate.

    :param per_minute: the cap (requests per ``window`` seconds); the interval is ``window / per_minute``.
    :param window: seconds of the cap's window (60; tests use shorter ones).
    :param budget: requests per KST day.
    """

    def __init__(self, redis=None, *, per_minute: float | None = None, budget: int | None = None,
                 window: float = 60.0) -> None:
        self.per_minute = per_minute_cap() if per_minute is None else float(per_minute)
        if self.per_minute <= 0:
            raise ValueError("the DART per-minute cap must be positive")
        self.budget = daily_budget() if budget is None else int(budget)
        self.pacer = Pacer(SERVICE, redis, window / self.per_minute, namespace=NAMESPACE,
                           circuit_error=DartCircuitOpenError)

    @property
    def redis(self):
        return self.pacer.redis

    def sent_today(self) -> int:
        return int(self.redis.get(budget_key(kst_now().date())) or 0)

    def open_circuit(self, reason: str) -> None:
        """Status 020: nothing goes to OpenDART until the next KST day."""
        self.pacer.open_circuit(reason, ttl=seconds_to_next_kst_day())

    def circuit_key(self) -> str:
        return circuit_key(SERVICE, NAMESPACE)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for the turn to send one request and spend one of today's budget; send inside."""
        with self.pacer.turn():
            day = kst_now().date()
            key = budget_key(day)
            if take_from_daily_budget(self.redis, key, self.budget, 3 * 86400) < 0:
                raise DartBudgetError(
                    f"krxflow's daily budget of {self.budget} OpenDART requests for {day} (KST) is used up "
                    f"({self.sent_today()} sent today, counted in Redis key {key}); OpenDART allows about 20,000 a day "
                    f"per key and answers status 020 beyond. Nothing more is sent before 00:00 KST. Raise "
                    f"KRXFLOW_DART_DAILY_BUDGET only if the key's real limit is higher.")
            yield
