"""What one sync attempt produced: the run's status, its stats and the ids that changed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sync_messages.vocabulary import CredentialStatus, FailureKind, RunStatus
from workflow_store.definitions import DefinitionChange

# RunStatus and FailureKind are the product's vocabulary (the sync_runs columns), re-exported.
__all__ = [
    "ChangedIds",
    "CustomerSyncStatus",
    "FailureKind",
    "RunStatus",
    "SyncOutcome",
    "SyncStats",
]


@dataclass
class SyncStats:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    total: int = 0
    errors: int = 0
    pages: int = 0
    # Workflow definitions (exports): fetched, stored as new or different, failed to fetch.
    definitions_fetched: int = 0
    definitions_changed: int = 0
    definitions_failed: int = 0

    def definitions_dict(self) -> dict[str, int]:
        return {
            "definitions_fetched": self.definitions_fetched,
            "definitions_changed": self.definitions_changed,
            "definitions_failed": self.definitions_failed,
        }

    def as_dict(self) -> dict[str, int]:
        """The stats shape users and scripts rely on (the seed's)."""
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "total": self.total,
            "errors": self.errors,
        }


@dataclass
class ChangedIds:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass
class SyncOutcome:
    customer_id: uuid.UUID
    status: RunStatus
    run_id: uuid.UUID | None
    stats: SyncStats = field(default_factory=SyncStats)
    changes: ChangedIds = field(default_factory=ChangedIds)
    error_kind: FailureKind | None = None
    error_message: str | None = None
    skip_reason: str | None = None
    blocked_deletes: int | None = None
    duration_ms: int = 0
    zuora_request_id: str | None = None  # of the Zuora response that failed the sync, if any
    definition_changes: list[DefinitionChange] = field(default_factory=list)
    retry_after_seconds: float | None = None  # the server's Retry-After hint, if it gave one
    busy: bool = False  # not run: another sync of the customer held the lock (not an attempt)

    @property
    def retryable(self) -> bool:
        return self.status is RunStatus.FAILED and self.error_kind is FailureKind.TRANSIENT


@dataclass(frozen=True)
class CustomerSyncStatus:
    """What a recorded run sets on its customer's row (the ``customers.last_sync_*`` columns)."""

    last_sync_at: datetime
    last_sync_status: RunStatus
    last_sync_error: str | None
    last_successful_sync_at: datetime | None  # None: left as it is
    credential_status: CredentialStatus | None  # None: left as it is

    @classmethod
    def after(
        cls,
        outcome: SyncOutcome,
        *,
        started_at: datetime,
        now: datetime,
        credential_status: CredentialStatus | None,
    ) -> CustomerSyncStatus:
        """A success covers what changed before the run started (``started_at``, the start
        instant stamped before the customer was read), so requests older than it coalesce."""
        succeeded = outcome.status is RunStatus.SUCCEEDED
        return cls(
            last_sync_at=now,
            last_sync_status=outcome.status,
            last_sync_error=None if succeeded else outcome.error_message,
            last_successful_sync_at=started_at if succeeded else None,
            credential_status=credential_status,
        )

    def columns(self) -> dict[str, Any]:
        """Column name -> value, without the columns left as they are."""
        values: dict[str, Any] = {
            "last_sync_at": self.last_sync_at,
            "last_sync_status": self.last_sync_status.value,
            "last_sync_error": self.last_sync_error,
        }
        if self.last_successful_sync_at is not None:
            values["last_successful_sync_at"] = self.last_successful_sync_at
        if self.credential_status is not None:
            values["credential_status"] = self.credential_status.value
        return values
