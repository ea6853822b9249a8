"""Customer use cases: add, update, remove, check credentials, read.

Each change and the event that announces it (``CustomerCreated`` / ``CustomerUpdated`` /
``CustomerDeleted``) commit together through the unit of work's outbox, so a customer added
from any entrypoint is synced by the workers within seconds.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sync_messages import CustomerCreated, CustomerDeleted, CustomerUpdated, topics
from workflow_store.crypto import SecretBox
from workflow_store.customers import decrypt_client_secret, set_client_secret
from workflow_store.errors import SecretDecryptionError
from workflow_store.models import CredentialStatus, Customer
from zuora_client import ZuoraCredentials

from application import rules
from application.errors import (
    ConcurrentChange,
    CredentialsRejected,
    CustomerNameTaken,
    NotFound,
    StoredSecretUnusable,
)
from application.ports import CredentialsChecker, UnitOfWork
from application.views import CredentialsChecked, CustomerView, Page

__all__ = [
    "CREDENTIAL_FIELDS",
    "KEEP",
    "CustomerChanges",
    "CustomerPolicy",
    "NewCustomer",
    "add_customer",
    "check_credentials",
    "find_customer",
    "get_customer",
    "list_customers",
    "remove_customer",
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
    validate_credentials: bool = True  # False: never ask Zuora (offline setups)


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""An optional field left as it is (``None`` would clear it)."""


@dataclass(frozen=True, repr=False)
class NewCustomer:
    name: str
    base_url: str
    client_id: str
    client_secret: str
    entity_id: str | None = None
    check_credentials: bool = True  # ask Zuora for a token first (if the policy allows)

    def __repr__(self) -> str:  # never the secret
        return f"NewCustomer(name={self.name!r}, base_url={self.base_url!r})"


@dataclass(frozen=True, repr=False)
class CustomerChanges:
    """What to change; ``None`` (``KEEP`` for ``entity_id``, where ``None`` clears) keeps."""

    name: str | None = None
    base_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    entity_id: str | _Keep | None = KEEP
    active: bool | None = None
    check_credentials: bool = True  # ask Zuora when credentials change (if the policy allows)

    def __repr__(self) -> str:  # never the secret
        return f"CustomerChanges(name={self.name!r}, active={self.active!r})"


def _not_found(ref: object) -> NotFound:
    return NotFound(f"Customer {ref} not found")


def _credentials(
    base_url: str, client_id: str, secret: str, entity_id: str | None
) -> ZuoraCredentials:
    return ZuoraCredentials(
        base_url=base_url, client_id=client_id, client_secret=secret, entity_id=entity_id
    )


# -- reads -----------------------------------------------------------------------------------


async def get_customer(uow: UnitOfWork, customer_id: uuid.UUID) -> CustomerView:
    view = await uow.customers.view(customer_id)
    if view is None:
        raise _not_found(customer_id)
    return view


async def find_customer(uow: UnitOfWork, ref: str | uuid.UUID) -> CustomerView:
    """By id, else by name."""
    customer = await uow.customers.find(ref)
    if customer is None:
        raise _not_found(ref)
    return await get_customer(uow, customer.id)


async def list_customers(
    uow: UnitOfWork,
    *,
    page: int = 1,
    page_size: int = 50,
    active_only: bool = False,
    where: Sequence[Any] = (),
) -> Page[CustomerView]:
    """Customers by name; ``where``: the adapter's extra conditions (the UI's filters)."""
    items, total = await uow.customers.page(
        page=page, page_size=page_size, active_only=active_only, where=where
    )
    return Page(items=items, total=total, page=page, page_size=page_size)


# -- changes ---------------------------------------------------------------------------------


async def add_customer(uow: UnitOfWork, policy: CustomerPolicy, new: NewCustomer) -> CustomerView:
    """Validate (rules, base URL, then credentials unless skipped), store, queue CustomerCreated."""
    name = rules.customer_name(new.name)
    base_url = rules.base_url(new.base_url, policy.allowed_base_urls)
    client_id = rules.client_id(new.client_id)
    entity_id = rules.entity_id(new.entity_id)
    secret = rules.client_secret(new.client_secret)
    if await uow.customers.name_exists(name):
        raise CustomerNameTaken(name)
    checked = policy.validate_credentials and new.check_credentials
    if checked:
        await uow.end_read()  # hold no connection while Zuora is asked
        await policy.checker(_credentials(base_url, client_id, secret, entity_id))
    async with uow.transaction():
        customer = Customer(
            id=uuid.uuid4(),
            name=name,
            base_url=base_url,
            client_id=client_id,
            client_secret_encrypted=policy.box.encrypt(secret),
            entity_id=entity_id,
            active=True,
            credential_status=CredentialStatus.VALID if checked else CredentialStatus.UNKNOWN,
        )
        await uow.customers.add(customer)
        uow.publish(
            topics.CUSTOMER_EVENTS,
            CustomerCreated(customer_id=customer.id, name=customer.name),
            key=str(customer.id),
        )
    logger.info(
        "Customer created: id=%s name=%r credentials_checked=%s", customer.id, name, checked
    )
    return CustomerView.of(customer, 0)


@dataclass
class _Plan:
    changes: dict[str, Any]
    new_secret: str | None = field(repr=False)  # a secret never reaches a log line or a traceback
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


def _plan_update(customer: Customer, data: CustomerChanges, policy: CustomerPolicy) -> _Plan:
    changes: dict[str, Any] = {}
    if data.name is not None and rules.customer_name(data.name) != customer.name:
        changes["name"] = data.name
    if data.base_url is not None:
        base_url = rules.base_url(data.base_url, policy.allowed_base_urls)
        if base_url != customer.base_url:
            changes["base_url"] = base_url
    if data.client_id is not None and rules.client_id(data.client_id) != customer.client_id:
        changes["client_id"] = data.client_id
    if data.entity_id is not KEEP and rules.entity_id(data.entity_id) != customer.entity_id:
        changes["entity_id"] = data.entity_id
    if data.active is not None and data.active != customer.active:
        changes["active"] = data.active
    new_secret: str | None = None
    if data.client_secret is not None:
        new_secret = rules.client_secret(data.client_secret)
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


def _stored_secret(policy: CustomerPolicy, customer: Customer) -> str:
    try:
        return decrypt_client_secret(policy.box, customer)
    except SecretDecryptionError:
        raise StoredSecretUnusable(
            "The stored client secret cannot be decrypted with the configured "
            "ENCRYPTION_KEYS; send client_secret together with the other credentials"
        ) from None


async def update_customer(
    uow: UnitOfWork, policy: CustomerPolicy, customer_id: uuid.UUID, data: CustomerChanges
) -> CustomerView:
    """Rename, rotate credentials (checked like on add), (de)activate; queue CustomerUpdated."""
    customer = await uow.customers.get(customer_id)
    if customer is None:
        raise _not_found(customer_id)
    plan = _plan_update(customer, data, policy)
    if "name" in plan.changes and await uow.customers.name_exists(
        plan.changes["name"], other_than=customer_id
    ):
        raise CustomerNameTaken(plan.changes["name"])
    checked = plan.credentials_changed and policy.validate_credentials and data.check_credentials
    if checked:
        secret = (
            plan.new_secret if plan.new_secret is not None else _stored_secret(policy, customer)
        )
        await uow.end_read()  # hold no connection while Zuora is asked
        await policy.checker(
            _credentials(
                plan.changes.get("base_url", customer.base_url),
                plan.changes.get("client_id", customer.client_id),
                secret,
                plan.changes.get("entity_id", customer.entity_id),
            )
        )
    async with uow.transaction():
        customer = await uow.customers.get(customer_id, for_update=True)
        if customer is None:  # deleted while Zuora was being asked
            raise _not_found(customer_id)
        if plan.changes and _planned_from(customer) != plan.seen:
            # Another change committed since the plan was read: writing now could store a
            # combination of credentials nobody validated (and mark it valid).
            raise ConcurrentChange(
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
            await uow.customers.save(customer)
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
        view = await uow.customers.view(customer_id)
    if plan.changes:
        logger.info(
            "Customer updated: id=%s changed=%s credentials_changed=%s",
            customer_id,
            ",".join(sorted(plan.changes)),
            plan.credentials_changed,
        )
    assert view is not None  # the row is locked by this transaction
    return view


async def remove_customer(uow: UnitOfWork, ref: str | uuid.UUID) -> CustomerView:
    """Delete the customer (id, else name; workflows and runs cascade), queue CustomerDeleted;
    returns what was removed."""
    async with uow.transaction():
        found = await uow.customers.find(ref)
        customer = None if found is None else await uow.customers.get(found.id, for_update=True)
        if customer is None:
            raise _not_found(ref)
        removed = CustomerView.of(customer, 0)
        await uow.customers.delete(customer)
        uow.publish(
            topics.CUSTOMER_EVENTS, CustomerDeleted(customer_id=removed.id), key=str(removed.id)
        )
    logger.info("Customer deleted: id=%s", removed.id)
    return removed


async def check_credentials(
    uow: UnitOfWork, policy: CustomerPolicy, ref: str | uuid.UUID
) -> CredentialsChecked:
    """Ask Zuora for a token with the stored credentials and record the answer as the
    customer's ``credential_status`` (``valid``; ``invalid`` and then ``CredentialsRejected``).
    Zuora being unavailable records nothing (``ZuoraUnavailable``)."""
    customer = await uow.customers.find(ref)
    if customer is None:
        raise _not_found(ref)
    seen = _planned_from(customer)
    customer_id, name = customer.id, customer.name
    credentials = _credentials(
        customer.base_url, customer.client_id, _stored_secret(policy, customer), customer.entity_id
    )
    await uow.end_read()  # hold no connection while Zuora is asked
    rejected: CredentialsRejected | None = None
    try:
        await policy.checker(credentials)
    except CredentialsRejected as exc:
        rejected = exc
    status = CredentialStatus.INVALID if rejected is not None else CredentialStatus.VALID
    async with uow.transaction():
        current = await uow.customers.get(customer_id, for_update=True)
        if current is None:
            raise _not_found(ref)
        if _planned_from(current) != seen:
            raise ConcurrentChange(
                f"Customer {name} was changed while its credentials were checked; check again"
            )
        current.credential_status = status
        await uow.customers.save(current)
    logger.info("Credentials checked: id=%s status=%s", customer_id, status)
    if rejected is not None:
        raise rejected
    return CredentialsChecked(customer_id=customer_id, name=name, credential_status=status)
