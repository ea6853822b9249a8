"""Reading sync runs: one run, listings, the failed list, the attempts of commands."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from workflow_store.models import FAILED_RUN_STATUSES

from application.errors import NotFound
from application.ports import UnitOfWork
from application.views import Page, RunView

__all__ = ["command_runs", "get_run", "list_failed", "list_runs"]


async def get_run(uow: UnitOfWork, run_id: uuid.UUID) -> RunView:
    view = await uow.runs.view(run_id)
    if view is None:
        raise NotFound(f"Sync run {run_id} not found")
    return view


async def list_runs(
    uow: UnitOfWork,
    *,
    page: int = 1,
    page_size: int = 50,
    customer: str | uuid.UUID | None = None,
    statuses: Sequence[str] = (),
    reasons: Sequence[str] = (),
    where: Sequence[Any] = (),
) -> Page[RunView]:
    """Runs, newest first; ``customer`` (id, else name) must exist when given (else
    ``NotFound``); ``where``: the adapter's extra conditions (the UI's filters)."""
    customer_id: uuid.UUID | None = None
    if isinstance(customer, uuid.UUID):
        customer_id = customer
    elif customer is not None:
        found = await uow.customers.find(customer)
        if found is None:
            raise NotFound(f"Customer {customer} not found")
        customer_id = found.id
    listed = await uow.runs.page(
        page=page,
        page_size=page_size,
        customer_id=customer_id,
        statuses=statuses,
        reasons=reasons,
        where=where,
    )
    if listed is None:
        raise NotFound(f"Customer {customer} not found")
    items, total = listed
    return Page(items=items, total=total, page=page, page_size=page_size)


async def list_failed(uow: UnitOfWork, *, limit: int = 50) -> list[RunView]:
    """The failed list: runs that failed or were blocked by the deletion guard, newest first
    (the ones ``replay_run`` accepts)."""
    listed = await uow.runs.page(page=1, page_size=limit, statuses=FAILED_RUN_STATUSES)
    return [] if listed is None else listed[0]


async def command_runs(uow: UnitOfWork, command_ids: Sequence[str]) -> list[RunView]:
    """The attempts that ran for these commands (sync requests), oldest first."""
    return await uow.runs.for_commands(command_ids)
