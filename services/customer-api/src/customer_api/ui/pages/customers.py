"""Customers: the list (with freshness and last run), add, edit, delete, the customer page
with its workflows and runs, and Sync now with its run card."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from application.errors import DomainError
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func
from workflow_store.models import Customer

from customer_api.deps import PolicyDep, SessionDep, UowDep
from customer_api.errors import NotFoundError
from customer_api.handlers import customers, sync, workflows
from customer_api.handlers.overview import Freshness, freshness_of, freshness_window
from customer_api.problems import problem_for
from customer_api.schemas import CustomerPublic
from customer_api.ui.auth import UiContext, UiDep
from customer_api.ui.forms import CustomerForm
from customer_api.ui.runcard import RunCard
from customer_api.ui.templating import is_htmx

router = APIRouter()

PAGE_SIZE = 50
CUSTOMER_WORKFLOWS = 20
CUSTOMER_RUNS = 10
_SEARCH_MAX = 200


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) <= 1_000_000 else 1


def _freshness(ui: UiContext, customer: CustomerPublic) -> Freshness:
    return freshness_of(
        customer.last_successful_sync_at, interval_seconds=ui.expected_interval_seconds
    )


@router.get("/customers", include_in_schema=False)
async def customer_list(
    request: Request,
    ui: UiDep,
    session: SessionDep,
    freshness: Annotated[str | None, Query()] = None,
    q: Annotated[str | None, Query()] = None,
    page: Annotated[str | None, Query()] = None,
) -> Response:
    where: list[Any] = []
    chosen = freshness if freshness in {f.value for f in Freshness} else None
    if chosen is not None:
        where += freshness_window(Freshness(chosen), interval_seconds=ui.expected_interval_seconds)
        where.append(Customer.active.is_(True))
    search = (q or "").strip()[:_SEARCH_MAX]
    if search:
        where.append(func.lower(Customer.name).contains(search.lower(), autoescape=True))
    listing = await customers.list_customers(
        session, page=_page_number(page), page_size=PAGE_SIZE, where=where
    )
    rows = [(c, _freshness(ui, c)) for c in listing.items]
    return ui.templates.render(
        request,
        "customers/list.html",
        {
            "section": "customers",
            "listing": listing,
            "rows": rows,
            "filters": {"freshness": chosen, "q": search},
            "freshness_choices": [f.value for f in Freshness],
            "notice": request.query_params.get("notice"),
        },
    )


def _form_page(
    request: Request,
    ui: UiContext,
    form: CustomerForm,
    *,
    customer: CustomerPublic | None = None,
    status_code: int = 200,
) -> Response:
    return ui.templates.render(
        request,
        "customers/form.html",
        {
            "section": "customers",
            "form": form,
            "customer": customer,
            "base_urls": ui.base_url_choices,
        },
        status_code=status_code,
    )


@router.get("/customers/new", include_in_schema=False)
async def new_customer_form(request: Request, ui: UiDep) -> Response:
    return _form_page(request, ui, CustomerForm())


@router.post("/customers/new", include_in_schema=False)
async def create_customer(request: Request, ui: UiDep, uow: UowDep, policy: PolicyDep) -> Response:
    form, secret = CustomerForm.from_form(await request.form())
    data = form.to_create(secret)
    if data is None:
        return _form_page(request, ui, form, status_code=422)
    try:
        created = await customers.create_customer(uow, policy, data)
    except DomainError as exc:
        form.refuse(exc)
        return _form_page(request, ui, form, status_code=problem_for(exc).status)
    return RedirectResponse(f"/ui/customers/{created.id}?notice=created", status_code=303)


@router.get("/customers/{customer_id}", include_in_schema=False)
async def customer_page(
    request: Request, customer_id: uuid.UUID, ui: UiDep, session: SessionDep
) -> Response:
    customer = await customers.get_customer(session, customer_id)
    workflow_page = await workflows.list_workflows(
        session,
        customer_id,
        page=1,
        page_size=CUSTOMER_WORKFLOWS,
        q=None,
        status=None,
        trigger=None,
        sort="name",
    )
    runs = await sync.list_sync_runs(
        session, page=1, page_size=CUSTOMER_RUNS, customer_id=customer_id
    )
    return ui.templates.render(
        request,
        "customers/detail.html",
        {
            "section": "customers",
            "customer": customer,
            "freshness": _freshness(ui, customer),
            "workflows": workflow_page,
            "runs": runs,
            "notice": request.query_params.get("notice"),
        },
    )


@router.get("/customers/{customer_id}/edit", include_in_schema=False)
async def edit_customer_form(
    request: Request, customer_id: uuid.UUID, ui: UiDep, session: SessionDep
) -> Response:
    customer = await customers.get_customer(session, customer_id)
    form = CustomerForm(
        values={
            "name": customer.name,
            "base_url": customer.base_url,
            "client_id": customer.client_id,
            "entity_id": customer.entity_id or "",
        },
        active=customer.active,
    )
    return _form_page(request, ui, form, customer=customer)


@router.post("/customers/{customer_id}/edit", include_in_schema=False)
async def update_customer(
    request: Request,
    customer_id: uuid.UUID,
    ui: UiDep,
    uow: UowDep,
    policy: PolicyDep,
    session: SessionDep,
) -> Response:
    customer = await customers.get_customer(session, customer_id)
    form, secret = CustomerForm.from_form(await request.form())
    data = form.to_update(secret)
    if data is None:
        return _form_page(request, ui, form, customer=customer, status_code=422)
    try:
        await customers.update_customer(uow, policy, customer_id, data)
    except NotFoundError:
        raise
    except DomainError as exc:
        form.refuse(exc)
        return _form_page(request, ui, form, customer=customer, status_code=problem_for(exc).status)
    return RedirectResponse(f"/ui/customers/{customer_id}?notice=saved", status_code=303)


@router.post("/customers/{customer_id}/delete", include_in_schema=False)
async def delete_customer(customer_id: uuid.UUID, uow: UowDep) -> Response:
    await customers.delete_customer(uow, customer_id)
    return RedirectResponse("/ui/customers?notice=deleted", status_code=303)


def _card_response(
    request: Request, ui: UiContext, card: RunCard, *, status_code: int = 200
) -> Response:
    return ui.templates.render(
        request,
        "command.html",
        {"card": card, "fragment_only": is_htmx(request), "section": "customers"},
        status_code=status_code,
    )


def new_card(ui: UiContext, command_id: str, customer_id: uuid.UUID) -> RunCard:
    return RunCard(
        command_id=command_id,
        customer_id=customer_id,
        requested_at=int(time.time()),
        attempts=[],
        max_attempts=ui.max_attempts,
    )


def queued(request: Request, ui: UiContext, card: RunCard) -> Response:
    """htmx: the polling card in place (202); a plain form: on to the card's own page."""
    if is_htmx(request):
        return _card_response(request, ui, card, status_code=202)
    target = f"/ui/commands/{card.command_id}?customer={card.customer_id}&since={card.requested_at}"
    return RedirectResponse(target, status_code=303)


@router.post("/customers/{customer_id}/sync", include_in_schema=False)
async def sync_now(request: Request, customer_id: uuid.UUID, ui: UiDep, uow: UowDep) -> Response:
    command_id = await sync.request_customer_sync(uow, customer_id, force=False)
    return queued(request, ui, new_card(ui, command_id, customer_id))


@router.get("/commands/{command_id}", include_in_schema=False)
async def command_card(
    request: Request,
    command_id: str,
    ui: UiDep,
    session: SessionDep,
    customer: Annotated[uuid.UUID | None, Query()] = None,
    since: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    if len(command_id) > 64:
        raise NotFoundError("No such sync request")
    attempts = await sync.list_command_runs(session, command_id)
    card = RunCard(
        command_id=command_id,
        customer_id=attempts[-1].customer_id if attempts else customer,
        requested_at=since if since is not None else int(time.time()),
        attempts=attempts,
        max_attempts=ui.max_attempts,
    )
    return _card_response(request, ui, card)
