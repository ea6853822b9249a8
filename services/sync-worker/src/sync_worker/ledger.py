"""Idempotency ledger (processed_messages) and run bookkeeping the worker adds to the engine's."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from workflow_store.models import ProcessedMessage, SyncRun

RETRY_SCHEDULED = "retry_scheduled"


class ProcessedLedger:
    """Remembers which message ids a consumer finished, so redelivered duplicates are no-ops."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def seen(self, consumer: str, message_id: str) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(ProcessedMessage.message_id).where(
                    ProcessedMessage.consumer == consumer,
                    ProcessedMessage.message_id == message_id,
                )
            )
        return found is not None

    async def mark(self, consumer: str, message_id: str) -> None:
        try:
            async with self._sessions() as session, session.begin():
                session.add(ProcessedMessage(consumer=consumer, message_id=message_id))
        except IntegrityError:
            pass  # a duplicate delivery finished first: already recorded

    async def mark_retry_scheduled(self, run_id: uuid.UUID) -> None:
        """An attempt that will be retried is not a failure an operator must act on (yet)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SyncRun).where(SyncRun.id == run_id).values(status=RETRY_SCHEDULED)
            )
