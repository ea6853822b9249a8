"""Runs: the history (filters by status, customer, reason), one run, the failed list with
replay one / replay all shown."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import (
    FAILED_RUN_STATUSES,
    REPLAYABLE_RUN_STATUSES,
    Customer,
    RunStatus,
    SyncReason,
)

from customer_api.deps import SessionDep, UowDep
from customer_api.errors import NotFoundError, RunNotReplayableError
from customer_api.handlers import sync
from customer_api.schemas import Page, SyncRunPublic
from customer_api.ui.auth import UiContext, UiDep
from customer_api.ui.pages.customers import new_card, queued
from customer_api.ui.runcard import outcome_sentence

router = APIRouter()

PAGE_SIZE = 50
CUSTOMER_CHOICES = 500
STATUSES: tuple[str, ...] = tuple(RunStatus)
REASONS: tuple[str, ...] = tuple(SyncReason)
FAILED_STATUSES: tuple[str, ...] = FAILED_RUN_STATUSES


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) <= 1_000_000 else 1


def _customer_id(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


async def _customer_choices(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    rows = await session.execute(
        select(Customer.id, Customer.name).order_by(Customer.name).limit(CUSTOMER_CHOICES)
    )
    return [(cid, name) for cid, name in rows.all()]


async def _listing(
    request: Request,
    ui: UiContext,
    session: AsyncSession,
    *,
    template: str,
    section: str,
    allowed_statuses: tuple[str, ...],
    status: str | None,
    customer: str | None,
    reason: str | None,
    page: str | None,
    extra: dict[str, Any] | None = None,
) -> Response:
    chosen_status = status if status in allowed_statuses else None
    chosen_reason = reason if reason in REASONS else None
    customer_id = _customer_id(customer)
    statuses: list[Any] = [chosen_status] if chosen_status else []
    if not statuses and section == "failed":
        statuses = list(FAILED_STATUSES)
    try:
        listing = await sync.list_sync_runs(
            session,
            page=_page_number(page),
            page_size=PAGE_SIZE,
            customer_id=customer_id,
            statuses=statuses,
            reasons=[chosen_reason] if chosen_reason else [],
            where=[sync.not_retried(ui.max_attempts)] if section == "failed" else [],
        )
    except NotFoundError:  # an unknown customer in the URL: nothing matches
        listing = Page[SyncRunPublic](items=[], total=0, page=1, page_size=PAGE_SIZE)
    return ui.templates.render(
        request,
        template,
        {
            "section": section,
            "listing": listing,
            "run_rows": listing.items,
            "filters": {
                "status": chosen_status,
                "customer": str(customer_id) if customer_id else None,
                "reason": chosen_reason,
            },
            "statuses": allowed_statuses,
            "reasons": REASONS,
            "customers": await _customer_choices(session),
            **(extra or {}),
        },
    )


@router.get("/runs", include_in_schema=False)
async def run_list(
    request: Request,
    ui: UiDep,
    session: SessionDep,
    status: Annotated[str | None, Query()] = None,
    customer: Annotated[str | None, Query()] = None,
    reason: Annotated[str | None, Query()] = None,
    page: Annotated[str | None, Query()] = None,
) -> Response:
    return await _listing(
        request,
        ui,
        session,
        template="runs/list.html",
        section="runs",
        allowed_statuses=STATUSES,
        status=status,
        customer=customer,
        reason=reason,
        page=page,
    )


@router.get("/failed", include_in_schema=False)
async def failed_list(
    request: Request,
    ui: UiDep,
    session: SessionDep,
    status: Annotated[str | None, Query()] = None,
    customer: Annotated[str | None, Query()] = None,
    reason: Annotated[str | None, Query()] = None,
    page: Annotated[str | None, Query()] = None,
) -> Response:
    return await _listing(
        request,
        ui,
        session,
        template="runs/failed.html",
        section="failed",
        allowed_statuses=FAILED_STATUSES,
        status=status,
        customer=customer,
        reason=reason,
        page=page,
        extra={"replayed": request.query_params.get("replayed")},
    )


@router.get("/runs/{run_id}", include_in_schema=False)
async def run_page(request: Request, run_id: uuid.UUID, ui: UiDep, session: SessionDep) -> Response:
    run = await sync.get_sync_run(session, run_id)
    attempts = await sync.list_command_runs(session, run.command_id) if run.command_id else [run]
    return ui.templates.render(
        request,
        "runs/detail.html",
        {
            "section": "runs",
            "run": run,
            "attempts": attempts,
            "sentence": outcome_sentence(run) if run.status != RunStatus.RUNNING else None,
            "replayable": run.status in REPLAYABLE_RUN_STATUSES,
        },
    )


@router.post("/runs/{run_id}/replay", include_in_schema=False)
async def replay_run(
    request: Request, run_id: uuid.UUID, ui: UiDep, uow: UowDep, session: SessionDep
) -> Response:
    run = await sync.get_sync_run(session, run_id)
    await uow.end_read()
    command_id = await sync.replay_sync_run(uow, run_id, force=False)
    return queued(request, ui, new_card(ui, command_id, run.customer_id))


@router.post("/runs/{run_id}/apply-deletions", include_in_schema=False)
async def apply_deletions(
    request: Request, run_id: uuid.UUID, ui: UiDep, uow: UowDep, session: SessionDep
) -> Response:
    """Replay a deletes_blocked run allowing exactly the deletions it reported (the number the
    operator reviewed): if Zuora now lists even more missing, the guard blocks again."""
    run = await sync.get_sync_run(session, run_id)
    if run.status != RunStatus.DELETES_BLOCKED or not run.blocked_deletes:
        raise RunNotReplayableError(
            "Only a run blocked by the deletion guard has deletions to apply"
        )
    await uow.end_read()
    command_id = await sync.replay_sync_run(
        uow, run_id, force=False, allow_deletes=run.blocked_deletes
    )
    return queued(request, ui, new_card(ui, command_id, run.customer_id))


@router.post("/failed/replay", include_in_schema=False)
async def replay_shown(request: Request, ui: UiDep, uow: UowDep) -> Response:
    """Replay the runs the page showed (their ids came with the form): says how many."""
    form = await request.form()
    run_ids = [_customer_id(str(v)) for v in form.getlist("run_id")][:PAGE_SIZE]
    requeued = refused = 0
    for run_id in run_ids:
        if run_id is None:
            refused += 1
            continue
        try:
            await sync.replay_sync_run(uow, run_id, force=False)
        except (NotFoundError, RunNotReplayableError):
            refused += 1
        else:
            requeued += 1
    back = str(form.get("back") or "")
    query = back if back.startswith("?") and len(back) < 500 else "?"
    separator = "" if query == "?" else "&"
    return ui.templates.render(
        request,
        "runs/replayed.html",
        {
            "section": "failed",
            "requeued": requeued,
            "refused": refused,
            "back": f"/ui/failed{query}{separator}replayed={requeued}-{int(time.time())}",
        },
    )
