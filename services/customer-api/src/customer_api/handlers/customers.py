"""The customer routes' handlers: API schemas in, the application's use cases, ``*Public`` out.

The rules, the SQL and the events live in :mod:`application.customers`; this module only
translates (``CustomerCreate`` → ``NewCustomer``, ``CustomerView`` → ``CustomerPublic``). The UI's
pages call the same functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from application import customers as use_cases
from application.customers import KEEP, CustomerChanges, CustomerPolicy, NewCustomer
from application.uow import SqlUnitOfWork
from application.views import CustomerView
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.schemas import CustomerCreate, CustomerPublic, CustomerUpdate, Page

__all__ = [
    "CustomerPolicy",
    "create_customer",
    "delete_customer",
    "get_customer",
    "list_customers",
    "public",
    "update_customer",
]


def public(view: CustomerView) -> CustomerPublic:
    return CustomerPublic.model_validate(view, from_attributes=True)


async def get_customer(session: AsyncSession, customer_id: uuid.UUID) -> CustomerPublic:
    return public(await use_cases.get_customer(SqlUnitOfWork(session), customer_id))


async def list_customers(
    session: AsyncSession, *, page: int, page_size: int, where: Sequence[Any] = ()
) -> Page[CustomerPublic]:
    """Customers by name; ``where``: extra SQL conditions on ``Customer`` (the UI's filters)."""
    listing = await use_cases.list_customers(
        SqlUnitOfWork(session), page=page, page_size=page_size, where=where
    )
    return Page[CustomerPublic](
        items=[public(c) for c in listing.items],
        total=listing.total,
        page=listing.page,
        page_size=listing.page_size,
    )


async def create_customer(
    uow: SqlUnitOfWork, policy: CustomerPolicy, data: CustomerCreate
) -> CustomerPublic:
    new = NewCustomer(
        name=data.name,
        base_url=data.base_url,
        client_id=data.client_id,
        client_secret=data.client_secret.get_secret_value(),
        entity_id=data.entity_id,
        check_credentials=data.validate_credentials,
    )
    return public(await use_cases.add_customer(uow, policy, new))


async def update_customer(
    uow: SqlUnitOfWork, policy: CustomerPolicy, customer_id: uuid.UUID, data: CustomerUpdate
) -> CustomerPublic:
    changes = CustomerChanges(
        name=data.name,
        base_url=data.base_url,
        client_id=data.client_id,
        client_secret=(
            data.client_secret.get_secret_value() if data.client_secret is not None else None
        ),
        # Absent keeps the entity id; an explicit null clears it.
        entity_id=data.entity_id if "entity_id" in data.model_fields_set else KEEP,
        active=data.active,
        check_credentials=data.validate_credentials,
    )
    return public(await use_cases.update_customer(uow, policy, customer_id, changes))


async def delete_customer(uow: SqlUnitOfWork, customer_id: uuid.UUID) -> None:
    await use_cases.remove_customer(uow, customer_id)
