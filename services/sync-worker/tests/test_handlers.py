"""The worker's message handling with fakes for the engine, the ledger and Kafka (unit level)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sync_engine import FailureKind, RunStatus, SyncOutcome, SyncRequest
from sync_engine.outcome import ChangedIds, SyncStats
from sync_messages import (
    CustomerCreated,
    CustomerDeleted,
    CustomerUpdated,
    RetrySync,
    SyncAllCustomers,
    SyncCustomerWorkflows,
    SyncDeadLettered,
    WorkflowsChanged,
    WorkflowSyncCompleted,
    WorkflowSyncFailed,
    topics,
)
from sync_worker.handlers import SyncCommandHandler
from sync_worker.settings import WorkerSettings

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


class FakeLedger:
    def __init__(self) -> None:
        self.done: set[tuple[str, str]] = set()
        self.retry_scheduled: list[uuid.UUID] = []

    async def seen(self, consumer: str, message_id: str) -> bool:
        return (consumer, message_id) in self.done

    async def mark(self, consumer: str, message_id: str) -> None:
        self.done.add((consumer, message_id))

    async def mark_retry_scheduled(self, run_id: uuid.UUID) -> None:
        self.retry_scheduled.append(run_id)


class Harness:
    def __init__(self, outcomes: list[Any], customers: list[uuid.UUID] | None = None) -> None:
        self.outcomes = outcomes
        self.requests: list[SyncRequest] = []
        self.published: list[tuple[str, BaseModel, str | None]] = []
        self.slept: list[float] = []
        self.ledger = FakeLedger()
        self.customers = customers or []

        async def sync_customer(request: SyncRequest) -> SyncOutcome:
            self.requests.append(request)
            status, kind, changes = self.outcomes.pop(0)
            return SyncOutcome(
                customer_id=request.customer_id,
                status=status,
                run_id=uuid.uuid4(),
                stats=SyncStats(created=len(changes.created), total=len(changes.created)),
                changes=changes,
                error_kind=kind,
                error_message="ServerError: 503" if kind else None,
            )

        async def publish(topic: str, message: BaseModel, *, key: str | None) -> None:
            self.published.append((topic, message, key))

        async def active_ids() -> list[uuid.UUID]:
            return self.customers

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        self.handler = SyncCommandHandler(
            sync_customer=sync_customer,
            active_customer_ids=active_ids,
            ledger=self.ledger,  # type: ignore[arg-type]
            publish=publish,
            settings=WorkerSettings(max_attempts=3, retry_backoff_seconds=60),
            clock=lambda: NOW,
            sleep=sleep,
        )

    def on(self, topic: str) -> list[BaseModel]:
        return [m for t, m, _ in self.published if t == topic]


OK = (RunStatus.SUCCEEDED, None, ChangedIds(created=[1, 2]))
TRANSIENT = (RunStatus.FAILED, FailureKind.TRANSIENT, ChangedIds())
PERMANENT = (RunStatus.FAILED, FailureKind.PERMANENT, ChangedIds())


def command(**kw: Any) -> SyncCustomerWorkflows:
    return SyncCustomerWorkflows(customer_id=uuid.uuid4(), reason="manual", **kw)


async def test_success_publishes_completed_and_changed_then_records_the_message() -> None:
    h = Harness([OK])
    cmd = command()
    await h.handler.on_command(cmd)
    events = h.on(topics.SYNC_EVENTS)
    assert [type(e) for e in events] == [WorkflowSyncCompleted, WorkflowsChanged]
    assert all(key == str(cmd.customer_id) for _, _, key in h.published)
    assert h.requests[0].command_id == cmd.id and h.requests[0].attempt == 1
    assert ("sync-worker.commands", cmd.id) in h.ledger.done


async def test_redelivered_command_is_not_synced_twice() -> None:
    h = Harness([OK])
    cmd = command()
    await h.handler.on_command(cmd)
    await h.handler.on_command(cmd)
    assert len(h.requests) == 1


async def test_transient_failure_goes_to_retry_topic_with_backoff() -> None:
    h = Harness([TRANSIENT])
    cmd = command()
    await h.handler.on_command(cmd)
    (retry,) = h.on(topics.SYNC_RETRY)
    assert isinstance(retry, RetrySync)
    assert retry.attempt == 2 and retry.command == cmd
    assert retry.not_before == NOW + timedelta(seconds=60)
    (failed,) = h.on(topics.SYNC_EVENTS)
    assert isinstance(failed, WorkflowSyncFailed) and failed.will_retry
    assert h.on(topics.SYNC_DLQ) == []
    assert len(h.ledger.retry_scheduled) == 1


async def test_retry_waits_until_due_then_dead_letters_after_the_last_attempt() -> None:
    h = Harness([TRANSIENT])
    cmd = command()
    retry = RetrySync(command=cmd, attempt=3, not_before=NOW + timedelta(seconds=30))
    await h.handler.on_retry(retry)
    assert h.slept == [30.0]
    assert h.requests[0].attempt == 3
    (dead,) = h.on(topics.SYNC_DLQ)
    assert isinstance(dead, SyncDeadLettered) and dead.attempts == 3
    assert h.on(topics.SYNC_RETRY) == []
    assert not h.ledger.retry_scheduled


async def test_permanent_failure_is_dead_lettered_at_once() -> None:
    h = Harness([PERMANENT])
    await h.handler.on_command(command())
    (dead,) = h.on(topics.SYNC_DLQ)
    assert isinstance(dead, SyncDeadLettered) and dead.error_kind == "permanent"
    assert h.on(topics.SYNC_RETRY) == []


async def test_fan_out_is_deterministic_and_deduplicated() -> None:
    customers = [uuid.uuid4() for _ in range(5)]
    h = Harness([], customers)
    request = SyncAllCustomers.for_slot("hourly", "2026-11-29T02:00Z")
    await h.handler.on_sync_all(request)
    first = [m.id for m in h.on(topics.SYNC_COMMANDS)]
    assert len(first) == 5 and len(set(first)) == 5
    await h.handler.on_sync_all(request)  # redelivered: nothing more
    assert len(h.on(topics.SYNC_COMMANDS)) == 5
    h2 = Harness([], customers)  # another worker replaying the same fan-out: same ids
    await h2.handler.on_sync_all(SyncAllCustomers.for_slot("hourly", "2026-11-29T02:00Z"))
    assert [m.id for m in h2.on(topics.SYNC_COMMANDS)] == first


@pytest.mark.parametrize(
    ("event", "syncs"),
    [
        (CustomerCreated(customer_id=uuid.uuid4(), name="a"), True),
        (CustomerUpdated(customer_id=uuid.uuid4(), credentials_changed=True), True),
        (CustomerUpdated(customer_id=uuid.uuid4(), changed_fields=["name"]), False),
        (CustomerUpdated(customer_id=uuid.uuid4(), credentials_changed=True, active=False), False),
        (CustomerDeleted(customer_id=uuid.uuid4()), False),
    ],
)
async def test_customer_events_trigger_a_sync_when_needed(event: Any, syncs: bool) -> None:
    h = Harness([OK])
    await h.handler.on_customer_event(event)
    assert bool(h.requests) is syncs
    if syncs:
        assert h.requests[0].customer_id == event.customer_id
        assert h.requests[0].requested_at == event.occurred_at
