"""/workflows and /tasks: the operators' lists across customers (from the database)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response

from customer_api.deps import PageDep, PageSizeDep, SessionDep
from customer_api.handlers import task_index
from customer_api.handlers.workflow_index import (
    WorkflowIndexFilters,
    WorkflowIndexSort,
    WorkflowState,
    WorkflowTriggerName,
    list_all_workflows,
)
from customer_api.problems import problem_responses
from customer_api.schemas import SearchText, StatusText

router = APIRouter(tags=["catalog"])

CustomerFilter = Annotated[uuid.UUID | None, Query(description="Only this customer's (its id).")]


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_UTC_Z), media_type="application/json")


def _ok(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {}}}}


@router.get(
    "/workflows",
    summary="Workflows of every customer, each row naming its customer",
    response_class=Response,
    responses={**_ok("One page"), **problem_responses(422)},
)
async def list_workflows(
    session: SessionDep,
    customer: CustomerFilter = None,
    q: Annotated[SearchText | None, Query(description="Name contains, or the Zuora id.")] = None,
    status: Annotated[WorkflowState | None, Query(description="active or inactive.")] = None,
    trigger: Annotated[WorkflowTriggerName | None, Query(description="Trigger type.")] = None,
    sort: Annotated[WorkflowIndexSort, Query(description="Sort key; '-' descending.")] = "customer",
    page: PageDep = 1,
    page_size: PageSizeDep = 50,
) -> Response:
    filters = WorkflowIndexFilters(customer_id=customer, q=q, state=status, trigger=trigger)
    result = await list_all_workflows(session, filters, sort=sort, page=page, page_size=page_size)
    return _json(asdict(result))


@router.get(
    "/tasks",
    summary="Tasks of the current workflow definitions of every customer",
    response_class=Response,
    responses={**_ok("One page"), **problem_responses(422)},
)
async def list_tasks(
    session: SessionDep,
    customer: CustomerFilter = None,
    workflow: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Zuora id.")] = None,
    action_type: Annotated[StatusText | None, Query(description="e.g. Callout.")] = None,
    object: Annotated[StatusText | None, Query(description="e.g. Invoice.")] = None,
    q: Annotated[SearchText | None, Query(description="Name or a tag contains.")] = None,
    page: PageDep = 1,
    page_size: PageSizeDep = 50,
) -> Response:
    return _json(
        await task_index.list_tasks(
            session,
            customer_id=customer,
            workflow=workflow,
            action_type=action_type,
            object_=object,
            q=q,
            page=page,
            page_size=page_size,
        )
    )
