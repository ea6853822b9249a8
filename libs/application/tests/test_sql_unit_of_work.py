"""The SQLAlchemy unit of work and repositories against a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from application import customers, runs, sync
from application.customers import CustomerChanges, CustomerPolicy, NewCustomer
from application.errors import CustomerNameTaken, NotFound
from application.uow import SqlUnitOfWork, unit_of_work
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sync_messages import SyncReason
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async
from workflow_store.models import Customer, OutboxMessage

from .fakes import FakeChecker

pytestmark = pytest.mark.integration

SANDBOX = "http://127.0.0.1:8080"


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def policy() -> CustomerPolicy:
    return CustomerPolicy(
        box=SecretBox([SecretBox.generate_key()]),
        allowed_base_urls=(SANDBOX,),
        checker=FakeChecker(),
    )


def new(name: str = "Acme") -> NewCustomer:
    return NewCustomer(name=name, base_url=SANDBOX, client_id="cid", client_secret="s3cret")


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.topic, OutboxMessage.payload).order_by(OutboxMessage.seq)
        )
        return [(topic, payload["type"]) for topic, payload in rows.all()]


async def test_each_change_commits_with_its_event_and_wakes_the_relay(
    sessions: async_sessionmaker[AsyncSession], policy: CustomerPolicy
) -> None:
    woken: list[int] = []
    async with unit_of_work(sessions, on_commit=lambda: woken.append(1)) as uow:
        added = await customers.add_customer(uow, policy, new())
        await customers.update_customer(uow, policy, added.id, CustomerChanges(name="Acme 2"))
        queued = await sync.request_customer_sync(uow, "Acme 2", reason=SyncReason.CLI)
        await customers.remove_customer(uow, added.id)
        assert len(uow.committed_messages) == 4 and len(woken) == 4
    assert [kind for _, kind in await outbox(sessions)] == [
        "CustomerCreated",
        "CustomerUpdated",
        "SyncCustomerWorkflows",
        "CustomerDeleted",
    ]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0
        ids = set((await session.scalars(select(OutboxMessage.id))).all())
    assert {str(i) for i in ids} >= {queued.command_id}


async def test_a_failed_transaction_stores_neither_the_change_nor_the_event(
    sessions: async_sessionmaker[AsyncSession],
    policy: CustomerPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_enqueue(*args: object, **kwargs: object) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr("application.uow.enqueue", broken_enqueue)
    async with unit_of_work(sessions) as uow:
        with pytest.raises(RuntimeError):
            await customers.add_customer(uow, policy, new())
        assert uow.committed_messages == []
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0
    assert await outbox(sessions) == []


async def test_the_unique_name_race_is_a_name_conflict(
    sessions: async_sessionmaker[AsyncSession], policy: CustomerPolicy
) -> None:
    async with unit_of_work(sessions) as uow:
        await customers.add_customer(uow, policy, new())
    async with sessions() as session:
        uow = SqlUnitOfWork(session)
        # The pre-check passes (the name is free at that moment in the race) ...
        monkey = uow.customers
        original = monkey.name_exists

        async def free(name: str, *, other_than: object = None) -> bool:
            return False

        monkey.name_exists = free  # type: ignore[method-assign]
        # ... and the unique index still refuses: a conflict, not an IntegrityError.
        with pytest.raises(CustomerNameTaken):
            await customers.add_customer(uow, policy, new())
        monkey.name_exists = original  # type: ignore[method-assign]
    assert [kind for _, kind in await outbox(sessions)] == ["CustomerCreated"]


async def test_reads_through_sql(
    sessions: async_sessionmaker[AsyncSession], policy: CustomerPolicy
) -> None:
    async with unit_of_work(sessions) as uow:
        acme = await customers.add_customer(uow, policy, new())
        await customers.add_customer(uow, policy, new("Beta"))
        listing = await customers.list_customers(uow, page=1, page_size=1)
        assert [c.name for c in listing.items] == ["Acme"] and listing.total == 2
        assert (await customers.find_customer(uow, str(acme.id))).name == "Acme"
        assert (await runs.list_runs(uow, customer="Acme")).total == 0
        assert await runs.list_failed(uow) == []
        with pytest.raises(NotFound):
            await runs.list_runs(uow, customer="nobody")
