"""Closes sync runs left ``running`` by a process that died mid-sync.

The next sync of that customer closes them too, but a customer that is not synced again
(deactivated, or its commands all coalesced) would keep a ``running`` run for ever. A run is closed
only while its customer's lock is free, so a live sync is never touched, however long it takes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sync_engine import FailureKind, RunStatus
from sync_engine.failures import CustomerBusyError
from sync_engine.locks import customer_lock
from workflow_store.models import SyncRun

logger = logging.getLogger("sync_worker")

ABANDONED = "abandoned: the process running this sync stopped before it ended"


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def close_abandoned_runs(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    *,
    older_than: timedelta,
    clock: Callable[[], datetime] = _utcnow,
) -> int:
    """Mark runs ``running`` for longer than ``older_than`` whose customer lock is free as
    failed (abandoned); return how many."""
    cutoff = clock() - older_than
    async with sessions() as session:
        customers: list[uuid.UUID] = list(
            await session.scalars(
                select(SyncRun.customer_id)
                .where(SyncRun.status == RunStatus.RUNNING.value, SyncRun.started_at < cutoff)
                .distinct()
            )
        )
    closed = 0
    for customer_id in customers:
        try:
            async with (
                customer_lock(engine, customer_id, wait_seconds=0),
                sessions() as session,
                session.begin(),
            ):
                result = await session.execute(
                    update(SyncRun)
                    .where(
                        SyncRun.customer_id == customer_id,
                        SyncRun.status == RunStatus.RUNNING.value,
                        SyncRun.started_at < cutoff,
                    )
                    .values(
                        status=RunStatus.FAILED.value,
                        error_kind=FailureKind.TRANSIENT.value,
                        error_message=ABANDONED,
                        finished_at=clock(),
                    )
                )
                closed += int(getattr(result, "rowcount", 0) or 0)
        except CustomerBusyError:
            continue  # a live sync holds the lock: its run is not abandoned
    if closed:
        logger.info("Closed abandoned sync runs", extra={"runs": closed})
    return closed
