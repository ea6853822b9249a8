"""How many sync commands one process admits at once: up to ``WORKER_MAX_IN_FLIGHT``, fewer
while its event loop is CPU-starved.

A sync mostly waits for Zuora (hundreds of ms per request in production) and then burns a few tens
of ms of CPU. With Zuora slow, many syncs in flight are what keep a worker busy; with Zuora fast,
the same number only queues CPU work: every step of every sync, and of an operator's urgent sync,
then waits behind all the others. Measured on 2 cores at 20 ms Zuora latency: a customer created
during a sync-all became readable at p95 11.6 s with 2 x 32 in flight, 1.8 s with 2 x 8; at 250 ms,
one worker finished 200 customers in 94 s with 4 in flight, 57 s with 16 and 69 s with 32.

So the limit adapts to the event loop's lag (how late a timer fires: the time a ready task waits
for the CPU), additive increase / multiplicative decrease as in TCP congestion control: lag above
``target_lag`` cuts the limit by a quarter (never below ``floor``); lag under a quarter of the
target while every slot is taken raises it by one (never above ``ceiling``). Already admitted
work is never cancelled: a lowered limit only stops admitting until enough have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

__all__ = ["AdaptiveLimit"]

logger = logging.getLogger("sync_worker")


class AdaptiveLimit:
    """A semaphore whose size follows the event loop's lag (module docstring)."""

    def __init__(
        self,
        ceiling: int,
        *,
        target_lag_seconds: float,
        floor: int = 4,
        interval_seconds: float = 0.25,
    ) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.target_lag = target_lag_seconds
        self.interval = interval_seconds
        self.limit = ceiling  # optimistic: a slow Zuora needs all of them at once
        self.in_use = 0
        self.lowest = ceiling  # for logs and benchmarks
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._monitor: asyncio.Task[None] | None = None

    @property
    def adaptive(self) -> bool:
        return self.target_lag > 0 and self.floor < self.ceiling

    async def acquire(self) -> None:
        if self.adaptive and self._monitor is None:
            self._monitor = asyncio.create_task(self._watch(), name="in-flight limit")
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted as we were cancelled: hand the slot on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def observe(self, lag_seconds: float) -> None:
        """Adjust the limit to one measured lag (called by the watcher; public for tests)."""
        before = self.limit
        if lag_seconds > self.target_lag:
            self.limit = max(self.floor, int(self.limit * 0.75))
        elif lag_seconds < self.target_lag / 4 and self.in_use >= self.limit:
            self.limit = min(self.ceiling, self.limit + 1)
        self.lowest = min(self.lowest, self.limit)
        if self.limit != before:
            logger.debug(
                "In-flight limit adjusted",
                extra={"limit": self.limit, "lag_ms": round(lag_seconds * 1000, 1)},
            )
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    async def _watch(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(self.interval)
            self.observe(max(time.monotonic() - started - self.interval, 0.0))

    async def aclose(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
