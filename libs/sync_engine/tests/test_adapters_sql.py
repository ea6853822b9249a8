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


async def test_the_run_row_written_by_core_statements_is_the_one_the_orm_path_wrote(
    db: Db,
) -> None:
    """finish_run is one UPDATE: the duration from the stored start (truncated to whole ms,
    never negative), a request id only when the outcome has one, every counter and note."""
    cid = await db.customer("acme")
    async with db.store.transaction() as tx:
        run_id = await tx.runs.start_run(SyncRequest(customer_id=cid, force=True), T0)
        skip_id = await tx.runs.record_skip(SyncRequest(customer_id=cid), "covered", T0)
    stats = SyncStats(pages=2, created=3, updated=4, deleted=1, unchanged=5, total=12)
    stats.definitions_fetched, stats.definitions_changed = 7, 6
    first = SyncOutcome(
        customer_id=cid,
        status=RunStatus.FAILED,
        run_id=run_id,
        stats=stats,
        error_kind=FailureKind.TRANSIENT,
        error_message="boom",
        zuora_request_id="req-1",
    )
    async with db.store.transaction() as tx:
        await tx.runs.finish_run(run_id, first, T0 + timedelta(microseconds=1_234_567))
    then = SyncOutcome(
        customer_id=cid,
        status=RunStatus.DELETES_BLOCKED,
        run_id=run_id,
        stats=stats,
        blocked_deletes=9,
        error_message="guard",
    )
    async with db.store.transaction() as tx:
        await tx.runs.finish_run(run_id, then, T0 - timedelta(seconds=1))  # a clock step back

    by_id = {run.id: run for run in await db.runs(cid)}
    run = by_id[run_id]
    assert (run.status, run.forced, run.blocked_deletes, run.error_kind) == (
        "deletes_blocked",
        True,
        9,
        None,
    )
    assert (run.pages, run.created, run.updated, run.deleted, run.unchanged, run.total) == (
        2,
        3,
        4,
        1,
        5,
        12,
    )
    assert (run.definitions_fetched, run.definitions_changed, run.definitions_failed) == (7, 6, 0)
    assert run.error_message == "guard" and run.zuora_request_id == "req-1"  # kept
    assert run.finished_at == T0 - timedelta(seconds=1) and run.duration_ms == 0
    skipped = by_id[skip_id]
    assert (skipped.status, skipped.skip_reason, skipped.duration_ms) == ("skipped", "covered", 0)
    assert skipped.finished_at == T0 and skipped.pages == 0 and skipped.attempt == 1
    async with db.store.transaction() as tx:
        await tx.runs.finish_run(run_id, first, T0 + timedelta(microseconds=1_234_567))
    [run] = [r for r in await db.runs(cid) if r.id == run_id]
    assert run.duration_ms == 1234 and run.error_kind == "transient"


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
