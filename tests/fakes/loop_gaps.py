"""How long an event loop could not run: the tests of the KIS limiter count the slots it could use.

A timing test on a shared machine cannot expect a number of calls per second of wall time: a loaded
machine starves the loop as surely as a blocking neighbour does. :class:`LoopGaps` watches the
running loop (a task that wakes every 2 ms) and records every gap in which it ran nothing for more
than ``longer_than`` seconds; what remains is the time the loop could work, against which a test
counts what was done.
"""

from __future__ import annotations

import asyncio
import time


class LoopGaps:
    """The gaps (seconds) of the running event loop while :meth:`watch` runs, each longer than ``longer_than``."""

    def __init__(self, longer_than: float) -> None:
        self.longer_than = longer_than
        self.gaps: list[float] = []
        self._stop = False

    @property
    def total(self) -> float:
        return sum(self.gaps)

    async def watch(self, until: float | None = None) -> None:
        """Watch until :meth:`stop` or the monotonic time ``until``."""
        last = time.monotonic()
        while not self._stop and (until is None or last < until):
            await asyncio.sleep(0.002)
            now = time.monotonic()
            if now - last > self.longer_than:
                self.gaps.append(now - last)
            last = now

    def stop(self) -> None:
        self._stop = True

    async def around(self, coro):
        """Await ``coro`` while watching; its result."""
        watching = asyncio.ensure_future(self.watch())
        try:
            return await coro
        finally:
            self.stop()
            await watching
