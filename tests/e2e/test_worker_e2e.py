"""Sync workers as real processes over the local Kafka broker, PostgreSQL and the sandbox."""

from __future__ import annotations

import itertools
import uuid

import pytest
from aiokafka.partitioner import murmur2
from event_bus.broker import KafkaPublisher
from event_bus.testing import consume_records, kafka_test_settings
from sqlalchemy import func, select
from sync_messages import SyncAllCustomers, SyncCustomerWorkflows, SyncReason, topics
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer
from workflow_store.models import Customer, StoredWorkflow, SyncRun

from .harness import Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("dump_logs_on_failure")]
PARTITIONS = 4


def partition_of(customer_id: uuid.UUID) -> int:
    return int(murmur2(str(customer_id).encode()) & 0x7FFFFFFF) % PARTITIONS


async def add_customers(stack: Stack, db, tenants) -> list[uuid.UUID]:
    _, sessions = db
    box = SecretBox([stack.encryption_key])
    ids = []
    async with sessions() as session, session.begin():
        for tenant in tenants:
            customer = await add_customer(
                session,
                box,
                name=tenant.name,
                base_url=stack.sandbox_url,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret,
            )
            ids.append(customer.id)
    return ids


async def publish(stack: Stack, topic: str, message, key: str | None) -> None:
    publisher = KafkaPublisher(kafka_test_settings(stack.kafka_bootstrap))
    try:
        await publisher.publish_message(topic, message, key=key)
    finally:
        await publisher.close()


async def runs_of(db, customer_id: uuid.UUID) -> list[SyncRun]:
    _, sessions = db
    async with sessions() as session:
        rows = await session.scalars(
            select(SyncRun).where(SyncRun.customer_id == customer_id).order_by(SyncRun.started_at)
        )
        return list(rows)


async def statuses(db) -> dict[uuid.UUID, str | None]:
    _, sessions = db
    async with sessions() as session:
        rows = await session.execute(select(Customer.id, Customer.last_sync_status))
        return {cid: status for cid, status in rows.all()}


async def test_sync_all_over_two_workers_syncs_each_customer_exactly_once(
    stack: Stack, db, zuora_sandbox
) -> None:
    tenants = [
        zuora_sandbox.add_tenant(f"tenant-{i:02d}", workflow_count=10 + 7 * i, seed=i)
        for i in range(20)
    ]
    ids = await add_customers(stack, db, tenants)
    workers = [await stack.start_worker("worker-a"), await stack.start_worker("worker-b")]
    await publish(
        stack, topics.SYNC_ALL, SyncAllCustomers.for_slot(SyncReason.MANUAL, "e2e-1"), None
    )
    # the same fan-out delivered twice (a scheduler replica, a redelivery): no extra work
    await publish(
        stack, topics.SYNC_ALL, SyncAllCustomers.for_slot(SyncReason.MANUAL, "e2e-1"), None
    )

    async def all_synced() -> bool:
        return all(s == "succeeded" for s in (await statuses(db)).values())

    await wait_until(all_synced, timeout=90, what="all 20 customers synced")
    for cid, tenant in zip(ids, tenants, strict=True):
        runs = await runs_of(db, cid)
        assert [r.status for r in runs] == ["succeeded"], runs
        assert runs[0].total == len(tenant.workflows)
    _, sessions = db
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StoredWorkflow)) == sum(
            len(t.workflows) for t in tenants
        )
    for worker in workers:  # the work was shared by the consumer group
        assert "Workflow sync completed" in worker.log(), worker.name
    events = await consume_records(
        stack.kafka_bootstrap, [topics.SYNC_EVENTS], expected=20, wait_seconds=10
    )
    assert len(events) >= 20
    for worker in workers:
        assert worker.stop() == 0


async def test_transient_failures_retry_then_dead_letter_without_blocking_the_partition(
    stack: Stack, db, zuora_sandbox
) -> None:
    failing = zuora_sandbox.add_tenant("failing", workflow_count=30, seed=1)
    failing.faults.error_rate = 1.0
    failing.faults.error_statuses = [503]
    (bad_id,) = await add_customers(stack, db, [failing])
    # a healthy customer whose commands land in the same partition
    candidates = [zuora_sandbox.add_tenant(f"ok-{i}", workflow_count=5, seed=i) for i in range(12)]
    ok_ids = await add_customers(stack, db, candidates)
    neighbour = next(cid for cid in ok_ids if partition_of(cid) == partition_of(bad_id))

    await stack.start_worker("worker", WORKER_CONCURRENCY="1")
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=bad_id, reason="manual"),
        str(bad_id),
    )
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=neighbour, reason="manual"),
        str(neighbour),
    )

    async def neighbour_synced() -> bool:
        return (await statuses(db))[neighbour] == "succeeded"

    await wait_until(neighbour_synced, timeout=30, what="the neighbour synced")
    # the neighbour did not wait for the failing customer's retries
    assert len(await runs_of(db, bad_id)) < 3

    async def dead_lettered() -> bool:
        runs = await runs_of(db, bad_id)
        return len(runs) == 3 and runs[-1].status == "failed"

    await wait_until(dead_lettered, timeout=40, what="3 attempts then failed")
    runs = await runs_of(db, bad_id)
    assert [r.status for r in runs] == ["retry_scheduled", "retry_scheduled", "failed"]
    assert [r.attempt for r in runs] == [1, 2, 3]
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(runs)]
    assert all(gap >= 2 for gap in gaps), gaps  # spaced by the backoff
    dlq = await consume_records(stack.kafka_bootstrap, [topics.SYNC_DLQ], expected=1)
    assert len(dlq) == 1

    failing.faults.error_rate = 0.0
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=bad_id, reason="replay", replay_of=runs[-1].id),
        str(bad_id),
    )

    async def recovered() -> bool:
        return (await statuses(db))[bad_id] == "succeeded"

    await wait_until(recovered, timeout=30, what="the replay to succeed")
    last = (await runs_of(db, bad_id))[-1]
    assert last.reason == "replay" and last.replay_of == runs[-1].id and last.total == 30


async def test_worker_killed_mid_sync_is_redone_by_another_worker(
    stack: Stack, db, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("slow", workflow_count=400, seed=3)
    tenant.faults.latency_ms = 400  # 8 pages: the sync takes > 3 s
    (cid,) = await add_customers(stack, db, [tenant])
    first = await stack.start_worker("worker-a")
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=cid, reason="manual"),
        str(cid),
    )

    async def in_the_middle() -> bool:
        return bool(tenant.stats.list_requests >= 3)

    await wait_until(in_the_middle, timeout=30, what="the sync to be half-way")
    first.kill()  # SIGKILL: no cleanup, no commit
    tenant.faults.latency_ms = 0
    await stack.start_worker("worker-b")

    async def synced() -> bool:
        return (await statuses(db))[cid] == "succeeded"

    await wait_until(synced, timeout=60, what="the command to be redone")
    _, sessions = db
    async with sessions() as session:
        stored = list(
            await session.scalars(
                select(StoredWorkflow.zuora_id).where(StoredWorkflow.customer_id == cid)
            )
        )
    assert sorted(stored) == sorted(tenant.workflows)  # exact, no duplicates
    runs = await runs_of(db, cid)
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert runs[0].error_message and runs[0].error_message.startswith("abandoned")
