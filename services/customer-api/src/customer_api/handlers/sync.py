"""Sync triggers (commands through the outbox) and sync-run history (reads)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sync_messages import SyncAllCustomers, SyncCustomerWorkflows, topics
from workflow_store.models import (
    REPLAYABLE_RUN_STATUSES,
    Customer,
    FailureKind,
    RunStatus,
    SyncReason,
    SyncRun,
)

from customer_api.errors import AllowDeletesNotApplicableError, NotFoundError, RunNotReplayableError
from customer_api.schemas import Page, SyncRunPublic
from customer_api.uow import UnitOfWork

__all__ = [
    "get_sync_run",
    "list_command_runs",
    "list_sync_runs",
    "not_retried",
    "replay_sync_run",
    "request_customer_sync",
    "request_sync_all",
]

logger = logging.getLogger(__name__)


def not_retried(max_attempts: int) -> Any:
    """SQL: the run is not an attempt the workers still retry (a transient failure before the
    last attempt) - so a failed run that passes this failed for good."""
    return or_(
        SyncRun.status != RunStatus.FAILED,
        SyncRun.error_kind.is_(None),
        SyncRun.error_kind != FailureKind.TRANSIENT,
        SyncRun.attempt >= max_attempts,
    )


_RUN_COLUMNS = (
    SyncRun.id,
    SyncRun.customer_id,
    Customer.name.label("customer_name"),
    SyncRun.command_id,
    SyncRun.reason,
    SyncRun.attempt,
    SyncRun.forced,
    SyncRun.status,
    SyncRun.skip_reason,
    SyncRun.pages,
    SyncRun.created,
    SyncRun.updated,
    SyncRun.deleted,
    SyncRun.unchanged,
    SyncRun.total,
    SyncRun.blocked_deletes,
    SyncRun.error_kind,
    SyncRun.error_message,
    SyncRun.zuora_request_id,
    SyncRun.started_at,
    SyncRun.finished_at,
    SyncRun.duration_ms,
    SyncRun.replay_of,
    SyncRun.definitions_fetched,
    SyncRun.definitions_changed,
    SyncRun.definitions_failed,
)


def _run_public(row: Any) -> SyncRunPublic:
    return SyncRunPublic.model_validate(dict(row._mapping))


async def request_customer_sync(
    uow: UnitOfWork, customer_id: uuid.UUID, *, force: bool, allow_deletes: int | None = None
) -> str:
    """Queue a manual ``SyncCustomerWorkflows``; returns its command id. ``force`` skips
    coalescing; ``allow_deletes`` bounds the deletions a guarded run may make (it expires)."""
    async with uow.transaction() as session:
        exists = await session.scalar(select(Customer.id).where(Customer.id == customer_id))
        if exists is None:
            raise NotFoundError(f"Customer {customer_id} not found")
        command = SyncCustomerWorkflows(
            customer_id=customer_id,
            reason=SyncReason.MANUAL,
            force=force,
            allow_deletes=allow_deletes,
        )
        uow.publish(topics.SYNC_COMMANDS, command, key=str(customer_id))
    logger.info(
        "Sync requested: customer=%s command=%s force=%s allow_deletes=%s",
        customer_id,
        command.id,
        force,
        allow_deletes,
    )
    return command.id


async def request_sync_all(uow: UnitOfWork, *, force: bool) -> str:
    """Queue a manual ``SyncAllCustomers`` (a fresh slot, so it never collapses with another)."""
    command = SyncAllCustomers.for_slot(SyncReason.MANUAL, str(uuid.uuid4()), force=force)
    async with uow.transaction():
        uow.publish(topics.SYNC_ALL, command, key=None)
    logger.info("Sync of all customers requested: command=%s force=%s", command.id, force)
    return command.id


async def list_sync_runs(
    session: AsyncSession,
    *,
    page: int,
    page_size: int,
    customer_id: uuid.UUID | None = None,
    statuses: Sequence[RunStatus] = (),
    reasons: Sequence[str] = (),
    where: Sequence[Any] = (),
) -> Page[SyncRunPublic]:
    """Runs, newest first; ``customer_id`` must exist when given (else 404); ``where``: more
    SQL conditions on ``SyncRun``."""
    conditions: list[Any] = list(where)
    if customer_id is not None:
        conditions.append(SyncRun.customer_id == customer_id)
    if statuses:
        conditions.append(SyncRun.status.in_(sorted(set(statuses))))
    if reasons:
        conditions.append(SyncRun.reason.in_(sorted(set(reasons))))
    count = select(func.count(SyncRun.id)).where(*conditions)
    if customer_id is not None:
        head = (
            await session.execute(
                select(Customer.id, count.scalar_subquery()).where(Customer.id == customer_id)
            )
        ).first()
        if head is None:
            raise NotFoundError(f"Customer {customer_id} not found")
        total = int(head[1])
    elif not conditions and (estimate := await _estimated_run_count(session)) is not None:
        total = estimate
    else:
        total = int(await session.scalar(count) or 0)
    items: list[SyncRunPublic] = []
    offset = (page - 1) * page_size
    if total > offset:
        stmt = (
            select(*_RUN_COLUMNS)
            .join(Customer, Customer.id == SyncRun.customer_id)
            .where(*conditions)
            .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
            .offset(offset)
            .limit(page_size)
        )
        items = [_run_public(row) for row in (await session.execute(stmt)).all()]
    return Page[SyncRunPublic](items=items, total=total, page=page, page_size=page_size)


EXACT_COUNT_UP_TO = 100_000
"""Above this many runs the unfiltered list reports PostgreSQL's estimate as ``total``."""


async def _estimated_run_count(session: AsyncSession) -> int | None:
    """The planner's row estimate for ``sync_runs`` when it is large, else None (count).

    Counting the whole table on every unfiltered request is a full index scan; with retention
    the table holds millions of rows at scale. The estimate comes from the last ANALYZE.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    estimate = await session.scalar(
        text("SELECT reltuples::bigint FROM pg_class WHERE oid = 'sync_runs'::regclass")
    )
    if estimate is None or int(estimate) <= EXACT_COUNT_UP_TO:
        return None
    return int(estimate)


async def get_sync_run(session: AsyncSession, run_id: uuid.UUID) -> SyncRunPublic:
    stmt = (
        select(*_RUN_COLUMNS)
        .join(Customer, Customer.id == SyncRun.customer_id)
        .where(SyncRun.id == run_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFoundError(f"Sync run {run_id} not found")
    return _run_public(row)


async def replay_sync_run(
    uow: UnitOfWork, run_id: uuid.UUID, *, force: bool, allow_deletes: int | None = None
) -> str:
    """Queue ``SyncCustomerWorkflows(reason="replay", replay_of=run)`` for a failed or
    deletes-blocked run; 409 for any other status."""
    async with uow.transaction() as session:
        run = await session.scalar(select(SyncRun).where(SyncRun.id == run_id))
        if run is None:
            raise NotFoundError(f"Sync run {run_id} not found")
        if run.status not in REPLAYABLE_RUN_STATUSES:
            raise RunNotReplayableError(
                f"Only failed or deletes_blocked runs can be replayed; this run is {run.status}"
            )
        if allow_deletes is not None and run.status != RunStatus.DELETES_BLOCKED:
            raise AllowDeletesNotApplicableError(
                f"allow_deletes applies to the replay of a deletes_blocked run; this run is "
                f"{run.status}"
            )
        command = SyncCustomerWorkflows(
            customer_id=run.customer_id,
            reason=SyncReason.REPLAY,
            force=force,
            replay_of=run.id,
            allow_deletes=allow_deletes,
        )
        uow.publish(topics.SYNC_COMMANDS, command, key=str(run.customer_id))
    logger.info("Replay requested: run=%s command=%s force=%s", run_id, command.id, force)
    return command.id


async def list_command_runs(session: AsyncSession, command_id: str) -> list[SyncRunPublic]:
    """The attempts that ran for one command (a sync request), oldest first."""
    stmt = (
        select(*_RUN_COLUMNS)
        .join(Customer, Customer.id == SyncRun.customer_id)
        .where(SyncRun.command_id == command_id)
        .order_by(SyncRun.started_at, SyncRun.attempt)
        .limit(100)
    )
    return [_run_public(row) for row in (await session.execute(stmt)).all()]
