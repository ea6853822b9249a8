"""Workflow reads, straight from the database (never from Zuora).

The list is built for speed: one query fetches the page with only the listed columns (never
``raw``), the customer's last sync time and the total; an empty page costs one more query (does the
customer exist, how many match). No per-row queries.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import Customer, StoredWorkflow

from customer_api.errors import NotFoundError
from customer_api.schemas import (
    WorkflowDetail,
    WorkflowSort,
    WorkflowTrigger,
)

__all__ = ["get_workflow", "list_workflows"]

W = StoredWorkflow

_SUMMARY_COLUMNS = (
    W.zuora_id,
    W.name,
    W.description,
    W.status,
    W.active_version_id,
    W.active_version,
    W.active_version_status,
    W.active_version_type,
    W.callout_trigger,
    W.ondemand_trigger,
    W.scheduled_trigger,
    W.interval,
    W.timezone,
    W.priority,
    W.zuora_created_at,
    W.zuora_updated_at,
)

_TRIGGER_COLUMNS = {
    "callout": W.callout_trigger,
    "ondemand": W.ondemand_trigger,
    "scheduled": W.scheduled_trigger,
}

_SORT_COLUMNS = {"name": W.name, "zuora_id": W.zuora_id, "zuora_updated_at": W.zuora_updated_at}


def _not_found(customer_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"Customer {customer_id} not found")


def _filters(
    customer_id: uuid.UUID, q: str | None, status: str | None, trigger: WorkflowTrigger | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [W.customer_id == customer_id]
    if q:
        conditions.append(W.name.icontains(q, autoescape=True))
    if status:
        conditions.append(func.lower(W.status) == status.lower())
    if trigger is not None:
        conditions.append(_TRIGGER_COLUMNS[trigger].is_(True))
    return conditions


def _order_by(sort: WorkflowSort) -> list[Any]:
    descending = sort.startswith("-")
    column = _SORT_COLUMNS[sort.lstrip("-")]
    primary = column.desc() if descending else column.asc()
    if column is W.zuora_updated_at:
        primary = primary.nulls_last()
    tie = W.zuora_id.desc() if descending else W.zuora_id.asc()
    return [primary] if column is W.zuora_id else [primary, tie]


def _active_version(row: Any) -> dict[str, Any] | None:
    if (
        row.active_version_id is None
        and row.active_version is None
        and row.active_version_status is None
        and row.active_version_type is None
    ):
        return None
    return {
        "id": row.active_version_id,
        "version": row.active_version,
        "status": row.active_version_status,
        "type": row.active_version_type,
    }


def _summary_fields(row: Any, last_synced_at: Any) -> dict[str, Any]:
    return {
        "zuora_id": row.zuora_id,
        "name": row.name,
        "description": row.description,
        "status": row.status,
        "active_version": _active_version(row),
        "callout_trigger": row.callout_trigger,
        "ondemand_trigger": row.ondemand_trigger,
        "scheduled_trigger": row.scheduled_trigger,
        "interval": row.interval,
        "timezone": row.timezone,
        "priority": row.priority,
        "zuora_created_at": row.zuora_created_at,
        "zuora_updated_at": row.zuora_updated_at,
        "last_synced_at": last_synced_at,
    }


async def list_workflows(
    session: AsyncSession,
    customer_id: uuid.UUID,
    *,
    page: int,
    page_size: int,
    q: str | None = None,
    status: str | None = None,
    trigger: WorkflowTrigger | None = None,
    sort: WorkflowSort = "name",
) -> dict[str, Any]:
    """The page as plain JSON-ready data (the route serialises it directly: the read path is the
    hottest of the API, and validating rows we just read from our own table bought nothing)."""
    conditions = _filters(customer_id, q, status, trigger)
    offset = (page - 1) * page_size
    # Common case, one round trip: the page, the customer's last sync and the total (a window
    # count is computed before LIMIT/OFFSET, so it counts every match).
    stmt = (
        select(*_SUMMARY_COLUMNS, Customer.last_successful_sync_at, func.count().over())
        .join(Customer, Customer.id == W.customer_id)
        .where(*conditions)
        .order_by(*_order_by(sort))
        .offset(offset)
        .limit(page_size)
    )
    rows = (await session.execute(stmt)).all()
    if rows:
        first = rows[0]
        last_synced_at, total = first[-2], int(cast(int, first[-1]))
        page_items = [_summary_fields(row, last_synced_at) for row in rows]
        return {"items": page_items, "total": total, "page": page, "page_size": page_size}
    # An empty page: is the customer there at all, and how many match (a page past the end)?
    matching = select(func.count(W.id)).where(*conditions).scalar_subquery()
    head = (
        await session.execute(
            select(Customer.last_successful_sync_at, matching).where(Customer.id == customer_id)
        )
    ).first()
    if head is None:
        raise _not_found(customer_id)
    total = int(head[1])
    items: list[dict[str, Any]] = []
    return {"items": items, "total": total, "page": page, "page_size": page_size}


async def get_workflow(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int
) -> WorkflowDetail:
    stmt = (
        select(
            *_SUMMARY_COLUMNS,
            W.first_seen_at,
            W.last_changed_at,
            W.raw,
            Customer.last_successful_sync_at,
        )
        .select_from(Customer)
        .outerjoin(W, (W.customer_id == Customer.id) & (W.zuora_id == zuora_id))
        .where(Customer.id == customer_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise _not_found(customer_id)
    if row.zuora_id is None:
        raise NotFoundError(f"Workflow {zuora_id} of customer {customer_id} not found")
    return WorkflowDetail(
        **_summary_fields(row, row.last_successful_sync_at),
        first_seen_at=row.first_seen_at,
        last_changed_at=row.last_changed_at,
        raw=row.raw,
    )
