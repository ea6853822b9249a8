"""The product end to end: API process + sync workers (+ schedulers) over the local broker."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from event_bus.local_broker import LocalBroker, free_port, start_local_broker
from sqlalchemy import select
from workflow_store.models import Customer, SyncRun

from .harness import Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("dump_logs_on_failure")]


def api_client(stack: Stack, port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=10,
    )


def customer_body(stack: Stack, tenant: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "base_url": stack.sandbox_url,
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        **extra,
    }


async def workflow_total(client: httpx.AsyncClient, customer_id: str) -> int:
    response = await client.get(f"/customers/{customer_id}/workflows", params={"page_size": 1})
    response.raise_for_status()
    return int(response.json()["total"])


async def test_customer_created_over_http_is_readable_within_seconds(
    stack: Stack, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=130, seed=1)
    port = free_port()
    await stack.start_api(port)
    await stack.start_worker()
    async with api_client(stack, port) as client:
        created = await client.post("/customers", json=customer_body(stack, tenant))
        assert created.status_code == 201, created.text
        customer = created.json()
        assert "client_secret" not in customer
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def readable() -> bool:
            return await workflow_total(client, customer["id"]) == 130

        await wait_until(readable, timeout=30, what="the new customer's workflows")
        elapsed = loop.time() - started
        page = (
            await client.get(f"/customers/{customer['id']}/workflows", params={"page_size": 50})
        ).json()
        assert len(page["items"]) == 50 and page["total"] == 130
        item = page["items"][0]
        assert item["last_synced_at"] is not None and item["zuora_id"] in tenant.workflows
        detail = (await client.get(f"/customers/{customer['id']}")).json()
        assert detail["last_sync_status"] == "succeeded"
    print(f"customer created -> 130 workflows readable in {elapsed:.2f}s")


async def test_customers_created_while_the_broker_is_down_are_all_synced_after_it_returns(
    stack: Stack, zuora_sandbox, local_kafka: LocalBroker, db
) -> None:
    tenants = [
        zuora_sandbox.add_tenant(f"down-{i:02d}", workflow_count=3 + i % 7, seed=i)
        for i in range(50)
    ]
    port = free_port()
    await stack.start_api(port)
    await stack.start_worker()
    kafka_port = int(local_kafka.bootstrap_servers.rsplit(":", 1)[1])
    local_kafka.stop()  # the broker goes away (memory-only: topics and offsets are lost)
    async with api_client(stack, port) as client:
        responses = await asyncio.gather(
            *(
                client.post("/customers", json=customer_body(stack, t, validate_credentials=False))
                for t in tenants
            )
        )
        assert [r.status_code for r in responses] == [201] * 50
        ids = [r.json()["id"] for r in responses]
        await asyncio.sleep(2)
        revived = start_local_broker(kafka_port)  # the broker comes back on the same address
        try:

            async def all_synced() -> bool:
                _, sessions = db
                async with sessions() as session:
                    statuses = list(await session.scalars(select(Customer.last_sync_status)))
                return len(statuses) == 50 and all(s == "succeeded" for s in statuses)

            await wait_until(all_synced, timeout=120, what="all 50 customers synced", interval=1)
            for cid, tenant in zip(ids, tenants, strict=True):
                assert await workflow_total(client, cid) == len(tenant.workflows)
        finally:
            revived.stop()


async def test_two_schedulers_firing_the_same_slot_sync_each_customer_once(
    stack: Stack, zuora_sandbox, db
) -> None:
    tenants = [zuora_sandbox.add_tenant(f"sched-{i}", workflow_count=4, seed=i) for i in range(6)]
    port = free_port()
    await stack.start_api(port)
    async with api_client(stack, port) as client:
        for tenant in tenants:
            body = customer_body(stack, tenant, validate_credentials=False)
            assert (await client.post("/customers", json=body)).status_code == 201
    await stack.start_worker()

    async def initial_syncs_done() -> bool:
        _, sessions = db
        async with sessions() as session:
            statuses = list(await session.scalars(select(Customer.last_sync_status)))
        return statuses.count("succeeded") == 6

    await wait_until(initial_syncs_done, timeout=60, what="the creation syncs")
    # Both schedulers fire every minute; the next minute boundary is the shared slot.
    every_minute = {"SCHEDULER_HOURLY_CRON": "* * * * *", "SCHEDULER_NIGHTLY_CRON": "0 2 * * *"}
    schedulers = [
        stack.start(f"scheduler-{n}", "sync_scheduler.main", **every_minute) for n in "ab"
    ]

    async def hourly_runs() -> list[SyncRun]:
        _, sessions = db
        async with sessions() as session:
            return list(await session.scalars(select(SyncRun).where(SyncRun.reason == "hourly")))

    async def slot_synced() -> bool:
        return len({r.customer_id for r in await hourly_runs() if r.status == "succeeded"}) == 6

    await wait_until(
        slot_synced, timeout=100, what="the scheduled slot to sync everyone", interval=1
    )
    for scheduler in schedulers:
        assert scheduler.stop() == 0
    await asyncio.sleep(3)  # give a duplicate fan-out time to show up, if there were one
    runs = await hourly_runs()
    # Both schedulers published the slot, yet every customer's command for it ran once: the
    # fan-out and its commands carry ids derived from the slot, and the worker drops repeats.
    commands: dict[uuid.UUID, list[str | None]] = {}
    for run in runs:
        commands.setdefault(run.customer_id, []).append(run.command_id)
    assert len(commands) == 6
    for customer_commands in commands.values():
        assert len(customer_commands) == len(set(customer_commands)), runs
    slots_fired = {len(c) for c in commands.values()}
    assert len(slots_fired) == 1, commands  # every customer saw the same number of slots
