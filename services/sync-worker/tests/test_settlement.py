"""The worker's records on real PostgreSQL: settle-then-publish (A7) and the sweep of runs left
running by a dead process (M13)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sync_engine import FailureKind, RunStatus, SyncOutcome, SyncRequest
from sync_engine.locks import customer_lock
from sync_messages import SyncCustomerWorkflows, topics
from sync_worker.handlers import SyncCommandHandler
from sync_worker.ledger import ProcessedLedger
from sync_worker.settings import WorkerSettings
from sync_worker.sweep import close_abandoned_runs
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async
from workflow_store.models import Customer, OutboxMessage, SyncRun

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def add_customer(engine: AsyncEngine) -> uuid.UUID:
    customer_id = uuid.uuid4()
    async with create_session_factory(engine)() as session, session.begin():
        session.add(
            Customer(
                id=customer_id,
                name=f"c-{customer_id.hex[:8]}",
                base_url="https://rest.zuora.com",
                client_id="id",
                client_secret_encrypted="x",
            )
        )
    return customer_id


async def add_run(engine: AsyncEngine, customer_id: uuid.UUID, *, age: timedelta) -> uuid.UUID:
    run_id = uuid.uuid4()
    async with create_session_factory(engine)() as session, session.begin():
        session.add(
            SyncRun(
                id=run_id,
                customer_id=customer_id,
                reason="manual",
                attempt=1,
                status="running",
                started_at=datetime.now(UTC) - age,
            )
        )
    return run_id


async def test_a_failed_publish_is_redone_from_the_records_without_syncing_again(
    engine: AsyncEngine,
) -> None:
    """A7: 3 deliveries while the events topic fails, then one that works: one sync, one
    RetrySync, one WorkflowSyncFailed, and the failed run shows as retry_scheduled."""
    customer_id = await add_customer(engine)
    run_id = await add_run(engine, customer_id, age=timedelta(0))
    sessions = create_session_factory(engine)
    published: list[tuple[str, dict[str, object]]] = []
    failing = {topics.SYNC_EVENTS}
    syncs: list[SyncRequest] = []

    async def publish_raw(
        topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        if topic in failing:
            raise KafkaConnectionError("NotEnoughReplicas")
        published.append((topic, json.loads(value)))

    async def sync_customer(request: SyncRequest) -> SyncOutcome:
        syncs.append(request)
        return SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.FAILED,
            run_id=run_id,
            error_kind=FailureKind.TRANSIENT,
            error_message="ServerError: 503",
        )

    async def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("not used")

    async def no_customers() -> list[uuid.UUID]:
        return []

    def handler() -> SyncCommandHandler:  # a fresh handler per delivery: state is in the DB
        return SyncCommandHandler(
            sync_customer=sync_customer,
            active_customer_ids=no_customers,
            ledger=ProcessedLedger(sessions, publish_raw),
            publish=never,
            settings=WorkerSettings(max_attempts=3, retry_backoff_seconds=60),
        )

    command = SyncCustomerWorkflows(customer_id=customer_id, reason="manual")
    for _ in range(3):
        with pytest.raises(KafkaConnectionError):
            await handler().on_command(command)
    failing.clear()
    await handler().on_command(command)
    assert len(syncs) == 1  # Zuora listed once
    types = [(topic, body["type"]) for topic, body in published]
    # the retry went out on the first delivery, and never again
    assert types == [
        (topics.SYNC_RETRY, "RetrySync"),
        (topics.SYNC_EVENTS, "WorkflowSyncFailed"),
    ]
    async with sessions() as session:
        run = await session.get(SyncRun, run_id)
        assert run is not None and run.status == "retry_scheduled"
        pending = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        )
        assert list(pending) == []


async def test_sweep_closes_runs_of_dead_processes_and_never_a_live_one(
    engine: AsyncEngine,
) -> None:
    """M13: a run left running by a crash is closed although the customer is never synced
    again; a run whose customer lock is held (a live sync) stays running."""
    dead_customer = await add_customer(engine)
    live_customer = await add_customer(engine)
    dead_run = await add_run(engine, dead_customer, age=timedelta(hours=2))
    young_run = await add_run(engine, dead_customer, age=timedelta(seconds=5))
    live_run = await add_run(engine, live_customer, age=timedelta(hours=2))
    sessions = create_session_factory(engine)
    async with customer_lock(engine, live_customer, wait_seconds=1):
        closed = await close_abandoned_runs(engine, sessions, older_than=timedelta(minutes=15))
    assert closed == 1
    async with sessions() as session:
        statuses = {
            run.id: (run.status, run.error_message)
            for run in await session.scalars(select(SyncRun))
        }
    assert statuses[dead_run][0] == "failed"
    assert (statuses[dead_run][1] or "").startswith("abandoned")
    assert statuses[young_run][0] == "running"
    assert statuses[live_run][0] == "running"
