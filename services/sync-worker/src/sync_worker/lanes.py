"""The fast lane: an operator's sync and a new customer's first sync go before bulk syncs.

Priority commands and customer events already have their own topics and consumers, so they are
never queued behind a sync-all fan-out. But once fetched they share the process's event loop (and
its CPU share) with up to ``WORKER_MAX_IN_FLIGHT`` bulk syncs, so each of their steps waits behind
every ready bulk task: measured under a sync-all, a created customer took seconds to become
readable. So while urgent work is in progress, bulk syncs that have not started yet wait (at most
``WORKER_FAST_LANE_HOLD_SECONDS``, so a stream of manual syncs cannot starve the schedule); bulk
syncs already running go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

__all__ = ["FastLane"]

T = TypeVar("T")


class FastLane:
    def __init__(self, hold_seconds: float) -> None:
        self.hold_seconds = hold_seconds
        self._urgent = 0
        self._clear = asyncio.Event()
        self._clear.set()
        self.held = 0  # bulk syncs that waited (a gauge for tests and logs)

    @property
    def urgent(self) -> int:
        return self._urgent

    @contextlib.asynccontextmanager
    async def urgent_work(self) -> AsyncIterator[None]:
        self._urgent += 1
        self._clear.clear()
        try:
            yield
        finally:
            self._urgent -= 1
            if self._urgent == 0:
                self._clear.set()

    def urgently(self, handle: Callable[[T], Awaitable[None]]) -> Callable[[T], Awaitable[None]]:
        """``handle`` run as urgent work."""

        async def run(payload: T) -> None:
            async with self.urgent_work():
                await handle(payload)

        return run

    async def bulk_turn(self) -> None:
        """Before a bulk sync starts: wait while urgent work is in progress (bounded)."""
        if self._urgent == 0 or self.hold_seconds <= 0:
            return
        self.held += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._clear.wait(), timeout=self.hold_seconds)
