"""/customers: create, list, read, update, delete."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from customer_api.deps import PageDep, PageSizeDep, PolicyDep, SessionDep, UowDep
from customer_api.handlers import customers
from customer_api.problems import problem_responses
from customer_api.schemas import CustomerCreate, CustomerPublic, CustomerUpdate, Page

router = APIRouter(prefix="/customers", tags=["customers"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a customer (credentials checked with Zuora first)",
    responses=problem_responses(409, 422, 502, 503),
)
async def create_customer(
    body: CustomerCreate, uow: UowDep, policy: PolicyDep, response: Response
) -> CustomerPublic:
    customer = await customers.create_customer(uow, policy, body)
    response.headers["Location"] = f"/customers/{customer.id}"
    return customer


@router.get("", summary="List customers (by name)", responses=problem_responses(422))
async def list_customers(
    session: SessionDep, page: PageDep = 1, page_size: PageSizeDep = 50
) -> Page[CustomerPublic]:
    return await customers.list_customers(session, page=page, page_size=page_size)


@router.get("/{customer_id}", summary="Get a customer", responses=problem_responses(404, 422))
async def get_customer(customer_id: uuid.UUID, session: SessionDep) -> CustomerPublic:
    return await customers.get_customer(session, customer_id)


@router.patch(
    "/{customer_id}",
    summary="Rename, rotate credentials, activate/deactivate",
    responses=problem_responses(404, 409, 422, 502, 503),
)
async def update_customer(
    customer_id: uuid.UUID, body: CustomerUpdate, uow: UowDep, policy: PolicyDep
) -> CustomerPublic:
    return await customers.update_customer(uow, policy, customer_id, body)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a customer and its workflows",
    responses=problem_responses(404, 422),
)
async def delete_customer(customer_id: uuid.UUID, uow: UowDep) -> Response:
    await customers.delete_customer(uow, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
