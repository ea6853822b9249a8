"""What the worker does with each message - plain classes, no Kafka, so tests drive them with fakes.

Every handled message ends in a terminal outcome before its offset is committed: done, skipped,
re-queued on the retry topic, or dead-lettered. The outcome is recorded (ledger + outbox, one
transaction) before anything is published, so a redelivery only publishes what is left.
Duplicates are harmless: the ledger drops exact redeliveries, and the engine's coalescing skips
work already covered.
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
from sync_engine import FailureKind, RunStatus, SyncOutcome, SyncRequest
from sync_messages import (
    MAX_RETRY_DELAY,
    CustomerCreated,
    CustomerDeleted,
    CustomerEvent,
    RetrySync,
    SyncAllCustomers,
    SyncCustomerWorkflows,
    SyncDeadLettered,
    SyncReason,
    SyncStatsPayload,
    WorkflowDefinitionChanged,
    WorkflowsChanged,
    WorkflowSyncCompleted,
    WorkflowSyncFailed,
    deterministic_id,
    topics,
)

from sync_worker.delivery import NotDueYet
from sync_worker.ledger import Publication
from sync_worker.settings import WorkerSettings

logger = logging.getLogger("sync_worker")

# Ledger consumer names: one per kind of message, so a command id and its retries never collide.
COMMANDS = "sync-worker.commands"
RETRIES = "sync-worker.retries"
FAN_OUT = "sync-worker.sync-all"
CUSTOMER_EVENTS = "sync-worker.customer-events"


# Ids per WorkflowsChanged message: keeps each message far below Kafka's 1 MB default
# (an id is at most 20 characters of JSON), however many workflows one sync changed.
CHANGED_IDS_PER_MESSAGE = 10_000


class Publish(Protocol):
    async def __call__(self, topic: str, message: BaseModel, *, key: str | None) -> None: ...


class SyncCustomer(Protocol):
    async def __call__(self, request: SyncRequest) -> SyncOutcome: ...


class Ledger(Protocol):
    async def seen(self, consumer: str, message_id: str) -> bool: ...

    async def mark(self, consumer: str, message_id: str) -> None: ...

    async def settle(
        self,
        consumer: str,
        message_id: str,
        *,
        key: str | None,
        publications: Sequence[Publication],
        retry_scheduled_run: uuid.UUID | None = None,
    ) -> None: ...

    async def flush(self, key: str) -> int: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class SyncCommandHandler:
    def __init__(
        self,
        *,
        sync_customer: SyncCustomer,
        active_customer_ids: Callable[[], Awaitable[Sequence[uuid.UUID]]],
        ledger: Ledger,
        publish: Publish,
        settings: WorkerSettings,
        clock: Callable[[], datetime] = utcnow,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._sync_customer = sync_customer
        self._active_customer_ids = active_customer_ids
        self._ledger = ledger
        self._publish = publish
        self._settings = settings
        self._clock = clock
        self._metrics = metrics

    # -- entry points, one per topic -------------------------------------------------------------

    async def on_command(self, command: SyncCustomerWorkflows) -> None:
        await self._sync_once(COMMANDS, command.id, command, attempt=1)

    async def on_retry(self, retry: RetrySync) -> None:
        """Run once due. Until then only this partition of the retry topic waits (paused)."""
        delay = self.retry_delay(retry)
        if delay > 0:
            raise NotDueYet(delay)
        await self._sync_once(
            RETRIES, retry.id, retry.command, attempt=retry.attempt, deferrals=retry.deferrals
        )

    def retry_delay(self, retry: RetrySync) -> float:
        """Seconds until ``retry`` is due, never more than ``max_retry_delay_seconds`` after it
        was published (a skewed or hostile ``not_before`` cannot park a partition for long)."""
        now = self._clock()
        cap = timedelta(seconds=self._settings.max_retry_delay_seconds)
        due = min(retry.not_before, retry.occurred_at + cap, now + cap)
        return (due - now).total_seconds()

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
        reason: SyncReason
        if isinstance(event, CustomerCreated):
            reason = SyncReason.CREATED
        elif not event.active:
            return
        elif event.credentials_changed:
            reason = SyncReason.CREDENTIALS_CHANGED
        elif "active" in event.changed_fields:
            reason = SyncReason.REACTIVATED  # it missed the syncs while it was inactive
        else:
            return
        command = SyncCustomerWorkflows(
            id=deterministic_id("customer-event", event.id),
            customer_id=event.customer_id,
            reason=reason,
            requested_at=event.occurred_at,
        )
        await self._sync_once(CUSTOMER_EVENTS, event.id, command, attempt=1)

    # -- the common path ---------------------------------------------------------------------

    async def _sync_once(
        self,
        consumer: str,
        message_id: str,
        command: SyncCustomerWorkflows,
        *,
        attempt: int,
        deferrals: int = 0,
    ) -> None:
        key = str(command.customer_id)
        if await self._ledger.seen(consumer, message_id):
            logger.info("Duplicate message skipped", extra={"message_id": message_id})
            await self._ledger.flush(key)  # what a failed publish left behind, if anything
            return
        outcome = await self._sync_customer(
            SyncRequest(
                customer_id=command.customer_id,
                reason=command.reason,
                requested_at=command.requested_at,
                force=command.force,
                allow_deletes=command.allow_deletes,
                command_id=command.id,
                attempt=attempt,
                replay_of=command.replay_of,
            )
        )
        publications, retry_run = self._settlement(command, attempt, deferrals, outcome)
        await self._ledger.settle(
            consumer,
            message_id,
            key=key,
            publications=publications,
            retry_scheduled_run=retry_run,
        )
        await self._ledger.flush(key)

    def _settlement(
        self, command: SyncCustomerWorkflows, attempt: int, deferrals: int, outcome: SyncOutcome
    ) -> tuple[list[Publication], uuid.UUID | None]:
        """What the outcome publishes, and the run to mark as retry-scheduled (if any)."""
        if outcome.status is not RunStatus.FAILED:
            return self._completed(command, outcome), None
        if outcome.busy and deferrals < self._settings.max_busy_deferrals:
            return [self._put_back(command, attempt, deferrals, outcome)], None
        will_retry = outcome.retryable and attempt < self._settings.max_attempts
        error = outcome.error_message or "unknown error"
        error_kind = outcome.error_kind or FailureKind.PERMANENT
        log = {
            "customer_id": str(command.customer_id),
            "command_id": command.id,
            "run_id": str(outcome.run_id) if outcome.run_id else None,
            "attempt": attempt,
        }
        first: Publication
        if will_retry:
            retry = RetrySync(
                id=RetrySync.retry_id(command.id, attempt + 1),
                command=command,
                attempt=attempt + 1,
                not_before=self._clock() + self._backoff(outcome),
                last_error=error[:2000],
                failed_run_id=outcome.run_id,
            )
            first = Publication(topics.SYNC_RETRY, retry)
            if self._metrics is not None:
                self._metrics.retry_scheduled()
            logger.info(
                "Workflow sync retry scheduled",
                extra={**log, "not_before": retry.not_before.isoformat()},
            )
        else:
            dead = SyncDeadLettered(
                id=deterministic_id("dead-letter", command.id, str(attempt)),
                command=command,
                attempts=attempt,
                error_kind=error_kind,
                error=error,
                failed_run_id=outcome.run_id,
            )
            first = Publication(topics.SYNC_DLQ, dead)
            if self._metrics is not None:
                self._metrics.dead_letter()
            logger.error("Workflow sync dead-lettered", extra={**log, "error": error})
        failed = WorkflowSyncFailed(
            customer_id=command.customer_id,
            run_id=outcome.run_id,
            command_id=command.id,
            error_kind=error_kind,
            error=error,
            attempt=attempt,
            will_retry=will_retry,
        )
        retry_run = outcome.run_id if will_retry else None
        return [first, Publication(topics.SYNC_EVENTS, failed)], retry_run

    def _backoff(self, outcome: SyncOutcome) -> timedelta:
        """The retry backoff, or longer when Zuora asked for it (capped like not_before)."""
        seconds = max(self._settings.retry_backoff_seconds, outcome.retry_after_seconds or 0.0)
        return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)

    def _put_back(
        self, command: SyncCustomerWorkflows, attempt: int, deferrals: int, outcome: SyncOutcome
    ) -> Publication:
        """The customer is busy with a sync that does not cover this command: try the same
        attempt again after the backoff (not an attempt; bounded by max_busy_deferrals)."""
        retry = RetrySync(
            id=RetrySync.retry_id(command.id, attempt, deferrals + 1),
            command=command,
            attempt=attempt,
            deferrals=deferrals + 1,
            not_before=self._clock() + timedelta(seconds=self._settings.retry_backoff_seconds),
            last_error=(outcome.error_message or "customer busy")[:2000],
        )
        logger.info(
            "Customer busy; command put back",
            extra={
                "customer_id": str(command.customer_id),
                "command_id": command.id,
                "attempt": attempt,
                "deferrals": retry.deferrals,
                "not_before": retry.not_before.isoformat(),
            },
        )
        return Publication(topics.SYNC_RETRY, retry)

    @staticmethod
    def _completed(command: SyncCustomerWorkflows, outcome: SyncOutcome) -> list[Publication]:
        stats = outcome.stats.as_dict()
        publications = [
            Publication(
                topics.SYNC_EVENTS,
                WorkflowSyncCompleted(
                    customer_id=command.customer_id,
                    run_id=outcome.run_id,
                    command_id=command.id,
                    status=outcome.status.value,
                    stats=SyncStatsPayload(**stats, **outcome.stats.definitions_dict()),
                ),
            )
        ]
        publications.extend(
            Publication(
                topics.SYNC_EVENTS,
                WorkflowDefinitionChanged(
                    customer_id=command.customer_id,
                    run_id=outcome.run_id,
                    zuora_id=change.zuora_id,
                    old_hash=change.old_hash,
                    new_hash=change.new_hash,
                    tasks_added=change.tasks_added,
                    tasks_removed=change.tasks_removed,
                    tasks_changed=change.tasks_changed,
                ),
            )
            for change in outcome.definition_changes
            if change.old_hash is not None
        )
        changes = outcome.changes
        ids = [
            *(("created", i) for i in changes.created),
            *(("updated", i) for i in changes.updated),
            *(("deleted", i) for i in changes.deleted),
        ]
        for start in range(0, len(ids), CHANGED_IDS_PER_MESSAGE):
            chunk = ids[start : start + CHANGED_IDS_PER_MESSAGE]
            publications.append(
                Publication(
                    topics.SYNC_EVENTS,
                    WorkflowsChanged(
                        customer_id=command.customer_id,
                        run_id=outcome.run_id,
                        created=[i for kind, i in chunk if kind == "created"],
                        updated=[i for kind, i in chunk if kind == "updated"],
                        deleted=[i for kind, i in chunk if kind == "deleted"],
                    ),
                )
            )
        return publications
