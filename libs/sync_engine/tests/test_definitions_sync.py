"""The definitions step against real PostgreSQL and the Zuora sandbox over real HTTP: exports are
fetched only when the listing changed (or on the verification pass), failures keep the stored
definition, deletions take the definitions along."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sync_engine import DefinitionSettings, RunStatus, SyncRequest, SyncSettings, WorkflowSyncEngine
from workflow_store.definitions import definition_history, load_definition
from workflow_store.models import StoredWorkflow, SyncRun, WorkflowDefinition, WorkflowTask
from zuora_client import Workflow
from zuora_sandbox import SandboxServer, Tenant

from .conftest import Store

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def engine_for(store: Store, **definitions: Any) -> WorkflowSyncEngine:
    return WorkflowSyncEngine(
        store.engine,
        store.box,
        allowed_base_urls=(store.base_url,),
        settings=SyncSettings(
            zuora_max_retries=0, zuora_backoff_base_seconds=0.01, zuora_backoff_cap_seconds=0.05
        ),
        definition_settings=DefinitionSettings(**definitions),
    )


async def sync(engine: WorkflowSyncEngine, customer_id: uuid.UUID) -> Any:
    outcome = await engine.sync_customer(SyncRequest(customer_id=customer_id, force=True))
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error_message
    return outcome


async def current_hashes(store: Store, customer_id: uuid.UUID) -> dict[int, str]:
    async with store.sessions() as session:
        rows = await session.execute(
            select(StoredWorkflow.zuora_id, WorkflowDefinition.content_hash)
            .join(WorkflowDefinition, WorkflowDefinition.workflow_id == StoredWorkflow.id)
            .where(
                StoredWorkflow.customer_id == customer_id, WorkflowDefinition.is_current.is_(True)
            )
        )
        return {int(z): h for z, h in rows.all()}


@pytest.fixture
def tenant(zuora_sandbox: SandboxServer) -> Tenant:
    return zuora_sandbox.add_tenant("acme", workflow_count=12, seed=5)


async def test_first_sync_stores_every_definition_and_a_rerun_asks_for_none(
    store: Store, tenant: Tenant
) -> None:
    cid = await store.add_customer_for(tenant)
    engine = engine_for(store)
    first = await sync(engine, cid)
    assert first.stats.definitions_dict() == {
        "definitions_fetched": 12,
        "definitions_changed": 12,
        "definitions_failed": 0,
    }
    assert tenant.stats.export_requests == 12
    async with store.sessions() as session:
        for zuora_id in tenant.workflows:
            stored = await load_definition(session, cid, zuora_id)
            assert stored.document == tenant.definitions.export(zuora_id)
            assert stored.info.task_count == len(stored.document["tasks"])
        tasks = await session.scalar(select(func.count()).select_from(WorkflowTask))
        run = await session.get(SyncRun, first.run_id)
    assert tasks == sum(len(tenant.definitions.export(z)["tasks"]) for z in tenant.workflows)
    assert run is not None and (run.definitions_fetched, run.definitions_changed) == (12, 12)

    tenant.stats.reset()
    again = await sync(engine, cid)
    assert tenant.stats.export_requests == 0
    assert again.stats.definitions_dict() == {
        "definitions_fetched": 0,
        "definitions_changed": 0,
        "definitions_failed": 0,
    }
    assert again.definition_changes == []


async def test_in_place_edit_is_found_by_the_verification_pass(
    store: Store, tenant: Tenant
) -> None:
    cid = await store.add_customer_for(tenant)
    await sync(engine_for(store), cid)
    before = await current_hashes(store, cid)
    edited = sorted(tenant.workflows)[3]
    summary = tenant.definitions.edit(edited, seed=1, changes=3)

    tenant.stats.reset()
    hourly = await sync(engine_for(store), cid)  # same listing: the edit is not visible to it
    assert tenant.stats.export_requests == 0 and hourly.stats.definitions_changed == 0

    verifying = await sync(engine_for(store, verify_interval_seconds=0), cid)
    assert tenant.stats.export_requests == 12
    assert verifying.stats.definitions_fetched == 12
    [change] = verifying.definition_changes
    assert change.zuora_id == edited and change.old_hash == before[edited]
    assert change.tasks_added == len(summary.added)
    assert change.tasks_removed == len(summary.removed)
    assert change.tasks_changed == len(set(summary.renamed) | set(summary.reconfigured))
    after = await current_hashes(store, cid)
    assert {z for z in after if after[z] != before[z]} == {edited}


async def test_new_active_version_is_fetched_by_the_next_sync(store: Store, tenant: Tenant) -> None:
    cid = await store.add_customer_for(tenant)
    engine = engine_for(store)
    await sync(engine, cid)
    wid = sorted(tenant.workflows)[0]
    active = tenant.definitions.activate(wid)
    tenant.stats.reset()
    outcome = await sync(engine, cid)
    assert tenant.stats.export_requests == 1
    assert [c.zuora_id for c in outcome.definition_changes] == [wid]
    async with store.sessions() as session:
        history = await definition_history(session, cid, wid)
    assert [v.is_current for v in history] == [True, False]
    assert history[0].version_id == active["id"] and history[0].version == active["version"]


async def test_failing_export_keeps_the_stored_definition_and_the_run_says_so(
    store: Store, tenant: Tenant
) -> None:
    cid = await store.add_customer_for(tenant)
    engine = engine_for(store)
    await sync(engine, cid)
    wid = sorted(tenant.workflows)[1]
    before = await current_hashes(store, cid)
    active = tenant.definitions.activate(wid)
    tenant.definitions.faults["export"].fail_workflow_ids = [wid]

    outcome = await sync(engine, cid)
    assert outcome.stats.definitions_failed == 1
    assert outcome.stats.definitions_fetched == 0 and outcome.definition_changes == []
    assert outcome.stats.updated == 1  # the listing's result is still applied
    assert await current_hashes(store, cid) == before
    async with store.sessions() as session:
        run = await session.get(SyncRun, outcome.run_id)
        row = await session.scalar(
            select(StoredWorkflow).where(
                StoredWorkflow.customer_id == cid, StoredWorkflow.zuora_id == wid
            )
        )
    assert run is not None and run.status == "succeeded" and run.definitions_failed == 1
    assert row is not None and row.active_version_id == active["id"]

    # The failure is not forgotten: the next sync asks again and catches up.
    tenant.definitions.faults["export"].fail_workflow_ids = []
    tenant.stats.reset()
    healed = await sync(engine, cid)
    assert tenant.stats.export_requests == 1
    assert [c.zuora_id for c in healed.definition_changes] == [wid]


async def test_a_workflow_deleted_in_zuora_takes_its_definitions_along(
    store: Store, tenant: Tenant
) -> None:
    cid = await store.add_customer_for(tenant)
    engine = engine_for(store)
    await sync(engine, cid)
    wid = sorted(tenant.workflows)[2]
    tenant.delete_workflow(wid)
    outcome = await sync(engine, cid)
    assert outcome.stats.deleted == 1
    assert wid not in await current_hashes(store, cid)
    async with store.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(WorkflowDefinition))
        tasks = await session.scalar(select(func.count()).select_from(WorkflowTask))
    assert left == 11
    assert tasks == sum(len(tenant.definitions.export(z)["tasks"]) for z in tenant.workflows)


async def test_definitions_can_be_switched_off(store: Store, tenant: Tenant) -> None:
    cid = await store.add_customer_for(tenant)
    outcome = await sync(engine_for(store, enabled=False), cid)
    assert tenant.stats.export_requests == 0 and outcome.stats.definitions_fetched == 0
    assert outcome.stats.created == 12


async def test_exports_left_when_the_deadline_runs_out_are_counted_and_fetched_next_run(
    store: Store, tenant: Tenant
) -> None:
    from sync_engine.adapters import HttpZuoraGateway, SqlSyncStore
    from sync_engine.definitions_step import DefinitionsStep
    from sync_engine.ports import Listing
    from zuora_client import ZuoraCredentials

    cid = await store.add_customer_for(tenant)
    await sync(engine_for(store, enabled=False), cid)  # the workflows, no definitions yet
    listing = Listing(
        {wid: Workflow.from_api(item) for wid, item in tenant.workflows.items()}, pages=1
    )
    sql_store = SqlSyncStore(store.sessions, store.box, clock=lambda: NOW)
    step = DefinitionsStep(sql_store, DefinitionSettings(), clock=lambda: NOW)
    creds = ZuoraCredentials(
        base_url=store.base_url, client_id=tenant.client_id, client_secret=tenant.client_secret
    )
    gateway = HttpZuoraGateway(SyncSettings(), allowed_base_urls=(store.base_url,))
    async with gateway.connect(creds) as zuora:
        out_of_time = await step.fetch(zuora, cid, listing, budget_seconds=0)
    assert (out_of_time.fetched, out_of_time.failed) == (0, 12)
    assert "not fetched within the sync deadline" in out_of_time.failures[-1]

    outcome = await sync(engine_for(store), cid)
    assert outcome.stats.definitions_fetched == 12
