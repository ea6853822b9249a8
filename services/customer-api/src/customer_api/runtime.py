"""The objects one API process shares between requests, and the outbox relay's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from application.customers import CustomerPolicy
from event_bus.broker import KafkaPublisher
from event_bus.outbox import OutboxRelay
from event_bus.topics import ensure_topics_until
from observability.metrics import ApiMetrics
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from customer_api.handlers.workflow_pages import WorkflowPages
from customer_api.metrics import MetricsRefresher
from customer_api.settings import ApiSettings

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)

_SHUTDOWN_GRACE = 5.0


@dataclass
class Runtime:
    settings: ApiSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    policy: CustomerPolicy
    relay: OutboxRelay | None = None
    publisher: KafkaPublisher | None = None
    workflow_pages: WorkflowPages | None = None  # PostgreSQL only: the list route's fast path
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    metrics_refresher: MetricsRefresher = field(default_factory=MetricsRefresher)
    _stop: asyncio.Event | None = field(default=None, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def start(self) -> None:
        """Open the read pool; start the outbox relay in the background (never fails because
        Kafka is down)."""
        if self.workflow_pages is not None:
            await self.workflow_pages.open()
        if self.relay is None or self._task is not None:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            self._relay_loop(self.relay, self._stop), name="outbox-relay"
        )

    async def _relay_loop(self, relay: OutboxRelay, stop: asyncio.Event) -> None:
        # Topics auto-created by a publish would get the broker's default partition count: make
        # sure ours exist first. No deadline, as every service (event_bus.topics): rows stay
        # pending meanwhile, and the API serves regardless. Stopped first: run_forever returns.
        if self.settings.outbox_ensure_topics:
            await ensure_topics_until(self.settings.kafka, stop)
        await relay.run_forever(stop)

    async def close(self) -> None:
        """Stop the relay, close the producer, dispose of the engine."""
        if self._task is not None and self._stop is not None:
            self._stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=_SHUTDOWN_GRACE)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception:
                logger.exception("Outbox relay ended with an error")
            self._task = None
        if self.publisher is not None:
            await self.publisher.close()
        if self.workflow_pages is not None:
            await self.workflow_pages.close()
        await self.engine.dispose()
