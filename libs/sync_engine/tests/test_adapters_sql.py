"""The store and lock adapters of the sync use case against real PostgreSQL: what the fakes of
test_use_case.py stand in for (sync_engine.adapters.sql, sync_engine.adapters.lock)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sync_engine import FailureKind, RunStatus, SyncOutcome, SyncRequest
from sync_engine.adapters import DatabaseCustomerLock, SqlSyncStore
from sync_engine.failures import CustomerBusyError, CustomerLockLostError
from sync_engine.hashing import content_hash
from sync_engine.locks import HeldLock
from sync_engine.outcome import CustomerSyncStatus, SyncStats
from sync_messages.vocabulary import CredentialStatus
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async
from workflow_store.models import Customer, StoredWorkflow, SyncRun
from zuora_client import Workflow

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@dataclass
class Db:
    store: SqlSyncStore
    sessions: async_sessionmaker[AsyncSession]
    lock: DatabaseCustomerLock
    box: SecretBox

    async def customer(self, name: str) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            row = await add_customer(
                session,
                self.box,
                name=name,
                base_url="https://zuora.invalid",
                client_id=f"{name}-client",
                client_secret=f"{name}-secret",
            )
            return row.id

    async def runs(self, customer_id: uuid.UUID) -> list[SyncRun]:
        async with self.sessions() as session:
            of_customer = SyncRun.customer_id == customer_id
            rows = await session.scalars(
                select(SyncRun).where(of_customer).order_by(SyncRun.started_at)
            )
            return list(rows)


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Db]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    box = SecretBox([SecretBox.generate_key()])
    sessions = create_session_factory(engine)
    try:
        yield Db(
            SqlSyncStore(sessions, box, clock=lambda: T0),
            sessions,
            DatabaseCustomerLock(engine, wait_seconds=0.2),
            box,
        )
    finally:
        await engine.dispose()


def workflow(wid: int, name: str) -> tuple[Workflow, str]:
    item = {"id": wid, "name": name, "status": "Active"}
    return Workflow.from_api(item), content_hash(item)


async def test_the_ledger_closes_an_abandoned_run_and_keeps_one_running(db: Db) -> None:
    cid = await db.customer("acme")
    request = SyncRequest(customer_id=cid, command_id="c-1", reason="manual")
    async with db.store.transaction() as tx:
        dead = await tx.runs.start_run(request, T0)
    async with db.store.transaction() as tx:
        live = await tx.runs.start_run(request, T0 + timedelta(seconds=5))
        running = await tx.runs.running_run(cid)
    assert running is not None and running.command_id == "c-1"
    assert running.started_at == T0 + timedelta(seconds=5)

    by_id = {run.id: run for run in await db.runs(cid)}
    assert by_id[dead].status == RunStatus.FAILED and by_id[dead].error_kind == "transient"
    assert (by_id[dead].error_message or "").startswith("abandoned")
    assert by_id[live].status == RunStatus.RUNNING and by_id[live].reason == "manual"


async def test_a_finished_run_and_its_customer_carry_the_outcome(db: Db) -> None:
    cid = await db.customer("acme")
    request = SyncRequest(customer_id=cid, attempt=2)
    async with db.store.transaction() as tx:
        run_id = await tx.runs.start_run(request, T0)
    outcome = SyncOutcome(
        customer_id=cid,
        status=RunStatus.FAILED,
        run_id=run_id,
        stats=SyncStats(pages=3, errors=1, definitions_failed=2),
        error_kind=FailureKind.PERMANENT,
        error_message="AuthenticationError: invalid client",
        zuora_request_id="r" * 100,  # longer than the column: cut, still recorded
    )
    async with db.store.transaction() as tx:
        now = T0 + timedelta(seconds=2)
        await tx.runs.finish_run(run_id, outcome, now)
        status = CustomerSyncStatus.after(
            outcome, started_at=T0, now=now, credential_status=CredentialStatus.INVALID
        )
        await tx.runs.record_customer(cid, status)

    [run] = await db.runs(cid)
    assert (run.status, run.attempt, run.pages, run.definitions_failed) == ("failed", 2, 3, 2)
    assert run.duration_ms == 2000 and run.zuora_request_id == "r" * 64
    async with db.sessions() as session:
        customer = await session.get(Customer, cid)
    assert customer is not None
    assert (customer.last_sync_status, customer.credential_status) == ("failed", "invalid")
    assert customer.last_successful_sync_at is None
    assert customer.last_sync_error == "AuthenticationError: invalid client"


async def test_the_customer_state_decrypts_its_secret_only_when_asked(db: Db) -> None:
    cid = await db.customer("acme")
    async with db.store.transaction() as tx:
        state = await tx.runs.customer(cid, hold=True)
        gone = await tx.runs.customer(uuid.uuid4(), hold=True)
    assert gone is None and state is not None and state.active
    creds = state.credentials()
    assert creds.client_secret.get_secret_value() == "acme-secret"
    assert "acme-secret" not in repr(state)


async def test_deletes_are_scoped_to_the_customer_and_a_failed_transaction_leaves_nothing(
    db: Db,
) -> None:
    a, b = await db.customer("a"), await db.customer("b")
    async with db.store.transaction() as tx:
        await tx.workflows.upsert(a, [workflow(1, "a1"), workflow(2, "a2")], T0)
        await tx.workflows.upsert(b, [workflow(1, "b1")], T0)
    async with db.store.transaction() as tx:
        await tx.workflows.delete(a, [1])

    async def failing_write() -> None:
        async with db.store.transaction() as tx:
            await tx.workflows.upsert(a, [workflow(3, "a3")], T0)
            await tx.workflows.delete(b, [1])
            raise RuntimeError("the write failed midway")

    with pytest.raises(RuntimeError):
        await failing_write()

    async with db.store.transaction() as tx:
        assert set(await tx.workflows.stored_hashes(a)) == {2}
        assert set(await tx.workflows.stored_hashes(b)) == {1}
    async with db.sessions() as session:
        names = set(await session.scalars(select(StoredWorkflow.name)))
    assert names == {"a2", "b1"}


async def test_the_fence_passes_while_the_lock_is_held_and_refuses_a_lost_one(db: Db) -> None:
    cid = await db.customer("acme")
    async with db.lock.hold(cid) as held:
        assert held.holder_pid is not None
        with pytest.raises(CustomerBusyError):
            async with db.lock.hold(cid):
                pass
        async with db.store.transaction() as tx:
            await tx.fence(held)  # held: no error
    # The same holder once the lock is released: the write must not commit.
    with pytest.raises(CustomerLockLostError):
        async with db.store.transaction() as tx:
            await tx.fence(held)
    with pytest.raises(CustomerLockLostError):
        async with db.store.transaction() as tx:
            await tx.fence(HeldLock(cid, holder_pid=held.holder_pid + 1))
