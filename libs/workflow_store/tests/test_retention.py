"""Old delivery records are pruned; recent ones and pending outbox rows are kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import OutboxMessage, ProcessedMessage
from workflow_store.retention import prune_delivery_records

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def outbox(sent_at: datetime | None, created_at: datetime) -> OutboxMessage:
    return OutboxMessage(
        id=uuid.uuid4(), topic="t", key=None, payload={}, created_at=created_at, sent_at=sent_at
    )


async def test_prunes_only_old_processed_and_sent_rows(session: AsyncSession) -> None:
    old, recent = NOW - timedelta(days=10), NOW - timedelta(hours=1)
    session.add_all(
        [
            ProcessedMessage(consumer="c", message_id="old", processed_at=old),
            ProcessedMessage(consumer="c", message_id="recent", processed_at=recent),
            outbox(sent_at=old, created_at=old),  # sent long ago: pruned
            outbox(sent_at=recent, created_at=old),  # sent recently: kept
            outbox(sent_at=None, created_at=old),  # still pending: never pruned
        ]
    )
    await session.commit()

    result = await prune_delivery_records(session, older_than=NOW - timedelta(days=7))
    await session.commit()

    assert (result.processed_messages, result.sent_outbox_messages) == (1, 1)
    ids = set(await session.scalars(select(ProcessedMessage.message_id)))
    assert ids == {"recent"}
    assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 2
    pending = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
    )
    assert pending == 1
