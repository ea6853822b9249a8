"""Publishing one slot's ``SyncAllCustomers``, retrying while Kafka is unreachable.

No Kafka here: the publish function is injected, so tests drive it with fakes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from event_bus.broker import KafkaPublisher
from sync_messages import SyncAllCustomers, SyncReason
from sync_messages.topics import SYNC_ALL
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from sync_scheduler.slots import slot_for

__all__ = ["PublishSyncAll", "SyncAllEmitter", "kafka_publish"]

log = logging.getLogger(__name__)

PublishSyncAll = Callable[[SyncAllCustomers], Awaitable[None]]
"""``async publish(message)``: returns once the broker acknowledged, raises otherwise."""


def kafka_publish(publisher: KafkaPublisher) -> PublishSyncAll:
    """Publish to ``workflow-sync.sync-all.v1``, keyed by the message id.

    The key puts duplicates of one slot (two replicas, a restart) in one partition, so a single
    consumer sees them one after the other and its dedupe on the id cannot race.
    """

    async def publish(message: SyncAllCustomers) -> None:
        await publisher.publish_message(SYNC_ALL, message, key=message.id)

    return publish


class SyncAllEmitter:
    """Emits ``SyncAllCustomers.for_slot(reason, slot)`` for a scheduled fire time."""

    def __init__(
        self,
        publish: PublishSyncAll,
        *,
        grace_seconds: float = 600.0,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self.grace_seconds = grace_seconds
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock

    @staticmethod
    def message_for(reason: SyncReason, scheduled_at: datetime) -> SyncAllCustomers:
        """The message of one slot: the same id for the same (reason, scheduled time)."""
        return SyncAllCustomers.for_slot(reason, slot_for(scheduled_at))

    async def emit(self, reason: SyncReason, scheduled_at: datetime) -> bool:
        """Publish the slot's message; retry with backoff for up to ``grace_seconds``.

        Returns ``True`` once published, ``False`` after giving up (logged as an ERROR). The
        waits double from ``initial_backoff`` up to ``max_backoff``; the last one is cut to
        what is left of the grace period (on the injected clock).
        """
        message = self.message_for(reason, scheduled_at)
        started = self._clock()
        backoff = wait_exponential(multiplier=self.initial_backoff, max=self.max_backoff)

        def remaining() -> float:
            return self.grace_seconds - (self._clock() - started)

        def before_sleep(state: RetryCallState) -> None:
            log.warning(
                "Could not publish %s sync-all for slot %s (attempt %d): %r; retrying in %.1fs",
                reason,
                message.slot,
                state.attempt_number,
                state.outcome.exception() if state.outcome is not None else None,
                state.next_action.sleep if state.next_action is not None else 0.0,
            )

        def give_up(state: RetryCallState) -> bool:
            log.error(
                "Giving up on %s sync-all for slot %s after %d attempts in %.0fs: %r",
                reason,
                message.slot,
                state.attempt_number,
                self.grace_seconds,
                state.outcome.exception() if state.outcome is not None else None,
            )
            return False

        retrying = AsyncRetrying(
            stop=lambda _state: remaining() <= 0,
            wait=lambda state: min(backoff(state), remaining()),
            retry=retry_if_exception_type(Exception),
            before_sleep=before_sleep,
            retry_error_callback=give_up,
            sleep=self._sleep,
        )
        attempts = 0

        async def publish_once() -> bool:
            nonlocal attempts
            attempts += 1
            await self._publish(message)
            return True

        published: bool = await retrying(publish_once)
        if published:
            log.info(
                "Emitted %s sync-all for slot %s (id %s, attempt %d)",
                reason,
                message.slot,
                message.id,
                attempts,
            )
        return published
