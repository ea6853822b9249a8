"""Unit of work: one database transaction; wakes the outbox relay after a commit that queued
messages, so events leave within milliseconds instead of the next poll."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from event_bus.outbox import enqueue
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["UnitOfWork"]


class UnitOfWork:
    def __init__(self, session: AsyncSession, on_commit: Callable[[], None] | None = None) -> None:
        self.session = session
        self._on_commit = on_commit
        self._queued = 0

    async def end_read(self) -> None:
        """End a transaction that only read (loaded objects stay usable)."""
        if self.session.in_transaction():
            await self.session.commit()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Commit on success, roll back on error; the session must have no open transaction."""
        await self.end_read()  # a read before may have autobegun one
        self._queued = 0
        async with self.session.begin():
            yield self.session
        if self._queued and self._on_commit is not None:
            self._on_commit()

    def publish(self, topic: str, message: BaseModel, *, key: str | None) -> None:
        """Queue ``message`` in the outbox, inside the current transaction."""
        enqueue(self.session, topic=topic, message=message, key=key)
        self._queued += 1
