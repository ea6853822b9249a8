"""Customer use cases: create, read, list, update, delete; each change and its event commit
together (transactional outbox)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sync_messages import CustomerCreated, CustomerDeleted, CustomerUpdated, topics
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer, decrypt_client_secret, set_client_secret
from workflow_store.errors import CustomerExistsError, SecretDecryptionError
from workflow_store.models import CredentialStatus, Customer, StoredWorkflow
from zuora_client import BaseUrlNotAllowedError as ClientBaseUrlNotAllowedError
from zuora_client import ZuoraCredentials, check_base_url

from customer_api.credentials import CredentialsChecker, base_url_problem
from customer_api.errors import (
    ConcurrentChangeError,
    CustomerNameTakenError,
    NotFoundError,
    StoredSecretUnusableError,
)
from customer_api.schemas import CustomerCreate, CustomerPublic, CustomerUpdate, Page
from customer_api.uow import UnitOfWork

__all__ = [
    "CREDENTIAL_FIELDS",
    "CustomerPolicy",
    "create_customer",
    "delete_customer",
    "get_customer",
    "list_customers",
    "update_customer",
]

logger = logging.getLogger(__name__)

CREDENTIAL_FIELDS = ("base_url", "client_id", "client_secret", "entity_id")


@dataclass(frozen=True)
class CustomerPolicy:
    """What the customer use cases need from configuration."""

    box: SecretBox
    allowed_base_urls: tuple[str, ...]
    checker: CredentialsChecker
    validate_credentials: bool = True


def _name_taken(name: str) -> CustomerNameTakenError:
    return CustomerNameTakenError(f"A customer with this name already exists: {name}")


def _not_found(customer_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"Customer {customer_id} not found")


def _normalized_base_url(url: str, policy: CustomerPolicy) -> str:
    try:
        return check_base_url(url, policy.allowed_base_urls)
    except ClientBaseUrlNotAllowedError:
        raise base_url_problem() from None


def _workflow_count() -> Any:
    return (
        select(func.count(StoredWorkflow.id))
        .where(StoredWorkflow.customer_id == Customer.id)
        .correlate(Customer)
        .scalar_subquery()
        .label("workflow_count")
    )


def _public(customer: Customer, workflow_count: int) -> CustomerPublic:
    return CustomerPublic(
        id=customer.id,
        name=customer.name,
        base_url=customer.base_url,
        client_id=customer.client_id,
        entity_id=customer.entity_id,
        active=customer.active,
        credential_status=customer.credential_status,
        last_sync_status=customer.last_sync_status,
        last_sync_at=customer.last_sync_at,
        last_successful_sync_at=customer.last_successful_sync_at,
        last_sync_error=customer.last_sync_error,
        workflow_count=workflow_count,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


async def _name_exists(session: AsyncSession, name: str, *, other_than: uuid.UUID | None) -> bool:
    stmt = select(Customer.id).where(Customer.name == name)
    if other_than is not None:
        stmt = stmt.where(Customer.id != other_than)
    return (await session.scalar(stmt.limit(1))) is not None


# -- reads -----------------------------------------------------------------------------------


async def get_customer(session: AsyncSession, customer_id: uuid.UUID) -> CustomerPublic:
    row = (
        await session.execute(select(Customer, _workflow_count()).where(Customer.id == customer_id))
    ).first()
    if row is None:
        raise _not_found(customer_id)
    return _public(row[0], int(row[1]))


async def list_customers(
    session: AsyncSession, *, page: int, page_size: int, where: Sequence[Any] = ()
) -> Page[CustomerPublic]:
    """Customers by name; ``where``: extra SQL conditions on ``Customer`` (the UI's filters)."""
    total = int(await session.scalar(select(func.count()).select_from(Customer).where(*where)) or 0)
    items: list[CustomerPublic] = []
    if total > (page - 1) * page_size:
        stmt: Select[Any] = (
            select(Customer, _workflow_count())
            .where(*where)
            .order_by(Customer.name, Customer.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        items = [_public(c, int(n)) for c, n in (await session.execute(stmt)).all()]
    return Page[CustomerPublic](items=items, total=total, page=page, page_size=page_size)


# -- changes ---------------------------------------------------------------------------------


async def create_customer(
    uow: UnitOfWork, policy: CustomerPolicy, data: CustomerCreate
) -> CustomerPublic:
    """Validate (base URL, then credentials unless skipped), store, and queue CustomerCreated."""
    base_url = _normalized_base_url(data.base_url, policy)
    if await _name_exists(uow.session, data.name, other_than=None):
        raise _name_taken(data.name)
    checked = policy.validate_credentials and data.validate_credentials
    if checked:
        await uow.end_read()  # hold no connection while Zuora is asked
        await policy.checker(
            ZuoraCredentials(
                base_url=base_url,
                client_id=data.client_id,
                client_secret=data.client_secret,
                entity_id=data.entity_id,
            )
        )
    async with uow.transaction() as session:
        try:
            customer = await add_customer(
                session,
                policy.box,
                name=data.name,
                base_url=base_url,
                client_id=data.client_id,
                client_secret=data.client_secret.get_secret_value(),
                entity_id=data.entity_id,
            )
        except CustomerExistsError:
            raise _name_taken(data.name) from None
        customer.credential_status = CredentialStatus.VALID if checked else CredentialStatus.UNKNOWN
        await session.flush()
        uow.publish(
            topics.CUSTOMER_EVENTS,
            CustomerCreated(customer_id=customer.id, name=customer.name),
            key=str(customer.id),
        )
    logger.info(
        "Customer created: id=%s name=%r credentials_checked=%s",
        customer.id,
        customer.name,
        checked,
    )
    return _public(customer, 0)


@dataclass
class _Plan:
    changes: dict[str, Any]
    new_secret: str | None
    credentials_changed: bool
    seen: tuple[Any, ...]  # the fields the plan (and the credential check) was made from


def _planned_from(customer: Customer) -> tuple[Any, ...]:
    return (
        customer.name,
        customer.base_url,
        customer.client_id,
        customer.client_secret_encrypted,
        customer.entity_id,
        customer.active,
    )


def _plan_update(customer: Customer, data: CustomerUpdate, policy: CustomerPolicy) -> _Plan:
    fields = data.model_fields_set
    changes: dict[str, Any] = {}
    if data.name is not None and data.name != customer.name:
        changes["name"] = data.name
    if data.base_url is not None:
        base_url = _normalized_base_url(data.base_url, policy)
        if base_url != customer.base_url:
            changes["base_url"] = base_url
    if data.client_id is not None and data.client_id != customer.client_id:
        changes["client_id"] = data.client_id
    if "entity_id" in fields and data.entity_id != customer.entity_id:
        changes["entity_id"] = data.entity_id
    if data.active is not None and data.active != customer.active:
        changes["active"] = data.active
    new_secret: str | None = None
    if data.client_secret is not None:
        new_secret = data.client_secret.get_secret_value()
        try:
            unchanged = decrypt_client_secret(policy.box, customer) == new_secret
        except SecretDecryptionError:
            unchanged = False
        if unchanged:
            new_secret = None
        else:
            changes["client_secret"] = True  # a marker: the value never goes into `changes`
    credentials_changed = any(f in changes for f in CREDENTIAL_FIELDS)
    return _Plan(changes, new_secret, credentials_changed, _planned_from(customer))


async def update_customer(
    uow: UnitOfWork, policy: CustomerPolicy, customer_id: uuid.UUID, data: CustomerUpdate
) -> CustomerPublic:
    """Rename, rotate credentials (checked like on create), (de)activate; queue CustomerUpdated."""
    session = uow.session
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise _not_found(customer_id)
    plan = _plan_update(customer, data, policy)
    if "name" in plan.changes and await _name_exists(
        session, plan.changes["name"], other_than=customer_id
    ):
        raise _name_taken(plan.changes["name"])
    checked = plan.credentials_changed and policy.validate_credentials and data.validate_credentials
    if checked:
        secret = plan.new_secret
        if secret is None:
            try:
                secret = decrypt_client_secret(policy.box, customer)
            except SecretDecryptionError:
                raise StoredSecretUnusableError(
                    "The stored client secret cannot be decrypted with the configured "
                    "ENCRYPTION_KEYS; send client_secret together with the other credentials"
                ) from None
        await uow.end_read()  # hold no connection while Zuora is asked
        await policy.checker(
            ZuoraCredentials(
                base_url=plan.changes.get("base_url", customer.base_url),
                client_id=plan.changes.get("client_id", customer.client_id),
                client_secret=secret,
                entity_id=plan.changes.get("entity_id", customer.entity_id),
            )
        )
    async with uow.transaction() as session:
        customer = await session.get(
            Customer, customer_id, with_for_update=True, populate_existing=True
        )
        if customer is None:  # deleted while Zuora was being asked
            raise _not_found(customer_id)
        if plan.changes and _planned_from(customer) != plan.seen:
            # Another change committed since the plan was read: writing now could store a
            # combination of credentials nobody validated (and mark it valid).
            raise ConcurrentChangeError(
                f"Customer {customer_id} was changed by another request meanwhile; "
                "read it again and resend the change"
            )
        if plan.changes:
            for field, value in plan.changes.items():
                if field != "client_secret":
                    setattr(customer, field, value)
            if plan.new_secret is not None:
                set_client_secret(policy.box, customer, plan.new_secret)
            if plan.credentials_changed:
                customer.credential_status = (
                    CredentialStatus.VALID if checked else CredentialStatus.UNKNOWN
                )
            try:
                async with session.begin_nested():
                    await session.flush()
            except IntegrityError:
                raise _name_taken(str(plan.changes.get("name", customer.name))) from None
            uow.publish(
                topics.CUSTOMER_EVENTS,
                CustomerUpdated(
                    customer_id=customer.id,
                    changed_fields=sorted(plan.changes),
                    credentials_changed=plan.credentials_changed,
                    active=customer.active,
                ),
                key=str(customer.id),
            )
        count = await session.scalar(
            select(func.count(StoredWorkflow.id)).where(StoredWorkflow.customer_id == customer_id)
        )
    if plan.changes:
        logger.info(
            "Customer updated: id=%s changed=%s credentials_changed=%s",
            customer_id,
            ",".join(sorted(plan.changes)),
            plan.credentials_changed,
        )
    return _public(customer, int(count or 0))


async def delete_customer(uow: UnitOfWork, customer_id: uuid.UUID) -> None:
    """Delete the customer (workflows and runs cascade) and queue CustomerDeleted."""
    async with uow.transaction() as session:
        customer = await session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            raise _not_found(customer_id)
        await session.delete(customer)
        await session.flush()
        uow.publish(
            topics.CUSTOMER_EVENTS, CustomerDeleted(customer_id=customer_id), key=str(customer_id)
        )
    logger.info("Customer deleted: id=%s", customer_id)
