"""Pruning of records that only matter for a while.

`processed_messages` guards against redelivered duplicates, and sent `outbox` rows are a record of
what was published; both grow with every message. Pending outbox rows are never pruned (nor
parked ones: an operator decides about those).

`sync_runs` grows by a row per customer and pass (about 25 a day each). Runs older than their
window go, terminal failures (`failed`, `deletes_blocked`: the failed list) after a longer
window; a customer's latest run and runs still `running` always stay.

Every statement is served by an index (migration ``ops_outbox_retention``) and deletes in
bounded batches. On PostgreSQL the whole prune runs under a transaction-level advisory lock: when
several worker replicas prune at the same moment, one does the work and the others skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from .models import FAILED_RUN_STATUSES, OutboxMessage, ProcessedMessage, RunStatus, SyncRun

__all__ = ["FAILED_RUN_STATUSES", "PruneResult", "prune_delivery_records"]

# FAILED_RUN_STATUSES (the failed list) are kept for the longer window.
_KEPT_RUN_STATUSES: tuple[RunStatus, ...] = (RunStatus.RUNNING,)

# pg_try_advisory_xact_lock(int4, int4), next to the outbox relay's (0x5A57, 1).
_PRUNE_LOCK = (0x5A57, 2)

_BATCH = 5000


@dataclass(frozen=True)
class PruneResult:
    processed_messages: int
    sent_outbox_messages: int
    sync_runs: int = 0
    skipped: bool = False
    """Another replica held the prune lock, so this one did nothing."""


async def prune_delivery_records(
    session: AsyncSession,
    *,
    older_than: datetime,
    runs_older_than: datetime | None = None,
    failed_runs_older_than: datetime | None = None,
) -> PruneResult:
    """Delete ledger entries and sent outbox rows older than ``older_than`` and, when given,
    sync runs started before ``runs_older_than`` (terminal failures: ``failed_runs_older_than``,
    default the same). The caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        got = await session.scalar(select(func.pg_try_advisory_xact_lock(*_PRUNE_LOCK)))
        if not got:
            return PruneResult(0, 0, 0, skipped=True)
    ledger = await _delete_batches(
        session,
        ProcessedMessage,
        select(ProcessedMessage.consumer, ProcessedMessage.message_id).where(
            ProcessedMessage.processed_at < older_than
        ),
        (ProcessedMessage.consumer, ProcessedMessage.message_id),
    )
    outbox = await _delete_batches(
        session,
        OutboxMessage,
        select(OutboxMessage.id).where(
            OutboxMessage.sent_at.is_not(None), OutboxMessage.sent_at < older_than
        ),
        (OutboxMessage.id,),
    )
    runs = 0
    if runs_older_than is not None:
        failed_cutoff = failed_runs_older_than or runs_older_than
        runs = await _prune_runs(session, runs_older_than, exclude=FAILED_RUN_STATUSES)
        runs += await _prune_runs(session, failed_cutoff, only=FAILED_RUN_STATUSES)
    return PruneResult(processed_messages=ledger, sent_outbox_messages=outbox, sync_runs=runs)


async def _prune_runs(
    session: AsyncSession,
    cutoff: datetime,
    *,
    only: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> int:
    newer = aliased(SyncRun)
    stmt = select(SyncRun.id).where(
        SyncRun.started_at < cutoff,
        SyncRun.status.not_in(_KEPT_RUN_STATUSES + exclude),
        # The customer's latest run stays (ix_sync_runs_customer_id_started_at answers this).
        exists().where(
            newer.customer_id == SyncRun.customer_id, newer.started_at > SyncRun.started_at
        ),
    )
    if only:
        stmt = stmt.where(SyncRun.status.in_(only))
    return await _delete_batches(session, SyncRun, stmt, (SyncRun.id,))


async def _delete_batches(
    session: AsyncSession, model: Any, candidates: Any, key: tuple[Any, ...]
) -> int:
    """Delete the rows ``candidates`` selects (by ``key``), ``_BATCH`` at a time."""
    total = 0
    while True:
        batch = candidates.limit(_BATCH).subquery()
        if len(key) == 1:
            condition = key[0].in_(select(batch.c[0]))
        else:
            condition = exists().where(*(k == batch.c[i] for i, k in enumerate(key)))
        result = await session.execute(
            delete(model).where(condition).execution_options(synchronize_session=False)
        )
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < _BATCH:
            return total
