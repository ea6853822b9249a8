"""The input of a sync: one request to sync one customer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sync_messages.vocabulary import SyncReason


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncRequest:
    """One request to sync one customer (from a Kafka command, the CLI or a test)."""

    customer_id: uuid.UUID
    reason: str = SyncReason.MANUAL
    requested_at: datetime = field(default_factory=utcnow)
    force: bool = False
    """Sync even if a recent successful sync covers the request (skip coalescing). It never
    lifts the deletion guard."""
    command_id: str | None = None
    attempt: int = 1
    replay_of: uuid.UUID | None = None
    allow_deletes: int | None = None
    """The operator's bound for a guarded run: delete at most this many rows (more pending keeps
    the run blocked). Honoured only within ``SyncSettings.allow_deletes_valid_seconds`` of
    ``requested_at``."""
