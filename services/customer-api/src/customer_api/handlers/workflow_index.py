"""Workflows across customers, for the operators' list: filters, sort, one page, the total.

Built for a table of 100,000 rows: the page query reads only the listed columns (never ``raw``)
joined to the customer's name, and walks an index in the sort's order (migration
``0003_ui_read_path``) so a page reads about a page of rows. The total, without a search or a
trigger filter, is a sum of the per-customer counts the sync keeps on the customer rows
(:mod:`workflow_store.workflow_counts`); with one, its own ``count(*)`` over the same filters (a
window count would make PostgreSQL sort every match before taking the page).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from application.workflow_reads import TRIGGER_COLUMNS
from sqlalchemy import ColumnElement, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import Customer, StoredWorkflow
from workflow_store.workflow_counts import is_active_workflow

__all__ = [
    "INDEX_SORTS",
    "TRIGGERS",
    "WorkflowIndexFilters",
    "WorkflowIndexPage",
    "WorkflowIndexRow",
    "WorkflowIndexSort",
    "WorkflowKey",
    "count_active_customers",
    "list_all_workflows",
    "total_is_counted",
    "workflow_key",
]

W = StoredWorkflow
C = Customer

WorkflowIndexSort = Literal[
    "name", "-name", "customer", "-customer", "state", "-state", "updated", "-updated",
    "zuora_id", "-zuora_id",
]  # fmt: skip
INDEX_SORTS: tuple[str, ...] = get_args(WorkflowIndexSort)
WorkflowState = Literal["active", "inactive"]
WorkflowTriggerName = Literal["callout", "ondemand", "scheduled"]
TRIGGERS: tuple[str, ...] = get_args(WorkflowTriggerName)

_SORT_COLUMNS: dict[str, Any] = {
    "name": W.name,
    "customer": C.name,
    "state": W.status,
    "updated": W.zuora_updated_at,
    "zuora_id": W.zuora_id,
}


@dataclass(frozen=True)
class WorkflowIndexFilters:
    customer_id: uuid.UUID | None = None
    q: str | None = None
    state: WorkflowState | None = None
    trigger: WorkflowTriggerName | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.customer_id is not None:
            conditions.append(W.customer_id == self.customer_id)
        if self.q:
            text_match = W.name.icontains(self.q, autoescape=True)
            number = self.q.strip()
            if number.isdigit() and len(number) < 19:
                conditions.append(or_(text_match, W.zuora_id == int(number)))
            else:
                conditions.append(text_match)
        if self.state == "active":
            conditions.append(is_active_workflow())
        elif self.state == "inactive":
            # Not active, as the dashboard counts it (total minus active): one rule for both.
            conditions.append(or_(W.status.is_(None), not_(is_active_workflow())))
        if self.trigger is not None:
            conditions.append(TRIGGER_COLUMNS[self.trigger].is_(True))
        return conditions


@dataclass(frozen=True)
class WorkflowIndexRow:
    id: int
    zuora_id: int
    name: str
    status: str | None
    active_version: str | None
    triggers: tuple[str, ...]
    zuora_updated_at: datetime | None
    customer_id: uuid.UUID
    customer_name: str


@dataclass(frozen=True)
class WorkflowIndexPage:
    items: list[WorkflowIndexRow]
    total: int
    page: int
    page_size: int


def _order_by(sort: WorkflowIndexSort) -> list[Any]:
    descending = sort.startswith("-")
    column = _SORT_COLUMNS[sort.lstrip("-")]
    # A missing value sorts after every value ascending and before them descending, as
    # PostgreSQL orders NULL by default: then one ascending index serves both directions (read
    # backwards for descending). Said explicitly for SQLite, whose NULL is the smallest value.
    primary = column.desc().nulls_first() if descending else column.asc().nulls_last()
    if column is W.name:
        return [primary, W.id.desc() if descending else W.id.asc()]
    # Rows equal on the column (one customer's, one state's) read best in name order.
    return [primary, W.name.asc(), W.id.asc()]


def _row(row: Any) -> WorkflowIndexRow:
    flags = {
        "callout": row.callout_trigger,
        "ondemand": row.ondemand_trigger,
        "scheduled": row.scheduled_trigger,
    }
    return WorkflowIndexRow(
        id=row.id,
        zuora_id=row.zuora_id,
        name=row.name,
        status=row.status,
        active_version=row.active_version,
        triggers=tuple(name for name, on in flags.items() if on),
        zuora_updated_at=row.zuora_updated_at,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
    )


async def list_all_workflows(
    session: AsyncSession,
    filters: WorkflowIndexFilters,
    *,
    sort: WorkflowIndexSort = "customer",
    page: int = 1,
    page_size: int = 50,
    count_limit: int | None = None,
) -> WorkflowIndexPage:
    """One page and the total. With ``count_limit``, a total that must be counted (a search or
    a trigger filter) stops at ``count_limit + 1``: a total above ``count_limit`` means "more
    than that" (the rows past the limit are never read)."""
    stmt = (
        select(
            W.id,
            W.zuora_id,
            W.name,
            W.status,
            W.active_version,
            W.callout_trigger,
            W.ondemand_trigger,
            W.scheduled_trigger,
            W.zuora_updated_at,
            C.id.label("customer_id"),
            C.name.label("customer_name"),
        )
        .join(C, C.id == W.customer_id)
        .where(*filters.conditions())
        .order_by(*_order_by(sort))
    )
    rows = (await session.execute(stmt.offset((page - 1) * page_size).limit(page_size))).all()
    return WorkflowIndexPage(
        items=[_row(row) for row in rows],
        total=await _total(session, filters, count_limit),
        page=page,
        page_size=page_size,
    )


def total_is_counted(filters: WorkflowIndexFilters) -> bool:
    """The total needs a ``count(*)`` over the matches (so ``count_limit`` applies to it); the
    others are sums of the customers' counts, exact at any size."""
    return bool(filters.q) or filters.trigger is not None


async def _total(
    session: AsyncSession, filters: WorkflowIndexFilters, count_limit: int | None
) -> int:
    if total_is_counted(filters):
        matches = select(W.id).where(*filters.conditions())
        if count_limit is not None:
            # An unselective search ("invoice": a quarter of 100,000 rows) stops after the
            # limit instead of testing ILIKE on every row.
            matches = matches.limit(count_limit + 1)
        counted = select(func.count()).select_from(matches.subquery())
        return int((await session.execute(counted)).scalar_one())
    # Customer and state alone: the counts on the customer rows (one row, or 1,000 summed).
    total, active = func.sum(C.workflow_count), func.sum(C.active_workflow_count)
    figure = {None: total, "active": active, "inactive": total - active}[filters.state]
    stmt = select(func.coalesce(figure, 0))
    if filters.customer_id is not None:
        stmt = stmt.where(C.id == filters.customer_id)
    return int((await session.execute(stmt)).scalar_one())


async def count_active_customers(session: AsyncSession) -> int:
    """How many customers a sync-all fans out to (the worker skips inactive ones)."""
    return int((await session.execute(select(func.count()).where(C.active.is_(True)))).scalar_one())


@dataclass(frozen=True)
class WorkflowKey:
    """Where a stored workflow row belongs: the UI addresses workflows by their row id."""

    id: int
    customer_id: uuid.UUID
    customer_name: str
    zuora_id: int


async def workflow_key(session: AsyncSession, workflow_id: int) -> WorkflowKey | None:
    row = (
        await session.execute(
            select(W.customer_id, C.name, W.zuora_id)
            .join(C, C.id == W.customer_id)
            .where(W.id == workflow_id)
        )
    ).first()
    return None if row is None else WorkflowKey(workflow_id, row[0], row[1], row[2])
