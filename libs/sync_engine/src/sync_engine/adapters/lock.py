"""The customer lock port over :func:`sync_engine.locks.customer_lock` (an advisory lock on the
process's one lock connection to PostgreSQL; in-process lock + lock file on SQLite). Its fencing
check runs inside the write transaction: :meth:`sync_engine.adapters.sql.SqlTransaction.fence`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from sync_engine.locks import HeldLock, customer_lock


class DatabaseCustomerLock:
    def __init__(self, engine: AsyncEngine, *, wait_seconds: float) -> None:
        self._engine = engine
        self._wait_seconds = wait_seconds

    @asynccontextmanager
    async def hold(self, customer_id: uuid.UUID) -> AsyncIterator[HeldLock]:
        async with customer_lock(
            self._engine, customer_id, wait_seconds=self._wait_seconds
        ) as held:
            yield held
