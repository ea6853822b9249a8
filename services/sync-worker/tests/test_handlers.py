"""The worker's message handling with fakes for the engine, the ledger and Kafka (unit level)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import BaseModel
from sync_engine import FailureKind, RunStatus, SyncOutcome, SyncRequest
from sync_engine.outcome import ChangedIds, SyncStats
from sync_messages import (
    CustomerCreated,
    CustomerDeleted,
    CustomerUpdated,
    Message,
    RetrySync,
    SyncAllCustomers,
    SyncCustomerWorkflows,
    SyncDeadLettered,
    SyncReason,
    WorkflowDefinitionChanged,
    WorkflowsChanged,
    WorkflowSyncCompleted,
    WorkflowSyncFailed,
    topics,
)
from sync_worker.delivery import NotDueYet
from sync_worker.handlers import CHANGED_IDS_PER_MESSAGE, SyncCommandHandler
from sync_worker.settings import WorkerSettings
from workflow_store.definitions import DefinitionChange

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


class FakeLedger:
    """The ledger's contract: settle records the publications, flush publishes them in order."""

    def __init__(self, published: list[tuple[str, BaseModel, str | None]]) -> None:
        self.done: set[tuple[str, str]] = set()
        self.retry_scheduled: list[uuid.UUID] = []
        self.pending: list[tuple[str, BaseModel, str | None]] = []
        self.published = published
        self.failing_topics: set[str] = set()

    async def seen(self, consumer: str, message_id: str) -> bool:
        return (consumer, message_id) in self.done

    async def mark(self, consumer: str, message_id: str) -> None:
        self.done.add((consumer, message_id))

    async def settle(
        self,
        consumer: str,
        message_id: str,
        *,
        key: str | None,
        publications: Any,
        retry_scheduled_run: uuid.UUID | None = None,
    ) -> None:
        if (consumer, message_id) in self.done:
            return
        self.done.add((consumer, message_id))
        self.pending += [(p.topic, p.message, key) for p in publications]
        if retry_scheduled_run is not None:
            self.retry_scheduled.append(retry_scheduled_run)

    async def flush(self, key: str) -> int:
        sent = 0
        for item in [p for p in self.pending if p[2] == key]:
            if item[0] in self.failing_topics:
                raise KafkaConnectionError("broker unavailable")
            self.pending.remove(item)
            self.published.append(item)
            sent += 1
        return sent


class Harness:
    def __init__(
        self,
        outcomes: list[Any],
        customers: list[uuid.UUID] | None = None,
        **settings: Any,
    ) -> None:
        self.outcomes = outcomes
        self.requests: list[SyncRequest] = []
        self.published: list[tuple[str, BaseModel, str | None]] = []
        self.ledger = FakeLedger(self.published)
        self.customers = customers or []

        async def sync_customer(request: SyncRequest) -> SyncOutcome:
            self.requests.append(request)
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, SyncOutcome):
                return outcome
            status, kind, changes = outcome
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

        self.handler = SyncCommandHandler(
            sync_customer=sync_customer,
            active_customer_ids=active_ids,
            ledger=self.ledger,
            publish=publish,
            settings=WorkerSettings(**{"max_attempts": 3, "retry_backoff_seconds": 60, **settings}),
            clock=lambda: NOW,
        )

    def on(self, topic: str) -> list[Message]:
        found = [m for t, m, _ in self.published if t == topic]
        messages = [m for m in found if isinstance(m, Message)]
        assert messages == found, "the handler published something that is not a message contract"
        return messages


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
    assert tuple(type(e) for e in events) == (WorkflowSyncCompleted, WorkflowsChanged)
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
    assert retry.id == RetrySync.retry_id(cmd.id, 2)  # deterministic: one chain only
    (failed,) = h.on(topics.SYNC_EVENTS)
    assert isinstance(failed, WorkflowSyncFailed) and failed.will_retry
    assert h.on(topics.SYNC_DLQ) == []
    assert len(h.ledger.retry_scheduled) == 1


async def test_retry_not_due_yet_defers_without_running() -> None:
    h = Harness([TRANSIENT])
    retry = RetrySync(command=command(), attempt=2, not_before=NOW + timedelta(seconds=30))
    with pytest.raises(NotDueYet) as wait:
        await h.handler.on_retry(retry)
    assert wait.value.seconds == 30.0
    assert h.requests == [] and h.published == []


async def test_retry_wait_is_capped_however_far_not_before_lies() -> None:
    """M8: a skewed or hostile not_before parks the partition for at most the cap."""
    h = Harness([TRANSIENT], max_retry_delay_seconds=600)
    retry = RetrySync(
        command=command(), attempt=2, not_before=NOW + timedelta(hours=20), occurred_at=NOW
    )
    with pytest.raises(NotDueYet) as wait:
        await h.handler.on_retry(retry)
    assert wait.value.seconds == 600.0


async def test_due_retry_dead_letters_after_the_last_attempt() -> None:
    h = Harness([TRANSIENT])
    cmd = command()
    retry = RetrySync(command=cmd, attempt=3, not_before=NOW - timedelta(seconds=1))
    await h.handler.on_retry(retry)
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
    request = SyncAllCustomers.for_slot(SyncReason.HOURLY, "2026-11-29T02:00Z")
    await h.handler.on_sync_all(request)
    first = [m.id for m in h.on(topics.SYNC_COMMANDS)]
    assert len(first) == 5 and len(set(first)) == 5
    await h.handler.on_sync_all(request)  # redelivered: nothing more
    assert len(h.on(topics.SYNC_COMMANDS)) == 5
    h2 = Harness([], customers)  # another worker replaying the same fan-out: same ids
    await h2.handler.on_sync_all(SyncAllCustomers.for_slot(SyncReason.HOURLY, "2026-11-29T02:00Z"))
    assert [m.id for m in h2.on(topics.SYNC_COMMANDS)] == first


@pytest.mark.parametrize(
    ("event", "syncs"),
    [
        (CustomerCreated(customer_id=uuid.uuid4(), name="a"), True),
        (CustomerUpdated(customer_id=uuid.uuid4(), credentials_changed=True), True),
        (CustomerUpdated(customer_id=uuid.uuid4(), changed_fields=["name"]), False),
        (CustomerUpdated(customer_id=uuid.uuid4(), credentials_changed=True, active=False), False),
        # M12: reactivation syncs (the customer missed every sync while inactive)
        (CustomerUpdated(customer_id=uuid.uuid4(), changed_fields=["active"]), True),
        (CustomerUpdated(customer_id=uuid.uuid4(), changed_fields=["active"], active=False), False),
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


async def test_a_failed_event_publish_is_redone_without_syncing_again() -> None:
    """A7: the outcome is settled before publishing; a redelivery only publishes what is left
    (one Zuora listing, one retry chain)."""
    h = Harness([TRANSIENT])
    h.ledger.failing_topics = {topics.SYNC_EVENTS}
    cmd = command()
    for _ in range(3):  # three deliveries while the events topic rejects produces
        with pytest.raises(KafkaConnectionError):
            await h.handler.on_command(cmd)
    h.ledger.failing_topics = set()
    await h.handler.on_command(cmd)
    assert len(h.requests) == 1
    assert len(h.on(topics.SYNC_RETRY)) == 1
    assert [type(m) for m in h.on(topics.SYNC_EVENTS)] == [WorkflowSyncFailed]


def busy(customer_id: uuid.UUID | None = None) -> SyncOutcome:
    return SyncOutcome(
        customer_id=customer_id or uuid.uuid4(),
        status=RunStatus.FAILED,
        run_id=None,
        error_kind=FailureKind.TRANSIENT,
        error_message="CustomerBusyError: customer is being synced by another worker",
        busy=True,
    )


async def test_busy_customer_is_put_back_without_spending_an_attempt() -> None:
    """A2: busy is re-queued as the same attempt; no event, no dead letter, no failed run."""
    h = Harness([busy(), busy(), OK], max_attempts=1)
    cmd = command()
    await h.handler.on_command(cmd)
    (first,) = h.on(topics.SYNC_RETRY)
    assert isinstance(first, RetrySync)
    assert (first.attempt, first.deferrals) == (1, 1)
    assert first.not_before == NOW + timedelta(seconds=60)
    await h.handler.on_retry(first.model_copy(update={"not_before": NOW}))
    second = h.on(topics.SYNC_RETRY)[-1]
    assert isinstance(second, RetrySync) and (second.attempt, second.deferrals) == (1, 2)
    assert second.id != first.id
    await h.handler.on_retry(second.model_copy(update={"not_before": NOW}))
    assert [r.attempt for r in h.requests] == [1, 1, 1]
    assert h.on(topics.SYNC_DLQ) == []
    events = h.on(topics.SYNC_EVENTS)
    assert tuple(type(m) for m in events) == (WorkflowSyncCompleted, WorkflowsChanged)
    assert h.ledger.retry_scheduled == []


async def test_busy_for_too_long_counts_as_an_attempt() -> None:
    h = Harness([busy()], max_attempts=1, max_busy_deferrals=0)
    await h.handler.on_command(command())
    (dead,) = h.on(topics.SYNC_DLQ)
    assert isinstance(dead, SyncDeadLettered) and dead.error_kind == "transient"


async def test_changed_ids_are_split_below_kafkas_message_size() -> None:
    """M11: a first sync of 25,000 workflows publishes three WorkflowsChanged messages."""
    created = list(range(25_000))
    h = Harness([(RunStatus.SUCCEEDED, None, ChangedIds(created=created, deleted=[7]))])
    await h.handler.on_command(command())
    changed = [m for m in h.on(topics.SYNC_EVENTS) if isinstance(m, WorkflowsChanged)]
    assert len(changed) == 3
    assert [i for m in changed for i in m.created] == created
    assert [i for m in changed for i in m.deleted] == [7]
    for message in changed:
        assert len(message.created) + len(message.deleted) <= CHANGED_IDS_PER_MESSAGE
        assert len(message.model_dump_json()) < 1_000_000


def test_settings_whose_sync_could_outlast_the_poll_interval_are_refused() -> None:
    from sync_engine import SyncSettings
    from sync_worker.settings import check_sync_fits_poll_interval

    check_sync_fits_poll_interval(WorkerSettings(), SyncSettings())  # the defaults fit
    with pytest.raises(ValueError, match="WORKER_MAX_POLL_INTERVAL_MS"):
        check_sync_fits_poll_interval(
            WorkerSettings(max_poll_interval_ms=300_000), SyncSettings(deadline_seconds=295)
        )


@pytest.mark.parametrize(("hint", "delay"), [(None, 60), (5, 60), (900, 900)])
async def test_retry_is_not_before_the_servers_hint(hint: float | None, delay: float) -> None:
    cmd = command()
    failed = SyncOutcome(
        customer_id=cmd.customer_id,
        status=RunStatus.FAILED,
        run_id=uuid.uuid4(),
        error_kind=FailureKind.TRANSIENT,
        error_message="CircuitOpenError: circuit_open",
        retry_after_seconds=hint,
    )
    h = Harness([failed])
    await h.handler.on_command(cmd)
    (retry,) = h.on(topics.SYNC_RETRY)
    assert isinstance(retry, RetrySync)
    assert retry.not_before == NOW + timedelta(seconds=delay)


async def test_changed_definitions_are_published_with_their_counts() -> None:
    customer_id = uuid.uuid4()
    changed = DefinitionChange(
        7, "a" * 64, "b" * 64, tasks_added=1, tasks_removed=2, tasks_changed=3
    )
    first = DefinitionChange(8, None, "c" * 64, tasks_added=4, tasks_removed=0, tasks_changed=0)
    outcome = SyncOutcome(
        customer_id=customer_id,
        status=RunStatus.SUCCEEDED,
        run_id=uuid.uuid4(),
        stats=SyncStats(definitions_fetched=2, definitions_changed=2, definitions_failed=1),
        definition_changes=[changed, first],
    )
    h = Harness([outcome])
    await h.handler.on_command(command())
    events = h.on(topics.SYNC_EVENTS)
    completed = next(e for e in events if isinstance(e, WorkflowSyncCompleted))
    assert (completed.stats.definitions_fetched, completed.stats.definitions_failed) == (2, 1)
    # A workflow's first definition is no change of a definition: counted, not announced.
    [event] = [e for e in events if isinstance(e, WorkflowDefinitionChanged)]
    assert (event.zuora_id, event.old_hash, event.new_hash) == (7, "a" * 64, "b" * 64)
    assert (event.tasks_added, event.tasks_removed, event.tasks_changed) == (1, 2, 3)
    assert event.run_id == outcome.run_id
