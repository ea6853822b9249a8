"""Message contracts (Pydantic). Field descriptions become the AsyncAPI document.

Every message has a unique `id` (the idempotency key consumers record) and `occurred_at`; messages
about one customer are keyed by its id on Kafka so they stay ordered in one partition. Commands are
imperative (`SyncCustomerWorkflows`), events are past-tense facts (`WorkflowSyncCompleted`).
A `type` literal on each model lets one topic carry several message kinds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from sync_messages.vocabulary import CompletedRunStatus, FailureKind, SyncReason

# Largest allow_deletes a command may carry (a bound, not "unbounded" by another name).
MAX_ALLOW_DELETES = 1_000_000

# Namespace for deterministic ids: the same logical command always gets the same id.
_ID_NAMESPACE = uuid.UUID("6f1c2a52-3d0e-4c55-9a57-5b0f0e3c9b11")


# Bounds of the fields a consumer stores or acts on (a message from the bus is untrusted input):
# ids fit sync_runs.command_id (64) and processed_messages.message_id (100); timestamps carry an
# offset (a naive one cannot be compared with the stored aware ones); attempts fit the counter.
MAX_ID_LENGTH = 64
MAX_ATTEMPT = 100
MAX_DEFERRALS = 1000
MAX_RETRY_DELAY = timedelta(hours=24)
"""The furthest ``RetrySync.not_before`` may lie ahead (a server's Retry-After is capped to it)."""

MessageId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def deterministic_id(*parts: str) -> str:
    """A stable id for a logical command (uuid5), so a replayed fan-out or slot collapses."""
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: MessageId = Field(default_factory=_new_id, description="Unique id; the idempotency key.")
    occurred_at: AwareDatetime = Field(
        default_factory=_now, description="When it happened (with its UTC offset)."
    )


# -- customers.events.v1 ---------------------------------------------------------------------------


class CustomerCreated(Message):
    type: Literal["CustomerCreated"] = "CustomerCreated"
    customer_id: uuid.UUID = Field(description="The new customer's id (also the Kafka key).")
    name: str = Field(description="Customer name.")


class CustomerUpdated(Message):
    type: Literal["CustomerUpdated"] = "CustomerUpdated"
    customer_id: uuid.UUID
    changed_fields: list[str] = Field(default_factory=list, description="Names of changed fields.")
    credentials_changed: bool = Field(
        False,
        description="True when base URL, client id/secret or entity id changed: triggers a sync.",
    )
    active: bool = Field(True, description="Whether the customer is active after the change.")


class CustomerDeleted(Message):
    type: Literal["CustomerDeleted"] = "CustomerDeleted"
    customer_id: uuid.UUID


CustomerEvent = Annotated[
    CustomerCreated | CustomerUpdated | CustomerDeleted, Field(discriminator="type")
]
customer_event_adapter: TypeAdapter[CustomerEvent] = TypeAdapter(CustomerEvent)


# -- workflow-sync.commands.v1 / sync-all / retry / dlq -------------------------------------------


class SyncCustomerWorkflows(Message):
    type: Literal["SyncCustomerWorkflows"] = "SyncCustomerWorkflows"
    customer_id: uuid.UUID = Field(description="Customer to sync (also the Kafka key).")
    reason: SyncReason = Field(description="Why the sync was requested.")
    requested_at: AwareDatetime = Field(
        default_factory=_now,
        description="A successful sync that started after this instant makes the command a no-op.",
    )
    force: bool = Field(
        False,
        description="Sync even if a recent successful sync covers the request (skip coalescing)."
        " Never lifts the deletion guard.",
    )
    replay_of: uuid.UUID | None = Field(None, description="The failed run this command replays.")
    allow_deletes: int | None = Field(
        None,
        ge=0,
        le=MAX_ALLOW_DELETES,
        description="One customer only: a run the deletion guard blocks may delete at most this"
        " many rows (more pending keeps it blocked). Honoured only shortly after requested_at"
        " (SYNC_ALLOW_DELETES_VALID_SECONDS), so a redelivered old command never deletes.",
    )


class SyncAllCustomers(Message):
    type: Literal["SyncAllCustomers"] = "SyncAllCustomers"
    reason: SyncReason = Field(
        description="Why the fan-out was requested (a scheduled slot or an operator)."
    )
    slot: str = Field(description="The schedule slot (e.g. 2026-11-29T02:00Z) or a request id.")
    requested_at: AwareDatetime = Field(default_factory=_now)
    force: bool = Field(False, description="Skip coalescing for every customer (never the guard).")

    @classmethod
    def for_slot(cls, reason: SyncReason, slot: str, *, force: bool = False) -> SyncAllCustomers:
        return cls(
            id=deterministic_id("sync-all", reason, slot), reason=reason, slot=slot, force=force
        )

    def command_for(self, customer_id: uuid.UUID) -> SyncCustomerWorkflows:
        """The fan-out command for one customer: same id every time this fan-out is replayed."""
        return SyncCustomerWorkflows(
            id=deterministic_id("sync-all", self.id, str(customer_id)),
            customer_id=customer_id,
            reason=self.reason,
            requested_at=self.requested_at,
            force=self.force,
        )


class RetrySync(Message):
    type: Literal["RetrySync"] = "RetrySync"
    command: SyncCustomerWorkflows = Field(description="The command to run again.")
    attempt: int = Field(
        ge=1,
        le=MAX_ATTEMPT,
        description="The attempt number this retry will be (2 = first retry; 1 = a first "
        "attempt put back because the customer was busy).",
    )
    not_before: AwareDatetime = Field(
        description="Do not run before this instant (at most 24 h ahead)."
    )
    last_error: str = Field("", max_length=2000, description="Why the previous attempt failed.")
    failed_run_id: uuid.UUID | None = None
    deferrals: int = Field(
        0,
        ge=0,
        le=MAX_DEFERRALS,
        description="Times this attempt was put back without running (customer busy): "
        "not an attempt.",
    )

    @model_validator(mode="after")
    def _not_before_within_window(self) -> Self:
        if self.not_before > _now() + MAX_RETRY_DELAY:
            raise ValueError("not_before lies more than 24 h ahead")
        return self

    @classmethod
    def retry_id(cls, command_id: str, attempt: int, deferrals: int = 0) -> str:
        """The id of the retry of ``command_id`` as ``attempt``: the same however often the
        failed attempt is settled again (a redelivery never starts a second retry chain)."""
        return deterministic_id("retry", command_id, str(attempt), str(deferrals))


class SyncDeadLettered(Message):
    type: Literal["SyncDeadLettered"] = "SyncDeadLettered"
    command: SyncCustomerWorkflows
    attempts: int = Field(description="Attempts made.")
    error_kind: FailureKind
    error: str = Field(description="The last error, one line, no secrets.")
    failed_run_id: uuid.UUID | None = None


class UnprocessableMessage(Message):
    """A message no handler could process (malformed, or failing the same way on every
    delivery), taken off its topic so the partition moves on."""

    type: Literal["UnprocessableMessage"] = "UnprocessableMessage"
    source_topic: str = Field(description="Where the message was read.")
    partition: int
    offset: int
    key: str | None = Field(None, description="Its Kafka key, if any (text).")
    payload: str = Field(description="Its value as text (cut after 64 KiB).")
    payload_truncated: bool = False
    deliveries: int = Field(description="How often it was read before it was given up.")
    error: str = Field(description="Why it could not be processed, one line.")


# -- workflow-sync.events.v1 -------------------------------------------------------------------


class SyncStatsPayload(BaseModel):
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    total: int = 0
    errors: int = 0
    definitions_fetched: int = Field(0, description="Workflow exports fetched from Zuora.")
    definitions_changed: int = Field(0, description="Definitions stored as new or different.")
    definitions_failed: int = Field(
        0, description="Exports that failed (those workflows keep their stored definition)."
    )


class WorkflowSyncCompleted(Message):
    type: Literal["WorkflowSyncCompleted"] = "WorkflowSyncCompleted"
    customer_id: uuid.UUID
    run_id: uuid.UUID | None
    command_id: str | None
    status: CompletedRunStatus
    stats: SyncStatsPayload


class WorkflowSyncFailed(Message):
    type: Literal["WorkflowSyncFailed"] = "WorkflowSyncFailed"
    customer_id: uuid.UUID
    run_id: uuid.UUID | None
    command_id: str | None
    error_kind: FailureKind
    error: str
    attempt: int
    will_retry: bool


class WorkflowsChanged(Message):
    type: Literal["WorkflowsChanged"] = "WorkflowsChanged"
    customer_id: uuid.UUID
    run_id: uuid.UUID | None
    created: list[int] = Field(default_factory=list, description="Zuora ids inserted.")
    updated: list[int] = Field(default_factory=list, description="Zuora ids whose content changed.")
    deleted: list[int] = Field(default_factory=list, description="Zuora ids removed.")


class WorkflowDefinitionChanged(Message):
    """A stored workflow definition was replaced by a different one (not sent for a workflow's
    first definition: ``definitions_changed`` in the run's stats counts those)."""

    type: Literal["WorkflowDefinitionChanged"] = "WorkflowDefinitionChanged"
    customer_id: uuid.UUID
    run_id: uuid.UUID | None
    zuora_id: int = Field(description="The workflow's Zuora id.")
    old_hash: str = Field(description="SHA-256 of the previous definition (canonical JSON).")
    new_hash: str = Field(description="SHA-256 of the new current definition.")
    tasks_added: int = Field(0, ge=0)
    tasks_removed: int = Field(0, ge=0)
    tasks_changed: int = Field(0, ge=0, description="Tasks kept with at least one field changed.")


SyncEvent = Annotated[
    WorkflowSyncCompleted | WorkflowSyncFailed | WorkflowsChanged | WorkflowDefinitionChanged,
    Field(discriminator="type"),
]
