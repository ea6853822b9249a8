"""What the use cases return: plain frozen dataclasses, never ORM rows or API schemas.

An entrypoint maps them to its own shape (the API to ``*Public`` models, the CLI to tables and
JSON); none of them carries a client secret, not even encrypted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from workflow_store.models import Customer

__all__ = [
    "CommandQueued",
    "CredentialsChecked",
    "CustomerView",
    "Page",
    "RunView",
    "WorkflowView",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class CustomerView:
    id: uuid.UUID
    name: str
    base_url: str
    client_id: str
    entity_id: str | None
    active: bool
    credential_status: str
    last_sync_status: str | None
    last_sync_at: datetime | None
    last_successful_sync_at: datetime | None
    last_sync_error: str | None
    workflow_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, customer: Customer, workflow_count: int) -> CustomerView:
        return cls(
            id=customer.id,
            name=customer.name,
            base_url=customer.base_url,
            client_id=customer.client_id,
            entity_id=customer.entity_id,
            active=customer.active,
            credential_status=customer.credential_status,
            last_sync_status=customer.last_sync_status,
            last_sync_at=customer.last_sync_at,
            last_successful_sync_at=customer.last_successful_sync_at,
            last_sync_error=customer.last_sync_error,
            workflow_count=workflow_count,
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        )


@dataclass(frozen=True)
class RunView:
    """One sync run (one attempt of one command) with its customer's name."""

    id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    command_id: str | None
    reason: str
    attempt: int
    forced: bool
    status: str
    skip_reason: str | None
    pages: int
    created: int
    updated: int
    deleted: int
    unchanged: int
    total: int
    blocked_deletes: int | None
    error_kind: str | None
    error_message: str | None
    zuora_request_id: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    replay_of: uuid.UUID | None
    definitions_fetched: int = 0
    definitions_changed: int = 0
    definitions_failed: int = 0


@dataclass(frozen=True)
class WorkflowView:
    """A stored workflow as a listing shows it (no raw item, no definition).

    ``fields``: the workflow's own fields by name, in the order of the store's one list
    (``workflow_store.models.WORKFLOW_FIELDS``), so a column added there shows here too.
    """

    zuora_id: int
    name: str
    fields: dict[str, Any]
    last_synced_at: datetime | None = None  # the customer's last successful sync


@dataclass(frozen=True)
class CommandQueued:
    """A sync command written to the outbox (it leaves with the transaction's commit).

    ``expected``: for a sync of one customer, its command id → customer id; for a sync of
    all, the per-customer command ids the workers will derive (``SyncAllCustomers.command_for``),
    filled only when asked for (it costs a read of every active customer).
    """

    command_id: str
    expected: dict[str, uuid.UUID] = field(default_factory=dict)


@dataclass(frozen=True)
class CredentialsChecked:
    customer_id: uuid.UUID
    name: str
    credential_status: str
