"""The engine against real PostgreSQL and the Zuora sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from sqlalchemy import select, text
from sync_engine import FailureKind, RunStatus, SyncRequest
from workflow_store.models import Customer, StoredWorkflow, SyncRun

from .conftest import Store

pytestmark = pytest.mark.integration


async def stored_ids(store: Store, customer_id: uuid.UUID) -> set[int]:
    async with store.sessions() as session:
        rows = await session.scalars(
            select(StoredWorkflow.zuora_id).where(StoredWorkflow.customer_id == customer_id)
        )
        return set(rows)


async def test_first_sync_stores_every_workflow_with_typed_columns(
    store: Store, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=237, seed=1)
    cid = await store.add_customer_for(tenant)
    outcome = await store.sync_engine().sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.stats.as_dict() == {
        "created": 237,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "total": 237,
        "errors": 0,
    }
    assert outcome.stats.pages == 5
    assert await stored_ids(store, cid) == set(tenant.workflows)
    some_id, raw = next(iter(tenant.workflows.items()))
    async with store.sessions() as session:
        row = await session.scalar(
            select(StoredWorkflow).where(
                StoredWorkflow.customer_id == cid, StoredWorkflow.zuora_id == some_id
            )
        )
        assert row is not None
        assert row.raw == raw and row.name == raw["name"]
        customer = await session.get(Customer, cid)
        assert customer is not None
        assert customer.last_sync_status == "succeeded"
        assert customer.last_successful_sync_at is not None
        run = await session.get(SyncRun, outcome.run_id)
        assert run is not None and run.status == "succeeded" and run.pages == 5
        assert run.created == 237 and run.finished_at is not None


async def test_create_update_delete_detection_with_exact_stats(store: Store, zuora_sandbox) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=60, seed=2)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    ids = sorted(tenant.workflows)
    tenant.update_workflow(ids[0], name="Renamed")
    tenant.update_workflow(ids[1], description="changed")
    tenant.delete_workflow(ids[2])
    new_item = dict(tenant.workflows[ids[3]], id=999_999, name="Brand new")
    tenant.put_workflow(new_item)
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.stats.as_dict() == {
        "created": 1,
        "updated": 2,
        "deleted": 1,
        "unchanged": 57,
        "total": 60,
        "errors": 0,
    }
    assert outcome.changes.created == [999_999]
    assert sorted(outcome.changes.updated) == sorted(ids[:2])
    assert outcome.changes.deleted == [ids[2]]
    assert await stored_ids(store, cid) == set(tenant.workflows)


async def test_unchanged_resync_writes_no_workflow_rows(store: Store, zuora_sandbox) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=120, seed=3)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    before = await store.row_versions(cid)
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.stats.unchanged == 120 and outcome.stats.created == outcome.stats.updated == 0
    after = await store.row_versions(cid)
    assert after == before and len(after) == 120  # same tuples: nothing rewritten

    tenant.update_workflow(sorted(tenant.workflows)[5], name="Changed once")
    await engine.sync_customer(SyncRequest(customer_id=cid))
    changed = {k for k in before if before[k] != (await store.row_versions(cid))[k]}
    assert changed == {sorted(tenant.workflows)[5]}  # exactly the changed row was written


async def test_listing_failing_on_page_3_deletes_nothing(store: Store, zuora_sandbox) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=180, seed=4)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    before = await store.row_versions(cid)
    for wid in sorted(tenant.workflows)[:10]:
        tenant.delete_workflow(wid)
    tenant.faults.fail_pages = [3]
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error_kind is FailureKind.TRANSIENT
    assert await store.row_versions(cid) == before  # no row deleted or touched
    async with store.sessions() as session:
        run = await session.get(SyncRun, outcome.run_id)
        assert run is not None and run.status == "failed" and run.error_kind == "transient"
        assert run.zuora_request_id  # the failed call's Zuora-Request-Id is kept


async def test_empty_listing_stays_blocked_with_force_until_allow_deletes_covers_it(
    store: Store, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=40, seed=5)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    for wid in list(tenant.workflows):
        tenant.delete_workflow(wid)
    blocked = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert blocked.status is RunStatus.DELETES_BLOCKED
    assert blocked.stats.deleted == 0 and blocked.blocked_deletes == 40
    assert len(await stored_ids(store, cid)) == 40
    async with store.sessions() as session:
        run = await session.get(SyncRun, blocked.run_id)
        assert run is not None and run.status == "deletes_blocked" and run.blocked_deletes == 40

    # force only skips coalescing: it never lifts the guard (audit D1)
    forced = await engine.sync_customer(SyncRequest(customer_id=cid, force=True))
    assert forced.status is RunStatus.DELETES_BLOCKED and forced.stats.deleted == 0
    short = await engine.sync_customer(SyncRequest(customer_id=cid, allow_deletes=39))
    assert short.status is RunStatus.DELETES_BLOCKED and short.blocked_deletes == 40
    assert len(await stored_ids(store, cid)) == 40
    applied = await engine.sync_customer(SyncRequest(customer_id=cid, allow_deletes=40))
    assert applied.status is RunStatus.SUCCEEDED and applied.stats.deleted == 40
    assert await stored_ids(store, cid) == set()


async def test_guard_share_is_configurable(store: Store, zuora_sandbox) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=10, seed=6)
    cid = await store.add_customer_for(tenant)
    await store.sync_engine().sync_customer(SyncRequest(customer_id=cid))
    for wid in sorted(tenant.workflows)[:4]:  # above the floor of 3 always-allowed deletions
        tenant.delete_workflow(wid)
    strict = await store.sync_engine(delete_guard_share=0.2).sync_customer(
        SyncRequest(customer_id=cid)
    )
    assert strict.status is RunStatus.DELETES_BLOCKED
    default = await store.sync_engine().sync_customer(SyncRequest(customer_id=cid))
    assert default.status is RunStatus.SUCCEEDED and default.stats.deleted == 4


async def test_two_concurrent_syncs_of_one_customer_do_the_work_once(
    store: Store, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=150, seed=7)
    tenant.faults.latency_ms = 30  # make the runs overlap
    cid = await store.add_customer_for(tenant)
    request = SyncRequest(customer_id=cid)
    first, second = await asyncio.gather(
        store.sync_engine().sync_customer(request), store.sync_engine().sync_customer(request)
    )
    statuses = sorted([first.status.value, second.status.value])
    assert statuses == ["skipped", "succeeded"]
    skipped = first if first.status is RunStatus.SKIPPED else second
    assert skipped.skip_reason and "covered" in skipped.skip_reason
    assert tenant.stats.list_requests == 3  # one listing only
    assert len(await stored_ids(store, cid)) == 150


async def test_coalescing_skips_requests_older_than_the_last_success_unless_forced(
    store: Store, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=5, seed=8)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    old_request = SyncRequest(customer_id=cid, reason="hourly")
    await engine.sync_customer(SyncRequest(customer_id=cid))
    skipped = await engine.sync_customer(old_request)
    assert skipped.status is RunStatus.SKIPPED
    forced = await engine.sync_customer(
        SyncRequest(customer_id=cid, requested_at=old_request.requested_at, force=True)
    )
    assert forced.status is RunStatus.SUCCEEDED


async def test_wrong_credentials_fail_permanently_without_retry_and_mark_the_customer(
    store: Store, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=5, seed=9)
    cid = await store.add_customer_for(tenant)
    async with store.sessions() as session, session.begin():
        customer = await session.get(Customer, cid)
        assert customer is not None
        customer.client_secret_encrypted = store.box.encrypt("not-the-secret")
    outcome = await store.sync_engine(zuora_max_retries=5).sync_customer(
        SyncRequest(customer_id=cid)
    )
    assert outcome.status is RunStatus.FAILED
    assert outcome.error_kind is FailureKind.PERMANENT and not outcome.retryable
    assert tenant.stats.token_requests == 1  # no retry loop
    async with store.sessions() as session:
        customer = await session.get(Customer, cid)
        assert customer is not None
        assert customer.credential_status == "invalid"
        assert customer.last_sync_status == "failed"


async def test_secret_never_in_logs_or_plaintext_in_the_database(
    store: Store, zuora_sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=70, seed=10)
    tenant.faults.error_rate = 0.3
    tenant.faults.fault_seed = 1
    cid = await store.add_customer_for(tenant)
    await store.sync_engine(zuora_max_retries=8).sync_customer(SyncRequest(customer_id=cid))
    async with store.sessions() as session, session.begin():
        customer = await session.get(Customer, cid)
        assert customer is not None
        customer.client_secret_encrypted = store.box.encrypt("wrong-" + tenant.client_secret)
    tenant.expire_tokens()  # so the wrong secret is really sent (not a cached token reused)
    await store.sync_engine().sync_customer(SyncRequest(customer_id=cid, force=True))
    assert "Workflow sync completed" in caplog.text
    assert "Workflow sync failed" in caplog.text
    assert tenant.client_secret not in caplog.text
    for record in caplog.records:
        assert tenant.client_secret not in str(record.__dict__)
    async with store.engine.connect() as conn:
        dump = (await conn.execute(text("SELECT row_to_json(c)::text FROM customers c"))).scalar()
        runs = (await conn.execute(text("SELECT json_agg(r)::text FROM sync_runs r"))).scalar()
    assert dump is not None and tenant.client_secret not in dump
    assert runs is not None and tenant.client_secret not in runs


async def test_transient_faults_are_absorbed_by_client_retries(store: Store, zuora_sandbox) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=237, seed=11)
    tenant.faults.error_rate = 0.3
    tenant.faults.error_statuses = [503, 429, 502]
    tenant.faults.fault_seed = 7
    cid = await store.add_customer_for(tenant)
    outcome = await store.sync_engine(zuora_max_retries=10).sync_customer(
        SyncRequest(customer_id=cid)
    )
    assert outcome.status is RunStatus.SUCCEEDED and outcome.stats.total == 237
    assert await stored_ids(store, cid) == set(tenant.workflows)


async def test_unknown_customer_is_skipped_without_a_run(store: Store) -> None:
    outcome = await store.sync_engine().sync_customer(SyncRequest(customer_id=uuid.uuid4()))
    assert outcome.status is RunStatus.SKIPPED and outcome.run_id is None
