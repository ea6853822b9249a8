"""Hostile or broken Zuora answers end a sync with a clear, classified failure and change nothing
stored (audit A6): real PostgreSQL, the sandbox over real HTTP, its oversize and drip faults."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sync_engine import FailureKind, RunStatus, SyncOutcome, SyncRequest
from workflow_store.models import Customer, SyncRun

from .conftest import Store

pytestmark = pytest.mark.integration

WORKFLOWS = 60


async def synced_customer(
    store: Store, zuora_sandbox: Any
) -> tuple[Any, uuid.UUID, dict[int, str]]:
    """A customer whose first sync stored WORKFLOWS rows, and the rows' xmin map."""
    tenant = zuora_sandbox.add_tenant(f"t-{uuid.uuid4().hex[:8]}", workflow_count=WORKFLOWS, seed=3)
    cid = await store.add_customer_for(tenant)
    first = await store.sync_engine().sync_customer(SyncRequest(customer_id=cid))
    assert first.status is RunStatus.SUCCEEDED
    versions = await store.row_versions(cid)
    assert len(versions) == WORKFLOWS
    return tenant, cid, versions


async def assert_failed_and_untouched(
    store: Store, cid: uuid.UUID, versions: dict[int, str], outcome: SyncOutcome, code: str
) -> None:
    assert outcome.status is RunStatus.FAILED
    assert outcome.error_message is not None and code in outcome.error_message
    assert await store.row_versions(cid) == versions  # no row inserted, updated or deleted
    async with store.sessions() as session:
        run = await session.get(SyncRun, outcome.run_id)
        assert run is not None and run.status == "failed" and code in (run.error_message or "")
        customer = await session.get(Customer, cid)
        assert customer is not None and customer.last_sync_status == "failed"


async def test_an_80_mb_answer_fails_the_sync_at_the_byte_cap(store: Store, zuora_sandbox) -> None:
    tenant, cid, versions = await synced_customer(store, zuora_sandbox)
    tenant.faults.oversize_body_bytes = 80_000_000
    started = time.monotonic()
    outcome = await store.sync_engine().sync_customer(  # the default cap: 20 MB
        SyncRequest(customer_id=cid, force=True)
    )
    assert time.monotonic() - started < 60  # bound: well inside the request deadline
    await assert_failed_and_untouched(store, cid, versions, outcome, "response_too_large")
    assert outcome.error_kind is FailureKind.PERMANENT
    assert "ResponseTooLargeError" in (outcome.error_message or "")


async def test_a_one_byte_per_second_drip_is_cut_at_the_request_deadline(
    store: Store, zuora_sandbox
) -> None:
    tenant, cid, versions = await synced_customer(store, zuora_sandbox)
    tenant.faults.drip_interval_s = 1.0
    engine = store.sync_engine(
        zuora_request_deadline_seconds=2.0, zuora_max_retries=1, deadline_seconds=30.0
    )
    started = time.monotonic()
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid, force=True))
    assert time.monotonic() - started < 30  # 2 attempts of 2 s, far below the sync deadline
    await assert_failed_and_untouched(store, cid, versions, outcome, "request deadline of 2s")
    assert "deadline_exceeded" in (outcome.error_message or "")
    assert outcome.error_kind is FailureKind.TRANSIENT


async def test_a_drip_under_a_long_request_deadline_is_cut_at_the_sync_deadline(
    store: Store, zuora_sandbox
) -> None:
    tenant, cid, versions = await synced_customer(store, zuora_sandbox)
    tenant.faults.drip_interval_s = 1.0
    engine = store.sync_engine(zuora_request_deadline_seconds=600.0, deadline_seconds=3.0)
    started = time.monotonic()
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid, force=True))
    assert time.monotonic() - started < 30  # bound: the 3 s deadline, not the 600 s one
    await assert_failed_and_untouched(store, cid, versions, outcome, "sync deadline of 3s")
    assert "deadline_exceeded" in (outcome.error_message or "")
    assert outcome.error_kind is FailureKind.TRANSIENT
