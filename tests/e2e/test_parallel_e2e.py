"""The parallel consumer over real processes (workers, PostgreSQL, the local broker, the sandbox):
several customers of ONE partition synced at once, one customer's commands still in order, the
offsets committed to the end; a worker SIGKILLed with several syncs in flight, whose uncommitted
commands a second worker redoes (at least once, rows exact, dead runs closed); and the fast lane:
a manual sync does not queue behind the partition's backlog, and races a scheduled sync of the
same customer safely."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from event_bus.local_broker import free_port
from sqlalchemy import select
from sync_messages import SyncCustomerWorkflows, topics
from workflow_store.models import ProcessedMessage, StoredWorkflow, SyncRun

from .harness import Stack, wait_until
from .test_worker_e2e import add_customers, partition_of, publish, statuses

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("dump_logs_on_failure")]

COMMANDS_LEDGER = "sync-worker.commands"  # sync_worker.handlers.COMMANDS


def same_partition(ids: list[uuid.UUID], count: int) -> tuple[int, list[uuid.UUID]]:
    """The partition holding most of ``ids``, and ``count`` of its customers."""
    by_partition: dict[int, list[uuid.UUID]] = {}
    for cid in ids:
        by_partition.setdefault(partition_of(cid), []).append(cid)
    partition, members = max(by_partition.items(), key=lambda item: len(item[1]))
    assert len(members) >= count, {p: len(m) for p, m in by_partition.items()}
    return partition, members[:count]


async def all_runs(db) -> list[SyncRun]:
    _, sessions = db
    async with sessions() as session:
        return list(await session.scalars(select(SyncRun).order_by(SyncRun.started_at)))


def overlapping(runs: list[SyncRun]) -> int:
    """The largest number of runs whose [started_at, finished_at] intervals overlap."""
    edges: list[tuple[datetime, int]] = []
    for run in runs:
        assert run.finished_at is not None
        edges += [(run.started_at, 1), (run.finished_at, -1)]
    depth = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        depth += step
        peak = max(peak, depth)
    return peak


async def committed_offset(stack: Stack, partition: int) -> tuple[int | None, int]:
    """(committed offset of group sync-worker.commands, end offset) of one command partition."""
    tp = TopicPartition(topics.SYNC_COMMANDS, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap,
        group_id="sync-worker.commands",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        committed = await consumer.committed(tp)
        end = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    return committed, end


async def test_one_partition_syncs_several_customers_at_once_in_order_per_customer(
    stack: Stack, db, zuora_sandbox
) -> None:
    tenants = [
        zuora_sandbox.add_tenant(f"parallel-{i:02d}", workflow_count=8 + i, seed=i)
        for i in range(24)  # 4 partitions: one of them has at least 6
    ]
    for tenant in tenants:
        tenant.faults.latency_ms = 150  # each sync is a few round trips: they overlap or wait
    ids = await add_customers(stack, db, tenants)
    partition, members = same_partition(ids, 6)
    repeated = members[0]
    # One consumer owns every partition: all of these commands are in one partition, one reader.
    worker = await stack.start_worker("worker", WORKER_CONCURRENCY="1", WORKER_MAX_IN_FLIGHT="8")
    commands: list[SyncCustomerWorkflows] = []
    for cid in members:  # the repeated customer's commands interleaved with the others'
        for customer in (cid, repeated) if cid != repeated else (cid,):
            commands.append(
                SyncCustomerWorkflows(customer_id=customer, reason="manual", force=True)
            )
    for command in commands:
        await publish(stack, topics.SYNC_COMMANDS, command, str(command.customer_id))
    expected = {c.id for c in commands}

    async def all_done() -> bool:
        runs = [r for r in await all_runs(db) if r.command_id in expected]
        return len(runs) == len(commands) and all(r.finished_at for r in runs)

    await wait_until(all_done, timeout=60, what="every command synced", process=worker)
    runs = [r for r in await all_runs(db) if r.command_id in expected]
    assert all(r.status == "succeeded" for r in runs), [(r.status, r.error_message) for r in runs]
    current = await statuses(db)
    assert all(current[cid] == "succeeded" for cid in members)
    # Per customer: its commands ran in the order they were published, one after the other.
    mine = [r for r in runs if r.customer_id == repeated]
    published = [c.id for c in commands if c.customer_id == repeated]
    assert len(published) == len(members)
    assert [r.command_id for r in mine] == published
    for before, after in itertools.pairwise(mine):
        assert before.finished_at is not None and before.finished_at <= after.started_at
    # ... while the partition's other customers ran beside them: several syncs at once.
    peak = overlapping(runs)
    assert peak >= 2, "no two syncs of the partition overlapped"
    # Everything finished, so the partition's offset was committed to its end.
    assert worker.stop() == 0
    committed, end = await committed_offset(stack, partition)
    assert end >= len(commands) and committed == end
    print(f"{len(commands)} commands of one partition, up to {peak} syncs at once")


async def test_worker_killed_with_several_syncs_in_flight_a_second_worker_finishes(
    stack: Stack, db, zuora_sandbox
) -> None:
    tenants = [
        zuora_sandbox.add_tenant(f"batch-{i:02d}", workflow_count=10 + i, seed=30 + i)
        for i in range(32)  # 4 partitions: one of them has at least 8
    ]
    ids = await add_customers(stack, db, tenants)
    partition, members = same_partition(ids, 8)
    by_id = dict(zip(ids, tenants, strict=True))
    slow, fast = members[:6], members[6:]
    for cid in slow:
        by_id[cid].faults.latency_ms = 700  # many round trips: cut by the kill
    first = await stack.start_worker("worker-a", WORKER_CONCURRENCY="1", WORKER_MAX_IN_FLIGHT="8")
    # The fast customers' commands come last: they finish while the ones before them still
    # run, so their offsets must not be committed (the commit stops at the lowest unfinished).
    commands = [SyncCustomerWorkflows(customer_id=cid, reason="manual") for cid in members]
    for command in commands:
        await publish(stack, topics.SYNC_COMMANDS, command, str(command.customer_id))
    _, sessions = db

    async def fast_done_slow_running() -> bool:
        current = await statuses(db)
        running = {r.customer_id for r in await all_runs(db) if r.status == "running"}
        return all(current[cid] == "succeeded" for cid in fast) and len(running) >= 3

    await wait_until(
        fast_done_slow_running, timeout=30, what="fast ones done, 3 in flight", process=first
    )
    first.kill()  # SIGKILL mid-batch: no drain, no last commit
    cut = {r.customer_id for r in await all_runs(db) if r.status == "running"}
    assert len(cut) >= 3
    # The first command (a slow one) never finished: nothing of the partition is committed,
    # although the last two commands had.
    committed, end = await committed_offset(stack, partition)
    assert end == len(commands) and committed in (None, -1, 0), committed
    for tenant in tenants:
        tenant.faults.latency_ms = 0
    # The sweep closes what the dead process left running (its locks went with its connections).
    await stack.start_worker(
        "worker-b",
        WORKER_MAX_IN_FLIGHT="8",
        WORKER_ABANDONED_RUN_SWEEP_SECONDS="1",
        WORKER_ABANDONED_RUN_AGE_SECONDS="1",
    )

    async def settled_ids() -> set[str]:
        async with sessions() as session:
            return set(
                await session.scalars(
                    select(ProcessedMessage.message_id).where(
                        ProcessedMessage.consumer == COMMANDS_LEDGER
                    )
                )
            )

    async def finished() -> bool:
        # Every command settled (the ledger is written after the run's own transaction), and
        # no run left running.
        runs = await all_runs(db)
        done = {c.id for c in commands} <= await settled_ids()
        return done and not any(r.status == "running" for r in runs)

    await wait_until(finished, timeout=60, what="worker-b to finish the batch")
    current = await statuses(db)
    assert all(current[cid] == "succeeded" for cid in members)  # no customer skipped
    async with sessions() as session:
        stored: dict[uuid.UUID, list[int]] = {}
        for cid, zuora_id in await session.execute(
            select(StoredWorkflow.customer_id, StoredWorkflow.zuora_id)
        ):
            stored.setdefault(cid, []).append(zuora_id)
    assert {c.id for c in commands} <= await settled_ids()  # each processed at least once
    runs = await all_runs(db)
    for command in commands:
        cid = command.customer_id
        assert sorted(stored[cid]) == sorted(by_id[cid].workflows)  # exact, no duplicates
        mine = [r for r in runs if r.command_id == command.id]
        assert [r.status for r in mine].count("succeeded") == 1, [r.status for r in mine]
    abandoned = [r for r in runs if r.customer_id in cut and r.status == "failed"]
    assert {r.customer_id for r in abandoned} == cut
    assert all(r.error_message and r.error_message.startswith("abandoned") for r in abandoned)
    print(f"killed with {len(cut)} syncs in flight; {len(commands)} commands redone or kept")


async def test_a_manual_sync_takes_the_fast_lane_and_races_a_scheduled_one_safely(
    stack: Stack, db, zuora_sandbox
) -> None:
    tenants = [
        zuora_sandbox.add_tenant(f"lane-{i:02d}", workflow_count=10 + i, seed=60 + i)
        for i in range(40)  # 4 partitions: one of them has at least 10
    ]
    ids = await add_customers(stack, db, tenants)
    _, members = same_partition(ids, 10)
    by_id = dict(zip(ids, tenants, strict=True))
    target, backlog = members[0], members[1:]
    for cid in members:
        by_id[cid].faults.latency_ms = 400
    port = free_port()
    await stack.start_api(port)
    # One reader, two commands at a time: the backlog of one partition takes a while.
    worker = await stack.start_worker(
        "worker", WORKER_CONCURRENCY="1", WORKER_MAX_IN_FLIGHT="2", SYNC_LOCK_WAIT_SECONDS="30"
    )
    # A scheduled command of the target first, then the backlog, all in one partition.
    scheduled = SyncCustomerWorkflows(customer_id=target, reason="hourly")
    queued = [scheduled] + [SyncCustomerWorkflows(customer_id=c, reason="hourly") for c in backlog]
    for command in queued:
        await publish(stack, topics.SYNC_COMMANDS, command, str(command.customer_id))

    async def target_running() -> bool:
        runs = await all_runs(db)
        return any(r.customer_id == target and r.status == "running" for r in runs)

    await wait_until(
        target_running, timeout=30, what="the scheduled sync under way", process=worker
    )
    # While it runs, an operator asks for the same customer: the manual command races it.
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=10,
    ) as client:
        response = await client.post(f"/customers/{target}/sync", json={})
        assert response.status_code == 202, response.text
        manual_id = response.json()["command_id"]

    async def manual_done() -> bool:
        runs = await all_runs(db)
        return any(r.command_id == manual_id and r.finished_at for r in runs)

    await wait_until(manual_done, timeout=60, what="the manual sync", process=worker)
    expected = {c.id for c in queued}

    async def backlog_done() -> bool:
        runs = [r for r in await all_runs(db) if r.command_id in expected]
        return len(runs) == len(queued) and all(r.finished_at for r in runs)

    await wait_until(backlog_done, timeout=60, what="the backlog", process=worker)
    runs = await all_runs(db)
    (manual,) = [r for r in runs if r.command_id == manual_id]
    assert manual.status == "succeeded" and manual.finished_at is not None
    # The fast lane: the manual sync did not queue behind the partition's backlog.
    behind = [r for r in runs if r.customer_id in backlog and r.started_at > manual.finished_at]
    assert behind, "every backlog command started before the manual sync ended"
    # The race: one sync of the target at a time (its lock), the scheduled one ran first.
    mine = [r for r in runs if r.customer_id == target]
    assert [r.command_id for r in mine] == [scheduled.id, manual_id], [
        (r.command_id, r.status) for r in mine
    ]
    first, second = mine
    assert first.status == "succeeded" and first.finished_at is not None
    assert first.finished_at <= second.started_at
    _, sessions = db
    async with sessions() as session:
        stored = list(
            await session.scalars(
                select(StoredWorkflow.zuora_id).where(StoredWorkflow.customer_id == target)
            )
        )
    assert sorted(stored) == sorted(by_id[target].workflows)
    print(f"manual sync done with {len(behind)} of {len(backlog)} backlog commands still to start")
