"""Pruning of delivery records that only matter for a while.

`processed_messages` guards against redelivered duplicates, and sent `outbox` rows are a record of
what was published; both grow with every message. Past a retention window neither is needed: a
duplicate arriving later than that would still be harmless (the sync engine coalesces requests
already covered by a newer successful sync). Pending outbox rows are never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from .models import OutboxMessage, ProcessedMessage

__all__ = ["PruneResult", "prune_delivery_records"]


@dataclass(frozen=True)
class PruneResult:
    processed_messages: int
    sent_outbox_messages: int


async def prune_delivery_records(session: AsyncSession, *, older_than: datetime) -> PruneResult:
    """Delete ledger entries and sent outbox rows older than ``older_than`` (caller commits)."""
    ledger = await session.execute(
        delete(ProcessedMessage).where(ProcessedMessage.processed_at < older_than)
    )
    outbox = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.sent_at.is_not(None), OutboxMessage.sent_at < older_than
        )
    )
    return PruneResult(
        processed_messages=int(getattr(ledger, "rowcount", 0) or 0),
        sent_outbox_messages=int(getattr(outbox, "rowcount", 0) or 0),
    )
