"""A sync that finds its customer's lock taken (PostgreSQL, sandbox over HTTP): not an attempt.

Audit A2: the busy path used to start a run without the lock, close the *live* run of the lock
holder as "abandoned" and mark the customer failed, and it counted as an attempt.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sync_engine import RunStatus, SyncRequest
from workflow_store.models import Customer, SyncRun

from .conftest import Store

pytestmark = pytest.mark.integration


async def runs_of(store: Store, customer_id: uuid.UUID) -> list[SyncRun]:
    async with store.sessions() as session:
        rows = await session.scalars(
            select(SyncRun).where(SyncRun.customer_id == customer_id).order_by(SyncRun.started_at)
        )
        return list(rows)


async def wait_for_running_run(store: Store, customer_id: uuid.UUID) -> SyncRun:
    for _ in range(200):  # at most ~20 s
        runs = [r for r in await runs_of(store, customer_id) if r.status == "running"]
        if runs:
            return runs[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the first sync never started its run")


async def test_busy_sync_never_touches_the_live_run_nor_the_customer(
    store: Store, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("busy", workflow_count=150, seed=11)
    tenant.faults.latency_ms = 400  # 3 pages: the first sync holds the lock for > 1 s
    cid = await store.add_customer_for(tenant)
    first = asyncio.create_task(
        store.sync_engine().sync_customer(SyncRequest(customer_id=cid, command_id="cmd-a"))
    )
    live = await wait_for_running_run(store, cid)
    # A newer request (requested after the running sync started): busy, put back, no run.
    newer = SyncRequest(
        customer_id=cid, command_id="cmd-b", requested_at=datetime.now(UTC), attempt=1
    )
    busy = await store.sync_engine(lock_wait_seconds=0.2).sync_customer(newer)
    assert busy.busy and busy.status is RunStatus.FAILED and busy.retryable
    assert busy.run_id is None
    # The same command delivered a second time while its sync runs: covered by it.
    redelivered = SyncRequest(
        customer_id=cid, command_id="cmd-a", requested_at=live.started_at, attempt=1
    )
    covered = await store.sync_engine(lock_wait_seconds=0.2).sync_customer(redelivered)
    assert covered.status is RunStatus.SKIPPED and not covered.busy
    assert covered.skip_reason and "running" in covered.skip_reason

    async with store.sessions() as session:
        still = await session.get(SyncRun, live.id)
        customer = await session.get(Customer, cid)
        assert still is not None and still.status == "running"  # not closed as abandoned
        assert customer is not None and customer.last_sync_status != "failed"

    done = await first
    assert done.status is RunStatus.SUCCEEDED
    statuses = [(r.command_id, r.status) for r in await runs_of(store, cid)]
    assert statuses == [("cmd-a", "succeeded"), ("cmd-a", "skipped")]
    async with store.sessions() as session:
        customer = await session.get(Customer, cid)
        assert customer is not None and customer.last_sync_status == "succeeded"
