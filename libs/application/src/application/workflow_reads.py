"""Workflow reads, straight from the database (never from Zuora): the API's list and detail, the
CLI's ``workflows show``.

The list is built for speed: one query fetches the page with only the listed columns (never
``raw``), the customer's last sync time and the total; an empty page costs one more query (does the
customer exist, how many match). No per-row queries.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.customers import resolve_customer
from workflow_store.definitions import definition_history
from workflow_store.models import WORKFLOW_FIELDS, Customer, StoredWorkflow

from application.errors import NotFound

__all__ = [
    "ACTIVE_VERSION_FIELDS",
    "SUMMARY_FIELDS",
    "TRIGGER_COLUMNS",
    "FieldMap",
    "WorkflowSort",
    "WorkflowTrigger",
    "get_workflow",
    "list_workflows",
    "order_by",
    "page_statement",
    "workflow_overview",
]

WorkflowSort = Literal[
    "name", "-name", "zuora_id", "-zuora_id", "zuora_updated_at", "-zuora_updated_at"
]
WorkflowTrigger = Literal["callout", "ondemand", "scheduled"]

W = StoredWorkflow

FieldMap = dict[str, Any]
"""API field name -> column, or -> a nested FieldMap (an object that is null when all its columns
are)."""

ACTIVE_VERSION_FIELDS: FieldMap = {
    "id": W.active_version_id,
    "version": W.active_version,
    "status": W.active_version_status,
    "type": W.active_version_type,
}
"""The columns the API nests as ``active_version`` (the only shape the API adds to the table)."""


def _summary_field_map() -> FieldMap:
    nested = {column.key for column in ACTIVE_VERSION_FIELDS.values()}
    fields: FieldMap = {"zuora_id": W.zuora_id}
    for name in WORKFLOW_FIELDS:
        if name in nested:
            fields.setdefault("active_version", ACTIVE_VERSION_FIELDS)
        else:
            fields[name] = getattr(W, name)
    return fields


SUMMARY_FIELDS: FieldMap = _summary_field_map()
"""The fields of a workflow in a listing (``WorkflowSummary`` without ``last_synced_at``), derived
from the store's ``WORKFLOW_FIELDS`` in table order: the ORM path and the PostgreSQL-rendered path
(:mod:`application.workflow_pages`) both take their columns from it."""


def _columns(fields: FieldMap) -> list[Any]:
    out: list[Any] = []
    for value in fields.values():
        out.extend(_columns(value) if isinstance(value, dict) else [value])
    return out


_SUMMARY_COLUMNS = tuple(_columns(SUMMARY_FIELDS))

TRIGGER_COLUMNS = {
    "callout": W.callout_trigger,
    "ondemand": W.ondemand_trigger,
    "scheduled": W.scheduled_trigger,
}

_SORT_COLUMNS = {"name": W.name, "zuora_id": W.zuora_id, "zuora_updated_at": W.zuora_updated_at}


def _not_found(customer_id: uuid.UUID) -> NotFound:
    return NotFound(f"Customer {customer_id} not found")


def _filters(
    customer_id: uuid.UUID, q: str | None, status: str | None, trigger: WorkflowTrigger | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [W.customer_id == customer_id]
    if q:
        conditions.append(W.name.icontains(q, autoescape=True))
    if status:
        conditions.append(func.lower(W.status) == status.lower())
    if trigger is not None:
        conditions.append(TRIGGER_COLUMNS[trigger].is_(True))
    return conditions


def order_by(sort: WorkflowSort) -> list[Any]:
    descending = sort.startswith("-")
    column = _SORT_COLUMNS[sort.lstrip("-")]
    primary = column.desc() if descending else column.asc()
    if column is W.zuora_updated_at:
        primary = primary.nulls_last()
    tie = W.zuora_id.desc() if descending else W.zuora_id.asc()
    return [primary] if column is W.zuora_id else [primary, tie]


def _nested(row: Any, fields: FieldMap) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            inner = _nested(row, value)
            values[key] = None if all(v is None for v in inner.values()) else inner
        else:
            values[key] = row._mapping[value]
    return values


def _summary_fields(row: Any, last_synced_at: Any) -> dict[str, Any]:
    return {**_nested(row, SUMMARY_FIELDS), "last_synced_at": last_synced_at}


def page_statement(
    customer_id: uuid.UUID,
    *,
    page: int,
    page_size: int,
    q: str | None = None,
    status: str | None = None,
    trigger: WorkflowTrigger | None = None,
    sort: WorkflowSort = "name",
) -> Select[Any]:
    """One round trip for the common case: the page, the customer's last sync and the total (a
    window count is computed before LIMIT/OFFSET, so it counts every match). The benchmark
    compiles this same statement for pgbench's ceiling."""
    return (
        select(*_SUMMARY_COLUMNS, Customer.last_successful_sync_at, func.count().over())
        .join(Customer, Customer.id == W.customer_id)
        .where(*_filters(customer_id, q, status, trigger))
        .order_by(*order_by(sort))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )


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
    """The page as plain JSON-ready data (the API serialises it directly: the read path is the
    hottest of the API, and validating rows we just read from our own table bought nothing)."""
    stmt = page_statement(
        customer_id, page=page, page_size=page_size, q=q, status=status, trigger=trigger, sort=sort
    )
    rows = (await session.execute(stmt)).all()
    if rows:
        first = rows[0]
        last_synced_at, total = first[-2], int(cast(int, first[-1]))
        page_items = [_summary_fields(row, last_synced_at) for row in rows]
        return {"items": page_items, "total": total, "page": page, "page_size": page_size}
    # An empty page: is the customer there at all, and how many match (a page past the end)?
    conditions = _filters(customer_id, q, status, trigger)
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
) -> dict[str, Any]:
    """One workflow with its raw item (the fields of the API's ``WorkflowDetail``)."""
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
        raise NotFound(f"Workflow {zuora_id} of customer {customer_id} not found")
    return {
        **_summary_fields(row, row.last_successful_sync_at),
        "first_seen_at": row.first_seen_at,
        "last_changed_at": row.last_changed_at,
        "raw": row.raw,
    }


async def workflow_overview(
    session: AsyncSession, customer: str | uuid.UUID, zuora_id: int
) -> dict[str, Any]:
    """A workflow's fields with its current definition's version and counts (``zuora-sync
    workflows show``); the customer by id or name."""
    found = await resolve_customer(session, customer)
    workflow = await session.scalar(
        select(W).where(W.customer_id == found.id, W.zuora_id == zuora_id)
    )
    if workflow is None:
        raise NotFound(f"workflow {zuora_id} of customer {found.name!r} not found")
    history = await definition_history(session, found.id, zuora_id)
    current = next((v for v in history if v.is_current), None)
    return {
        "zuora_id": workflow.zuora_id,
        "name": workflow.name,
        "status": workflow.status,
        "active_version": workflow.active_version,
        "zuora_updated_at": workflow.zuora_updated_at,
        "definition_version": current.version if current else None,
        "content_hash": current.content_hash if current else None,
        "task_count": current.task_count if current else None,
        "linkage_count": current.linkage_count if current else None,
        "fetched_at": current.fetched_at if current else None,
        "stored_definitions": len(history),
    }
