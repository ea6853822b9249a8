"""The sync routes' handlers: the application's sync requests and run reads, mapped to the
API's schemas (``CommandAccepted`` ids, ``SyncRunPublic``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from application import runs, sync
from application.uow import SqlUnitOfWork
from application.views import RunView
from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import FailureKind, RunStatus, SyncRun

from customer_api.schemas import Page, SyncRunPublic

__all__ = [
    "get_sync_run",
    "list_command_runs",
    "list_sync_runs",
    "not_retried",
    "replay_sync_run",
    "request_customer_sync",
    "request_sync_all",
]


def not_retried(max_attempts: int) -> Any:
    """SQL: the run is not an attempt the workers still retry (a transient failure before the
    last attempt) - so a failed run that passes this failed for good (the UI's failed list)."""
    return or_(
        SyncRun.status != RunStatus.FAILED,
        SyncRun.error_kind.is_(None),
        SyncRun.error_kind != FailureKind.TRANSIENT,
        SyncRun.attempt >= max_attempts,
    )


def _public(view: RunView) -> SyncRunPublic:
    return SyncRunPublic.model_validate(view, from_attributes=True)


async def request_customer_sync(
    uow: SqlUnitOfWork, customer_id: uuid.UUID, *, force: bool, allow_deletes: int | None = None
) -> str:
    queued = await sync.request_customer_sync(
        uow, customer_id, force=force, allow_deletes=allow_deletes
    )
    return queued.command_id


async def request_sync_all(uow: SqlUnitOfWork, *, force: bool) -> str:
    return (await sync.request_sync_all(uow, force=force)).command_id


async def replay_sync_run(
    uow: SqlUnitOfWork, run_id: uuid.UUID, *, force: bool, allow_deletes: int | None = None
) -> str:
    return (await sync.replay_run(uow, run_id, force=force, allow_deletes=allow_deletes)).command_id


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
    listing = await runs.list_runs(
        SqlUnitOfWork(session),
        page=page,
        page_size=page_size,
        customer=customer_id,
        statuses=statuses,
        reasons=reasons,
        where=where,
    )
    return Page[SyncRunPublic](
        items=[_public(r) for r in listing.items],
        total=listing.total,
        page=listing.page,
        page_size=listing.page_size,
    )


async def get_sync_run(session: AsyncSession, run_id: uuid.UUID) -> SyncRunPublic:
    return _public(await runs.get_run(SqlUnitOfWork(session), run_id))


async def list_command_runs(session: AsyncSession, command_id: str) -> list[SyncRunPublic]:
    """The attempts that ran for one command (a sync request), oldest first."""
    return [_public(r) for r in await runs.command_runs(SqlUnitOfWork(session), [command_id])]
