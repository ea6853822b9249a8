"""Tasks of the current definitions across customers: the operators' task search."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import Customer, StoredWorkflow, WorkflowTask

__all__ = ["list_tasks"]

T = WorkflowTask


def _conditions(
    customer_id: uuid.UUID | None,
    workflow: int | None,
    action_type: str | None,
    object_: str | None,
    q: str | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if customer_id is not None:
        conditions.append(T.customer_id == customer_id)
    if workflow is not None:
        conditions.append(StoredWorkflow.zuora_id == workflow)
    if action_type:
        conditions.append(func.lower(T.action_type) == action_type.lower())
    if object_:
        conditions.append(func.lower(T.object) == object_.lower())
    if q:
        conditions.append(
            or_(
                T.name.icontains(q, autoescape=True),
                cast(T.tags, String).icontains(q, autoescape=True),
            )
        )
    return conditions


async def list_tasks(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID | None = None,
    workflow: int | None = None,
    action_type: str | None = None,
    object_: str | None = None,
    q: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    """One page of tasks (name or tag contains ``q``), each naming its workflow and customer,
    ordered by customer, workflow, task id."""
    conditions = _conditions(customer_id, workflow, action_type, object_, q)
    stmt = (
        select(
            T.task_id,
            T.name,
            T.action_type,
            T.object,
            T.call_type,
            T.tags,
            StoredWorkflow.zuora_id.label("workflow_zuora_id"),
            StoredWorkflow.name.label("workflow_name"),
            Customer.id.label("customer_id"),
            Customer.name.label("customer_name"),
        )
        .join(StoredWorkflow, StoredWorkflow.id == T.workflow_id)
        .join(Customer, Customer.id == T.customer_id)
        .where(*conditions)
        .order_by(Customer.name, StoredWorkflow.zuora_id, T.task_id, T.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    rows = (await session.execute(stmt)).all()
    counted = (
        select(func.count())
        .select_from(T)
        .join(StoredWorkflow, StoredWorkflow.id == T.workflow_id)
        .where(*conditions)
    )
    total = int((await session.execute(counted)).scalar_one())
    items = [
        {
            "task_id": row.task_id,
            "name": row.name,
            "action_type": row.action_type,
            "object": row.object,
            "call_type": row.call_type,
            "tags": row.tags,
            "workflow": {"zuora_id": row.workflow_zuora_id, "name": row.workflow_name},
            "customer": {"id": row.customer_id, "name": row.customer_name},
        }
        for row in rows
    ]
    return {"items": items, "total": total, "page": page, "page_size": page_size}
