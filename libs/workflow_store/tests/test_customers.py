"""Customers repository on both dialects; the secret never appears in plaintext."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.crypto import SecretBox
from workflow_store.customers import (
    active_customer_ids,
    add_customer,
    decrypt_client_secret,
    get_customer,
    get_customer_by_name,
    list_customers,
    remove_customer,
    rotate_secrets,
    set_client_secret,
)
from workflow_store.db import create_engine, create_session_factory
from workflow_store.errors import CustomerExistsError, CustomerNotFoundError, SecretDecryptionError
from workflow_store.migrate import upgrade_async
from workflow_store.models import Customer

SECRET = "plain-client-secret-1234"


async def _add(session: AsyncSession, box: SecretBox, name: str, **kw: object) -> Customer:
    return await add_customer(
        session,
        box,
        name=name,
        base_url="https://rest.apisandbox.zuora.com",
        client_id=f"{name}-id",
        client_secret=f"{SECRET}-{name}",
        **kw,  # type: ignore[arg-type]
    )


async def test_add_get_list_remove(session: AsyncSession, box: SecretBox) -> None:
    acme = await _add(session, box, "acme", entity_id="ent-1")
    await _add(session, box, "globex", active=False)
    await _add(session, box, "initech")
    await session.commit()

    assert (await get_customer(session, acme.id)).name == "acme"
    by_name = await get_customer_by_name(session, "acme")
    assert by_name.id == acme.id
    assert by_name.entity_id == "ent-1"
    assert by_name.base_url == "https://rest.apisandbox.zuora.com"
    assert by_name.client_id == "acme-id"
    assert by_name.active is True
    assert by_name.credential_status == "unknown"

    assert [c.name for c in await list_customers(session)] == ["acme", "globex", "initech"]
    active = await list_customers(session, active_only=True)
    assert [c.name for c in active] == ["acme", "initech"]
    assert await active_customer_ids(session) == sorted(c.id for c in active)
    page = await list_customers(session, limit=1, offset=1)
    assert [c.name for c in page] == ["globex"]

    removed = await remove_customer(session, "globex")
    await session.commit()
    assert removed.name == "globex"
    removed_by_id = await remove_customer(session, str(acme.id))
    await session.commit()
    assert removed_by_id.id == acme.id
    assert [c.name for c in await list_customers(session)] == ["initech"]


async def test_duplicate_name(session: AsyncSession, box: SecretBox) -> None:
    await _add(session, box, "acme")
    await session.commit()
    with pytest.raises(CustomerExistsError, match="acme"):
        await _add(session, box, "acme")
    # the session is still usable
    await _add(session, box, "acme-2")
    await session.commit()
    assert len(await list_customers(session)) == 2


async def test_duplicate_name_in_the_same_transaction(
    session: AsyncSession, box: SecretBox
) -> None:
    await _add(session, box, "acme")
    with pytest.raises(CustomerExistsError):
        await _add(session, box, "acme")
    await session.commit()
    assert [c.name for c in await list_customers(session)] == ["acme"]


async def test_not_found(session: AsyncSession) -> None:
    with pytest.raises(CustomerNotFoundError):
        await get_customer_by_name(session, "nobody")
    with pytest.raises(CustomerNotFoundError):
        await get_customer(session, uuid.uuid4())
    with pytest.raises(CustomerNotFoundError):
        await remove_customer(session, "nobody")
    with pytest.raises(CustomerNotFoundError):
        await remove_customer(session, uuid.uuid4())


async def test_secret_is_encrypted_at_rest(session: AsyncSession, box: SecretBox) -> None:
    acme = await _add(session, box, "acme")
    await session.commit()

    raw = (await session.execute(text("SELECT * FROM customers"))).all()
    dumped = repr(raw)
    assert f"{SECRET}-acme" not in dumped
    stored = (
        await session.execute(text("SELECT client_secret_encrypted FROM customers"))
    ).scalar_one()
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert decrypt_client_secret(box, acme) == f"{SECRET}-acme"

    for text_form in (repr(acme), str(acme)):
        assert SECRET not in text_form
        assert stored not in text_form
        assert "client_secret" not in text_form


async def test_set_client_secret(session: AsyncSession, box: SecretBox) -> None:
    acme = await _add(session, box, "acme")
    await session.commit()
    before = acme.updated_at
    set_client_secret(box, acme, "new-secret")
    await session.commit()
    session.expunge_all()
    loaded = await get_customer_by_name(session, "acme")
    assert decrypt_client_secret(box, loaded) == "new-secret"
    assert loaded.updated_at >= before


async def test_rotate_secrets(session: AsyncSession) -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    old_box = SecretBox([old])
    for name in ("acme", "globex", "initech"):
        await _add(session, old_box, name)
    await session.commit()

    rotating = SecretBox([new, old])
    assert await rotate_secrets(session, rotating) == 3
    await session.commit()
    session.expunge_all()

    new_only = SecretBox([new])
    for customer in await list_customers(session):
        assert decrypt_client_secret(new_only, customer) == f"{SECRET}-{customer.name}"
        with pytest.raises(SecretDecryptionError):
            decrypt_client_secret(old_box, customer)


async def test_rotate_secrets_changes_nothing_when_a_secret_is_undecryptable(
    session: AsyncSession,
) -> None:
    key_a, key_b = SecretBox.generate_key(), SecretBox.generate_key()
    await _add(session, SecretBox([key_a]), "acme")
    await _add(session, SecretBox([key_b]), "globex")
    await session.commit()
    before: dict[str, bytes] = dict(
        (await session.execute(text("SELECT name, client_secret_encrypted FROM customers"))).all()
    )
    with pytest.raises(SecretDecryptionError):
        await rotate_secrets(session, SecretBox([SecretBox.generate_key(), key_a]))
    await session.rollback()
    after: dict[str, bytes] = dict(
        (await session.execute(text("SELECT name, client_secret_encrypted FROM customers"))).all()
    )
    assert after == before


async def test_rotate_secrets_on_empty_table(session: AsyncSession, box: SecretBox) -> None:
    assert await rotate_secrets(session, box) == 0


class _PatchDuringRotation(SecretBox):
    """Commits a client-secret change (as ``PATCH /customers/{id}`` does) from another
    connection the first time rotation re-encrypts: after it has read, before it writes."""

    def __init__(self, keys: list[str], database_url: str, name: str, secret: str) -> None:
        super().__init__(keys)
        self.database_url, self.name, self.secret = database_url, name, secret
        self.patched = False

    def rotate(self, token: str) -> str:
        if not self.patched:
            self.patched = True
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE customers SET client_secret_encrypted = %s WHERE name = %s",
                    (self.encrypt(self.secret), self.name),
                )
        return super().rotate(token)


async def test_rotate_secrets_keeps_a_secret_changed_meanwhile(postgres_url: str) -> None:
    # Audit D4, exp4: a PATCH committed between rotation's SELECT and its write was reverted.
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    try:
        async with sessions() as setup:
            for name in ("acme", "globex"):
                await _add(setup, SecretBox([old_key]), name)
            await setup.commit()
        plain_url = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
        rotating = _PatchDuringRotation([new_key, old_key], plain_url, "acme", "rotated-by-patch")
        async with sessions() as rotation:
            assert await rotate_secrets(rotation, rotating) == 2
            await rotation.commit()
        assert rotating.patched
        async with sessions() as check:
            new_only = SecretBox([new_key])
            acme = await get_customer_by_name(check, "acme")
            globex = await get_customer_by_name(check, "globex")
            assert decrypt_client_secret(new_only, acme) == "rotated-by-patch"
            assert decrypt_client_secret(new_only, globex) == f"{SECRET}-globex"
    finally:
        await engine.dispose()
