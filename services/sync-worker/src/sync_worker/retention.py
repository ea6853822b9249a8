"""The retention job: prune processed-message ids, sent outbox rows and old sync runs.

Run every ``WORKER_PRUNE_INTERVAL_SECONDS`` by the worker runtime; the windows are the
``WORKER_*_RETENTION_DAYS`` settings (one replica prunes at a time: ``workflow_store.retention``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from workflow_store.retention import PruneResult, prune_delivery_records

from sync_worker.settings import WorkerSettings

__all__ = ["prune_once"]

logger = logging.getLogger("sync_worker")


async def prune_once(
    sessions: async_sessionmaker[AsyncSession],
    settings: WorkerSettings,
    *,
    now: datetime | None = None,
) -> PruneResult:
    """Drop what is older than the retention windows, in one transaction."""
    now = now if now is not None else datetime.now(UTC)
    async with sessions() as session, session.begin():
        result = await prune_delivery_records(
            session,
            older_than=now - timedelta(days=settings.ledger_retention_days),
            runs_older_than=now - timedelta(days=settings.sync_run_retention_days),
            failed_runs_older_than=now - timedelta(days=settings.failed_run_retention_days),
        )
    if result.processed_messages or result.sent_outbox_messages or result.sync_runs:
        logger.info(
            "Pruned delivery records and old sync runs",
            extra={
                "processed_messages": result.processed_messages,
                "sent_outbox_messages": result.sent_outbox_messages,
                "sync_runs": result.sync_runs,
            },
        )
    return result
