"""Customers repository: async functions over an :class:`AsyncSession` and a :class:`SecretBox`.

The functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .crypto import SecretBox
from .errors import ConcurrentUpdateError, CustomerExistsError, CustomerNotFoundError
from .models import CredentialStatus, Customer

__all__ = [
    "active_customer_ids",
    "add_customer",
    "decrypt_client_secret",
    "get_customer",
    "get_customer_by_name",
    "list_customers",
    "remove_customer",
    "resolve_customer",
    "rotate_secrets",
    "set_client_secret",
]


async def add_customer(
    session: AsyncSession,
    box: SecretBox,
    *,
    name: str,
    base_url: str,
    client_id: str,
    client_secret: str,
    entity_id: str | None = None,
    active: bool = True,
) -> Customer:
    """Create a customer with its client secret encrypted; raises :class:`CustomerExistsError`."""
    existing = await session.scalar(select(Customer.id).where(Customer.name == name))
    if existing is not None:
        raise CustomerExistsError(name)
    customer = Customer(
        id=uuid.uuid4(),
        name=name,
        base_url=base_url,
        client_id=client_id,
        client_secret_encrypted=box.encrypt(client_secret),
        entity_id=entity_id,
        active=active,
        credential_status=CredentialStatus.UNKNOWN,
    )
    session.add(customer)
    try:
        # A savepoint, so losing a race on the unique name leaves the caller's
        # transaction usable.
        async with session.begin_nested():
            await session.flush([customer])
    except IntegrityError:
        raise CustomerExistsError(name) from None
    return customer


async def get_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    """The customer with this id; raises :class:`CustomerNotFoundError`."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFoundError(customer_id)
    return customer


async def get_customer_by_name(session: AsyncSession, name: str) -> Customer:
    """The customer with this name; raises :class:`CustomerNotFoundError`."""
    customer = await session.scalar(select(Customer).where(Customer.name == name))
    if customer is None:
        raise CustomerNotFoundError(name)
    return customer


async def resolve_customer(session: AsyncSession, name_or_id: str | uuid.UUID) -> Customer:
    """Find a customer by id (a UUID or its text) or else by name."""
    if isinstance(name_or_id, uuid.UUID):
        return await get_customer(session, name_or_id)
    try:
        customer_id = uuid.UUID(name_or_id)
    except ValueError:
        return await get_customer_by_name(session, name_or_id)
    customer = await session.get(Customer, customer_id)
    if customer is not None:
        return customer
    # A name that happens to look like a UUID.
    return await get_customer_by_name(session, name_or_id)


async def list_customers(
    session: AsyncSession,
    *,
    active_only: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[Customer]:
    """Customers ordered by name."""
    stmt = select(Customer).order_by(Customer.name, Customer.id).offset(offset)
    if active_only:
        stmt = stmt.where(Customer.active.is_(True))
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.scalars(stmt)).all()


async def active_customer_ids(session: AsyncSession) -> list[uuid.UUID]:
    """The ids of every active customer, in id order (what a sync-all fans out to)."""
    rows = await session.scalars(
        select(Customer.id).where(Customer.active.is_(True)).order_by(Customer.id)
    )
    return list(rows)


async def remove_customer(session: AsyncSession, name_or_id: str | uuid.UUID) -> Customer:
    """Delete a customer (its workflows and sync runs go with it, ON DELETE CASCADE).

    Returns the removed customer (its loaded attributes stay readable).
    """
    customer = await resolve_customer(session, name_or_id)
    await session.delete(customer)
    await session.flush()
    return customer


def decrypt_client_secret(box: SecretBox, customer: Customer) -> str:
    """The customer's client secret in plaintext (raises ``SecretDecryptionError``)."""
    return box.decrypt(customer.client_secret_encrypted)


def set_client_secret(box: SecretBox, customer: Customer, plaintext: str) -> None:
    """Replace the customer's client secret (encrypted under the newest key)."""
    customer.client_secret_encrypted = box.encrypt(plaintext)


async def rotate_secrets(session: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every customer's secret under the newest key; returns the number of rows.

    Raises ``SecretDecryptionError`` and changes nothing if any secret cannot be decrypted
    with the configured keys. Each row is written with a compare-and-swap on the ciphertext it
    was read with, so a secret changed meanwhile (``PATCH /customers/{id}``) is never reverted:
    that row is read again and rotated from its new value. ``updated_at`` is left alone
    (re-encrypting changes no credential).
    """
    rows = (
        await session.execute(
            select(Customer.id, Customer.client_secret_encrypted).order_by(Customer.id)
        )
    ).all()
    # Rotate all first: one undecryptable secret leaves every row as it was.
    rotated = {customer_id: (old, box.rotate(old)) for customer_id, old in rows}
    for customer_id, (old, new) in rotated.items():
        for _attempt in range(_ROTATE_ATTEMPTS):
            if await _swap_secret(session, customer_id, old, new):
                break
            current = await session.scalar(
                select(Customer.client_secret_encrypted).where(Customer.id == customer_id)
            )
            if current is None:  # deleted meanwhile: nothing to rotate
                break
            old, new = current, box.rotate(current)
        else:
            raise ConcurrentUpdateError(
                f"customer {customer_id}: its secret kept changing during the rotation; "
                "run it again"
            )
    session.expire_all()  # loaded Customer objects must not keep the old ciphertext
    return len(rows)


_ROTATE_ATTEMPTS = 5


async def _swap_secret(session: AsyncSession, customer_id: uuid.UUID, old: str, new: str) -> bool:
    result = await session.execute(
        update(Customer)
        .where(Customer.id == customer_id, Customer.client_secret_encrypted == old)
        .values(client_secret_encrypted=new, updated_at=Customer.updated_at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1
