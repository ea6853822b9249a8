"""What the worker does with each message - plain classes, no Kafka, so tests drive them with fakes.

Every handled message ends in a terminal outcome before its offset is committed: done, skipped,
re-queued on the retry topic, or dead-lettered. Duplicates are harmless: the processed-message
ledger drops exact redeliveries, and the engine's coalescing skips work already covered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from observability.metrics import WorkerMetrics
from pydantic import BaseModel
from sync_engine import RunStatus, SyncOutcome, SyncRequest
from sync_messages import (
    CustomerCreated,
    CustomerDeleted,
    CustomerEvent,
    CustomerUpdated,
    RetrySync,
    SyncAllCustomers,
    SyncCustomerWorkflows,
    SyncDeadLettered,
    SyncStatsPayload,
    WorkflowsChanged,
    WorkflowSyncCompleted,
    WorkflowSyncFailed,
    deterministic_id,
    topics,
)

from sync_worker.ledger import ProcessedLedger
from sync_worker.settings import WorkerSettings

logger = logging.getLogger("sync_worker")

# Ledger consumer names: one per kind of message, so a command id and its retries never collide.
COMMANDS = "sync-worker.commands"
RETRIES = "sync-worker.retries"
FAN_OUT = "sync-worker.sync-all"
CUSTOMER_EVENTS = "sync-worker.customer-events"


class Publish(Protocol):
    async def __call__(self, topic: str, message: BaseModel, *, key: str | None) -> None: ...


class SyncCustomer(Protocol):
    async def __call__(self, request: SyncRequest) -> SyncOutcome: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class SyncCommandHandler:
    def __init__(
        self,
        *,
        sync_customer: SyncCustomer,
        active_customer_ids: Callable[[], Awaitable[Sequence[uuid.UUID]]],
        ledger: ProcessedLedger,
        publish: Publish,
        settings: WorkerSettings,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._sync_customer = sync_customer
        self._active_customer_ids = active_customer_ids
        self._ledger = ledger
        self._publish = publish
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._metrics = metrics

    # -- entry points, one per topic -------------------------------------------------------------

    async def on_command(self, command: SyncCustomerWorkflows) -> None:
        await self._sync_once(COMMANDS, command.id, command, attempt=1)

    async def on_retry(self, retry: RetrySync) -> None:
        """Wait until the retry is due (only this partition of the retry topic waits), then run."""
        delay = (retry.not_before - self._clock()).total_seconds()
        if delay > 0:
            await self._sleep(delay)
        await self._sync_once(RETRIES, retry.id, retry.command, attempt=retry.attempt)

    async def on_sync_all(self, request: SyncAllCustomers) -> None:
        """Fan out one command per active customer, with ids derived from the fan-out's id."""
        if await self._ledger.seen(FAN_OUT, request.id):
            return
        customer_ids = await self._active_customer_ids()
        await asyncio.gather(
            *(
                self._publish(topics.SYNC_COMMANDS, request.command_for(cid), key=str(cid))
                for cid in customer_ids
            )
        )
        logger.info(
            "Fanned out sync-all",
            extra={"reason": request.reason, "slot": request.slot, "customers": len(customer_ids)},
        )
        await self._ledger.mark(FAN_OUT, request.id)

    async def on_customer_event(self, event: CustomerEvent) -> None:
        if isinstance(event, CustomerDeleted):
            return  # the rows went with the customer (ON DELETE CASCADE)
        if isinstance(event, CustomerUpdated) and not (event.credentials_changed and event.active):
            return
        reason = "created" if isinstance(event, CustomerCreated) else "credentials_changed"
        command = SyncCustomerWorkflows(
            id=deterministic_id("customer-event", event.id),
            customer_id=event.customer_id,
            reason=reason,
            requested_at=event.occurred_at,
        )
        await self._sync_once(CUSTOMER_EVENTS, event.id, command, attempt=1)

    # -- the common path ---------------------------------------------------------------------

    async def _sync_once(
        self, consumer: str, message_id: str, command: SyncCustomerWorkflows, *, attempt: int
    ) -> None:
        if await self._ledger.seen(consumer, message_id):
            logger.info("Duplicate message skipped", extra={"message_id": message_id})
            return
        outcome = await self._sync_customer(
            SyncRequest(
                customer_id=command.customer_id,
                reason=command.reason,
                requested_at=command.requested_at,
                force=command.force,
                command_id=command.id,
                attempt=attempt,
                replay_of=command.replay_of,
            )
        )
        await self._settle(command, attempt, outcome)
        await self._ledger.mark(consumer, message_id)

    async def _settle(
        self, command: SyncCustomerWorkflows, attempt: int, outcome: SyncOutcome
    ) -> None:
        key = str(command.customer_id)
        if outcome.status is not RunStatus.FAILED:
            await self._publish_completed(command, outcome, key)
            return
        will_retry = outcome.retryable and attempt < self._settings.max_attempts
        error = outcome.error_message or "unknown error"
        if will_retry:
            retry = RetrySync(
                command=command,
                attempt=attempt + 1,
                not_before=self._clock() + timedelta(seconds=self._settings.retry_backoff_seconds),
                last_error=error,
                failed_run_id=outcome.run_id,
            )
            await self._publish(topics.SYNC_RETRY, retry, key=key)
            if self._metrics is not None:
                self._metrics.retry_scheduled()
            logger.info(
                "Workflow sync retry scheduled",
                extra={
                    "customer_id": key,
                    "command_id": command.id,
                    "run_id": str(outcome.run_id) if outcome.run_id else None,
                    "attempt": attempt,
                    "not_before": retry.not_before.isoformat(),
                },
            )
            if outcome.run_id is not None:
                await self._ledger.mark_retry_scheduled(outcome.run_id)
        else:
            await self._publish(
                topics.SYNC_DLQ,
                SyncDeadLettered(
                    command=command,
                    attempts=attempt,
                    error_kind=outcome.error_kind.value if outcome.error_kind else "permanent",
                    error=error,
                    failed_run_id=outcome.run_id,
                ),
                key=key,
            )
            if self._metrics is not None:
                self._metrics.dead_letter()
            logger.error(
                "Workflow sync dead-lettered",
                extra={
                    "customer_id": key,
                    "command_id": command.id,
                    "run_id": str(outcome.run_id) if outcome.run_id else None,
                    "attempt": attempt,
                    "error": error,
                },
            )
        await self._publish(
            topics.SYNC_EVENTS,
            WorkflowSyncFailed(
                customer_id=command.customer_id,
                run_id=outcome.run_id,
                command_id=command.id,
                error_kind=outcome.error_kind.value if outcome.error_kind else "permanent",
                error=error,
                attempt=attempt,
                will_retry=will_retry,
            ),
            key=key,
        )

    async def _publish_completed(
        self, command: SyncCustomerWorkflows, outcome: SyncOutcome, key: str
    ) -> None:
        stats = outcome.stats.as_dict()
        await self._publish(
            topics.SYNC_EVENTS,
            WorkflowSyncCompleted(
                customer_id=command.customer_id,
                run_id=outcome.run_id,
                command_id=command.id,
                status=outcome.status.value,
                stats=SyncStatsPayload(**stats),
            ),
            key=key,
        )
        if outcome.changes:
            await self._publish(
                topics.SYNC_EVENTS,
                WorkflowsChanged(
                    customer_id=command.customer_id,
                    run_id=outcome.run_id,
                    created=outcome.changes.created,
                    updated=outcome.changes.updated,
                    deleted=outcome.changes.deleted,
                ),
                key=key,
            )
