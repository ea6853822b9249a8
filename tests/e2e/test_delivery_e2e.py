"""Delivery over real processes (API + workers, PostgreSQL, the local broker, the sandbox):
poison messages go to the dead-letter topic without holding back their partition, and a SIGTERM
lets the in-flight sync finish before the worker leaves its consumer groups."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import psutil
import pytest
from event_bus.broker import KafkaPublisher
from event_bus.testing import consume_records, kafka_test_settings
from sync_messages import SyncCustomerWorkflows, topics

from .harness import Stack, wait_until
from .test_worker_e2e import add_customers, publish, runs_of, statuses

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("dump_logs_on_failure")]

# A malformed message is dead-lettered on its first delivery; a message failing in its handler
# after WORKER_MAX_DELIVERIES (3) deliveries 0.5 s apart. Either way a manual sync queued behind
# it in the same partition must be done well within this bound (it waited for ever before).
REDELIVERY_BOUND_SECONDS = 30


async def publish_raw(stack: Stack, topic: str, key: str, value: bytes) -> None:
    publisher = KafkaPublisher(kafka_test_settings(stack.kafka_bootstrap))
    try:
        await publisher(topic, key.encode(), value, [("content-type", b"application/json")])
    finally:
        await publisher.close()


def command_json(customer_id: uuid.UUID, **fields: object) -> bytes:
    body = {
        "type": "SyncCustomerWorkflows",
        "id": str(uuid.uuid4()),
        "customer_id": str(customer_id),
        "reason": "manual",
        "requested_at": "2026-12-01T00:00:00+00:00",
        **fields,
    }
    return json.dumps(body).encode()


async def test_poison_commands_go_to_the_dead_letter_topic_without_delaying_a_manual_sync(
    stack: Stack, db, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("poisoned-partition", workflow_count=20, seed=4)
    (cid,) = await add_customers(stack, db, [tenant])
    # One consumer per topic: it owns every partition, the poison's and the manual sync's.
    await stack.start_worker("worker", WORKER_CONCURRENCY="1", WORKER_MAX_DELIVERIES="3")
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=cid, reason="manual"),
        str(cid),
    )

    async def synced_once() -> bool:
        return (await statuses(db))[cid] == "succeeded"

    await wait_until(synced_once, timeout=60, what="the first sync")
    first_runs = len(await runs_of(db, cid))

    # Poison in the customer's own partition (same key), straight to the topic, ahead of the sync.
    poison = [
        command_json(cid, requested_at="2026-12-01T00:00:00"),  # naive timestamp
        command_json(cid, id="x" * 65),  # longer than sync_runs.command_id
        command_json(cid, type="DropAllTables"),  # unknown type
        b'{"customer_id": "not-a-uuid"',  # not even JSON
    ]
    for value in poison:
        await publish_raw(stack, topics.SYNC_COMMANDS, str(cid), value)
    await publish_raw(
        stack,
        topics.SYNC_RETRY,
        str(cid),
        json.dumps(
            {
                "type": "RetrySync",
                "command": json.loads(command_json(cid)),
                "attempt": 2**31,  # overflows the attempt column
                "not_before": "2026-12-01T00:00:00+00:00",
            }
        ).encode(),
    )

    # A manual sync behind the poison on the same topic and partition (the API's own manual
    # syncs take the fast lane, workflow-sync.commands.priority.v1: see test_parallel_e2e).
    requested = time.monotonic()
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=cid, reason="manual"),
        str(cid),
    )

    async def manual_sync_done() -> bool:
        runs = await runs_of(db, cid)
        return any(r.reason == "manual" and r.status in ("succeeded", "skipped") for r in runs[1:])

    await wait_until(
        manual_sync_done,
        timeout=REDELIVERY_BOUND_SECONDS,
        what="the manual sync queued behind the poison",
    )
    waited = time.monotonic() - requested
    runs = await runs_of(db, cid)
    assert len(runs) == first_runs + 1, [(r.reason, r.status, r.command_id) for r in runs]
    assert runs[-1].status == "succeeded"

    dead = await consume_records(stack.kafka_bootstrap, [topics.SYNC_DLQ], expected=5)
    bodies = [json.loads(record.value) for record in dead]
    assert [b["type"] for b in bodies] == ["UnprocessableMessage"] * 5, bodies
    assert sorted(b["source_topic"] for b in bodies) == sorted(
        [topics.SYNC_COMMANDS] * 4 + [topics.SYNC_RETRY]
    )
    assert all(b["key"] == str(cid) and b["error"] for b in bodies)
    assert any("requested_at" in b["error"] for b in bodies)
    assert any("attempt" in b["error"] for b in bodies)
    print(f"manual sync behind 5 poison messages done {waited:.1f}s after the request")


async def test_sigterm_lets_the_in_flight_sync_finish_before_the_partition_moves(
    stack: Stack, db, zuora_sandbox
) -> None:
    # 2 pages and 60 definition exports (4 at a time) at 1 s each: the sync takes > 15 s
    tenant = zuora_sandbox.add_tenant("long-sync", workflow_count=60, seed=5)
    tenant.faults.latency_ms = 1000
    (cid,) = await add_customers(stack, db, [tenant])
    grace = {"WORKER_SHUTDOWN_GRACE_SECONDS": "90"}
    workers = [
        await stack.start_worker("worker-a", **grace),
        await stack.start_worker("worker-b", **grace),  # either one takes the partition over
    ]
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=cid, reason="manual"),
        str(cid),
    )

    async def in_the_middle() -> bool:
        return bool(tenant.stats.list_requests >= 2)

    await wait_until(in_the_middle, timeout=60, what="the sync to be under way")
    # Which worker owns the customer's partition is the group's choice: SIGTERM the one that is
    # talking to Zuora right now (its open connections to the sandbox's port).
    sandbox_port = httpx.URL(zuora_sandbox.base_url).port

    def talks_to_the_sandbox(process: Any) -> bool:
        connections = psutil.Process(process.popen.pid).net_connections(kind="tcp")
        return any(c.raddr and c.raddr.port == sandbox_port for c in connections)

    async def one_worker_syncs() -> bool:
        return sum(talks_to_the_sandbox(w) for w in workers) == 1

    await wait_until(one_worker_syncs, timeout=30, what="the syncing worker to be known")
    first = next(w for w in workers if talks_to_the_sandbox(w))
    assert first.stop(timeout=120) == 0  # SIGTERM; returns once the worker exited
    runs = await runs_of(db, cid)
    assert [r.status for r in runs] == ["succeeded"], [(r.status, r.error_message) for r in runs]
    assert runs[0].total == 60
    assert "In-flight messages finished" in first.log()
    before = tenant.stats.list_requests
    # The partition moved to worker-b only after the commit: it does not sync the command again.
    await publish(
        stack,
        topics.SYNC_COMMANDS,
        SyncCustomerWorkflows(customer_id=cid, reason="manual"),
        str(cid),
    )

    async def second_command_done() -> bool:
        runs = await runs_of(db, cid)
        return len(runs) == 2 and runs[-1].status != "running"

    tenant.faults.latency_ms = 0
    await wait_until(second_command_done, timeout=60, what="worker-b to take over")
    assert [r.status for r in await runs_of(db, cid)] == ["succeeded", "succeeded"]
    assert tenant.stats.list_requests == before + 2
