"""Sync triggers, sync-run history, the failed list and replay."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from workflow_store.models import RunStatus

from customer_api.deps import PageDep, PageSizeDep, SessionDep, UowDep
from customer_api.handlers import sync
from customer_api.problems import problem_responses
from customer_api.schemas import (
    CommandAccepted,
    Page,
    ReplayRequest,
    SyncAllRequest,
    SyncRequest,
    SyncRunPublic,
)

router = APIRouter(tags=["sync"])

_ACCEPTED = status.HTTP_202_ACCEPTED


@router.post(
    "/customers/{customer_id}/sync",
    status_code=_ACCEPTED,
    summary="Queue a sync of one customer",
    responses=problem_responses(404, 422),
)
async def sync_customer(
    customer_id: uuid.UUID, uow: UowDep, body: SyncRequest | None = None
) -> CommandAccepted:
    body = body or SyncRequest()
    return CommandAccepted(
        command_id=await sync.request_customer_sync(
            uow, customer_id, force=body.force, allow_deletes=body.allow_deletes
        )
    )


@router.post(
    "/sync",
    status_code=_ACCEPTED,
    summary="Queue a sync of every customer (allow_deletes is refused: 422)",
    responses=problem_responses(422),
)
async def sync_all(uow: UowDep, body: SyncAllRequest | None = None) -> CommandAccepted:
    force = body.force if body is not None else False
    return CommandAccepted(command_id=await sync.request_sync_all(uow, force=force))


@router.get(
    "/customers/{customer_id}/sync-runs",
    summary="A customer's sync runs, newest first",
    responses=problem_responses(404, 422),
)
async def customer_sync_runs(
    customer_id: uuid.UUID, session: SessionDep, page: PageDep = 1, page_size: PageSizeDep = 50
) -> Page[SyncRunPublic]:
    return await sync.list_sync_runs(
        session, page=page, page_size=page_size, customer_id=customer_id
    )


@router.get(
    "/sync-runs",
    summary="Sync runs of all customers, newest first (status=failed: the failed list)",
    responses=problem_responses(422),
)
async def sync_runs(
    session: SessionDep,
    page: PageDep = 1,
    page_size: PageSizeDep = 50,
    status: Annotated[
        list[RunStatus] | None, Query(description="Only runs with any of these statuses.")
    ] = None,
) -> Page[SyncRunPublic]:
    return await sync.list_sync_runs(session, page=page, page_size=page_size, statuses=status or ())


@router.get("/sync-runs/{run_id}", summary="One sync run", responses=problem_responses(404, 422))
async def sync_run(run_id: uuid.UUID, session: SessionDep) -> SyncRunPublic:
    return await sync.get_sync_run(session, run_id)


@router.post(
    "/sync-runs/{run_id}/replay",
    status_code=_ACCEPTED,
    summary="Replay a failed (or deletes_blocked) run",
    responses=problem_responses(404, 409, 422),
    description="allow_deletes only on the replay of a deletes_blocked run (else 422).",
)
async def replay_sync_run(
    run_id: uuid.UUID, uow: UowDep, body: ReplayRequest | None = None
) -> CommandAccepted:
    body = body or ReplayRequest()
    return CommandAccepted(
        command_id=await sync.replay_sync_run(
            uow, run_id, force=body.force, allow_deletes=body.allow_deletes
        )
    )
