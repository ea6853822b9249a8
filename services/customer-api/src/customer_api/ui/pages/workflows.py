"""``/ui/workflows``: every customer's workflows (search, filters, sort, pages, Sync all) and one
workflow's page (fields, versions, definition JSON and its download, graph, tasks, linkages,
definition history with a diff).

The query string is the state of every page here; an unknown or malformed value falls back to
its default instead of an error page (a stale bookmark still opens).
"""

from __future__ import annotations

import html
import uuid
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Text, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import Customer, StoredWorkflow

from customer_api.deps import SessionDep, UowDep
from customer_api.errors import NotFoundError
from customer_api.handlers import sync
from customer_api.handlers.sync_all_progress import sync_all_progress
from customer_api.handlers.workflow_index import (
    INDEX_SORTS,
    TRIGGERS,
    WorkflowIndexFilters,
    WorkflowIndexSort,
    WorkflowKey,
    count_active_customers,
    list_all_workflows,
    total_is_counted,
    workflow_key,
)
from customer_api.handlers.workflows import get_workflow
from customer_api.routes import definitions as api_definitions
from customer_api.ui.auth import UiDep
from customer_api.ui.definition_view import definition_view

router = APIRouter()

PAGE_SIZES = (25, 50, 100)
# By customer, then name: the existing indexes serve it (customer name, then the customer's
# workflows by name), so the default page of 100,000 workflows reads ~50 rows, not all of them.
DEFAULT_SORT = "customer"
STATES = ("active", "inactive")
CUSTOMER_CHOICES = 2_000
# "More than 1000 workflows match": a search counts no further (refine it instead of paging).
SEARCH_COUNT_LIMIT = 1_000
# Column headers of the list: (sort key, label); the sort key is also the column's id.
COLUMNS = (
    ("name", "Name"),
    ("customer", "Customer"),
    ("state", "State"),
    ("zuora_id", "Zuora id"),
    ("updated", "Updated in Zuora"),
)
TRIGGER_LABELS = {"callout": "callout", "ondemand": "on demand", "scheduled": "scheduled"}

OptionalText = Annotated[str | None, Query(max_length=200)]


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def _positive(raw: str | None, default: int, upper: int = 1_000_000) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) <= upper else default


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


async def customer_choices(session: AsyncSession) -> list[tuple[str, str]]:
    """(id as text, name) of the customers, by name."""
    bind = session.bind
    # PostgreSQL writes the uuid's text itself (1,000 UUID objects built then printed were a
    # visible share of the page); SQLite stores 32 hex digits, so it goes through uuid.UUID.
    as_text = bind is not None and bind.dialect.name == "postgresql"
    cid = sql_cast(Customer.id, Text) if as_text else Customer.id
    rows = await session.execute(
        select(cid, Customer.name).order_by(Customer.name).limit(CUSTOMER_CHOICES)
    )
    return [(str(value), name) for value, name in rows.all()]


def customer_options(choices: list[tuple[str, str]], selected: str | None) -> str:
    """The customer filter's ``<option>`` elements as HTML (ids and names escaped here; the
    template marks the result safe). One join in Python: a Jinja loop over 1,000 customers was
    most of the list page's render time."""
    options = []
    for value, name in choices:
        chosen = " selected" if value == selected else ""
        options.append(f'<option value="{html.escape(value)}"{chosen}>{html.escape(name)}</option>')
    return "\n".join(options)


@router.get("/workflows", include_in_schema=False)
async def workflow_list(
    request: Request,
    ui: UiDep,
    session: SessionDep,
    q: OptionalText = None,
    customer: OptionalText = None,
    state: OptionalText = None,
    trigger: OptionalText = None,
    sort: OptionalText = None,
    page: OptionalText = None,
    page_size: OptionalText = None,
) -> Response:
    customer_id = _uuid(customer)
    filters = WorkflowIndexFilters(
        customer_id=customer_id,
        q=(q or "").strip() or None,
        state=cast(Any, _choice(state, STATES)),
        trigger=cast(Any, _choice(trigger, TRIGGERS)),
    )
    chosen_sort = cast(WorkflowIndexSort, _choice(sort, INDEX_SORTS) or DEFAULT_SORT)
    size = _positive(page_size, 50) if _positive(page_size, 50) in PAGE_SIZES else 50
    chosen_page = _positive(page, 1)
    # A search's total is counted up to here (and at least to the end of this page).
    count_limit = max(SEARCH_COUNT_LIMIT, chosen_page * size)
    listing = await list_all_workflows(
        session,
        filters,
        sort=chosen_sort,
        page=chosen_page,
        page_size=size,
        count_limit=count_limit,
    )
    # The query string the links of this page start from (sort and page links change one key).
    state_params = {
        "q": filters.q,
        "customer": str(customer_id) if customer_id else None,
        "state": filters.state,
        "trigger": filters.trigger,
        "sort": None if chosen_sort == DEFAULT_SORT else chosen_sort,
        "page_size": None if size == 50 else size,
    }
    return ui.templates.render(
        request,
        "workflows/list.html",
        {
            "section": "workflows",
            "listing": listing,
            "count_limit": count_limit,
            "total_capped": total_is_counted(filters) and listing.total > count_limit,
            "filters": state_params,
            "sort": chosen_sort,
            "default_sort": DEFAULT_SORT,
            "columns": COLUMNS,
            "column_labels": dict(COLUMNS),
            "customer_options": customer_options(
                await customer_choices(session), str(customer_id) if customer_id else None
            ),
            "states": STATES,
            "triggers": TRIGGER_LABELS,
            "page_sizes": PAGE_SIZES,
            "active_customers": await count_active_customers(session),
        },
    )


@router.post("/workflows/sync-all", include_in_schema=False)
async def sync_all(uow: UowDep) -> Response:
    """Queue the sync-all, then show its progress at a GET URL (a reload does not re-queue)."""
    command_id = await sync.request_sync_all(uow, force=False)
    return RedirectResponse(f"/ui/workflows/sync-all/{command_id}", status_code=303)


@router.get("/workflows/sync-all/{command_id}", include_in_schema=False)
async def sync_all_status(
    request: Request, command_id: uuid.UUID, ui: UiDep, session: SessionDep
) -> Response:
    progress = await sync_all_progress(session, str(command_id))
    return ui.templates.render(
        request, "workflows/sync_all.html", {"section": "workflows", "progress": progress}
    )


async def _key_or_404(session: AsyncSession, workflow_id: int) -> WorkflowKey:
    key = await workflow_key(session, workflow_id)
    if key is None:
        raise NotFoundError(f"Workflow {workflow_id} not found")
    return key


@router.get("/workflows/{workflow_id}", include_in_schema=False)
async def workflow_page(
    request: Request,
    workflow_id: int,
    ui: UiDep,
    session: SessionDep,
    action_type: OptionalText = None,
    diff_from: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    diff_to: Annotated[str | None, Query(alias="to", max_length=64)] = None,
) -> Response:
    key = await _key_or_404(session, workflow_id)
    workflow = await get_workflow(session, key.customer_id, key.zuora_id)
    definition = await definition_view(
        request,
        session,
        key.customer_id,
        key.zuora_id,
        action_type=action_type or None,
        diff_from=diff_from or None,
        diff_to=diff_to or None,
    )
    return ui.templates.render(
        request,
        "workflows/detail.html",
        {
            "section": "workflows",
            "key": key,
            "w": workflow,
            "d": definition,
            "action_type": action_type or "",
            "triggers": TRIGGER_LABELS,
        },
    )


@router.get("/workflows/{workflow_id}/definition.json", include_in_schema=False)
async def workflow_definition_download(workflow_id: int, session: SessionDep) -> Response:
    """The JSON API's download itself (GET .../definition.json): the same bytes and file name,
    so a file saved from the UI and one fetched by a script are identical."""
    key = await _key_or_404(session, workflow_id)
    return await api_definitions.download_definition(key.customer_id, key.zuora_id, session)


@router.get("/workflows/{customer_id:uuid}/{zuora_id:int}", include_in_schema=False)
async def workflow_by_zuora_id(
    customer_id: uuid.UUID, zuora_id: int, session: SessionDep
) -> Response:
    """A customer's workflow by its Zuora id (how the customer page links it)."""
    row = await session.execute(
        select(StoredWorkflow.id).where(
            StoredWorkflow.customer_id == customer_id, StoredWorkflow.zuora_id == zuora_id
        )
    )
    workflow_id = row.scalar_one_or_none()
    if workflow_id is None:
        raise NotFoundError(f"Workflow {zuora_id} of customer {customer_id} not found")
    return RedirectResponse(f"/ui/workflows/{workflow_id}", status_code=303)
