"""/customers/{id}/workflows: the synced copy of a customer's Zuora workflows."""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Response

from customer_api.deps import PageDep, PageSizeDep, RuntimeDep, SessionDep
from customer_api.handlers import workflows
from customer_api.problems import problem_responses
from customer_api.schemas import (
    Page,
    SearchText,
    StatusText,
    WorkflowDetail,
    WorkflowSort,
    WorkflowSummary,
    WorkflowTrigger,
)

router = APIRouter(prefix="/customers/{customer_id}/workflows", tags=["workflows"])

ZuoraId = Annotated[int, Path(ge=0, le=2**63 - 1, description="The workflow's Zuora id.")]


@router.get(
    "",
    summary="List a customer's workflows",
    response_model=Page[WorkflowSummary],
    responses=problem_responses(404, 422),
)
async def list_workflows(
    customer_id: uuid.UUID,
    runtime: RuntimeDep,
    page: PageDep = 1,
    page_size: PageSizeDep = 50,
    q: Annotated[SearchText | None, Query(description="Name contains (case-insensitive).")] = None,
    status: Annotated[StatusText | None, Query(description="Status, e.g. Active.")] = None,
    trigger: Annotated[WorkflowTrigger | None, Query(description="Trigger type.")] = None,
    sort: Annotated[WorkflowSort, Query(description="Sort key; '-' for descending.")] = "name",
) -> Response:
    if runtime.workflow_pages is not None:
        # PostgreSQL renders the page document; an empty page takes the ORM path below, which
        # tells an unknown customer (404) from a page past the end.
        document = await runtime.workflow_pages.page_json(
            customer_id,
            page=page,
            page_size=page_size,
            q=q,
            status=status,
            trigger=trigger,
            sort=sort,
        )
        if document is not None:
            return Response(document, media_type="application/json")
    async with runtime.session_factory() as session:
        page_data = await workflows.list_workflows(
            session,
            customer_id,
            page=page,
            page_size=page_size,
            q=q,
            status=status,
            trigger=trigger,
            sort=sort,
        )
    # Serialised by orjson straight from the rows (same shape as Page[WorkflowSummary]); FastAPI
    # skips response-model validation for a Response, the largest CPU cost of this hot path.
    return Response(orjson.dumps(page_data, option=orjson.OPT_UTC_Z), media_type="application/json")


@router.get(
    "/{zuora_id}", summary="One workflow with its raw item", responses=problem_responses(404, 422)
)
async def get_workflow(
    customer_id: uuid.UUID, zuora_id: ZuoraId, session: SessionDep
) -> WorkflowDetail:
    return await workflows.get_workflow(session, customer_id, zuora_id)
