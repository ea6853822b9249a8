"""get_workflow_export / list_workflow_versions over real HTTP against the Zuora sandbox."""

from __future__ import annotations

import pytest
from zuora_client import NotFoundError, ServerError, TransportError

pytestmark = pytest.mark.integration


async def test_every_definition_of_a_tenant(zuora_sandbox, sandbox_client) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=40, seed=11)
    async with sandbox_client(tenant) as client:
        workflows = await client.list_workflows()
        exported, missing = {}, []
        for workflow in workflows:
            try:
                exported[workflow.id] = await client.get_workflow_export(workflow.id)
            except NotFoundError:
                missing.append(workflow)
            versions = await client.list_workflow_versions(workflow.id)
            if workflow.active_version is not None:
                (active,) = [v for v in versions if v.status == "Active"]
                assert active.id == workflow.active_version.id
                assert active.version == workflow.active_version.version
    assert tenant.stats.export_requests == 40 and tenant.stats.versions_requests == 40
    assert all(w.active_version is None for w in missing)  # no active version: nothing to export
    assert len(exported) == 40 - len(missing) > 25
    for wf_id, export in exported.items():
        assert export.workflow.id == tenant.workflows[wf_id]["active_version"]["id"]
        assert export.raw == tenant.definitions.export(wf_id)
        assert sum(link.is_entry for link in export.linkages) == 1
        assert {t.id for t in export.tasks} >= {link.target_task_id for link in export.linkages}
        assert all(t.css is not None for t in export.tasks)
    assert sum(len(e.tasks) for e in exported.values()) > 100


async def test_in_place_edit_changes_the_hash_not_the_version(
    zuora_sandbox, sandbox_client
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=10, seed=12)
    wf_id = next(i for i in tenant.sorted_ids() if tenant.workflows[i].get("active_version"))
    async with sandbox_client(tenant) as client:
        before = await client.get_workflow_export(wf_id)
        again = await client.get_workflow_export(wf_id)
        tenant.definitions.edit(wf_id, seed=1)
        listed = await client.get_workflow(wf_id)
        after = await client.get_workflow_export(wf_id)
    assert again.content_hash() == before.content_hash()
    assert after.content_hash() != before.content_hash()
    assert after.workflow.id == before.workflow.id == listed.active_version.id


async def test_activation_shows_in_the_listing_and_the_export(
    zuora_sandbox, sandbox_client
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=10, seed=13)
    wf_id = next(i for i in tenant.sorted_ids() if tenant.workflows[i].get("active_version"))
    async with sandbox_client(tenant) as client:
        old = await client.get_workflow(wf_id)
        tenant.definitions.activate(wf_id)
        new = await client.get_workflow(wf_id)
        export = await client.get_workflow_export(wf_id)
        by_label = await client.get_workflow_export(wf_id, old.active_version.version)
        versions = await client.list_workflow_versions(wf_id)
    assert new.active_version.id != old.active_version.id
    assert new.updated_at > old.updated_at
    assert export.workflow.id == new.active_version.id
    assert by_label.workflow.id == old.active_version.id
    assert new.active_version.id in [v.id for v in versions]


async def test_missing_version_and_injected_faults(zuora_sandbox, sandbox_client) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=10, seed=14)
    wf_a, wf_b = [i for i in tenant.sorted_ids() if tenant.workflows[i].get("active_version")][:2]
    faults = tenant.definitions.faults["export"]
    async with sandbox_client(tenant, max_retries=3) as client:
        with pytest.raises(NotFoundError, match=r"Workflow version '9\.9\.9' is not found"):
            await client.get_workflow_export(wf_a, "9.9.9")
        faults.fail_workflow_ids = [wf_a]
        with pytest.raises(ServerError):
            await client.get_workflow_export(wf_a)
        assert tenant.stats.export_requests == 1 + 4  # 4 attempts: the listing's retry policy
        faults.fail_workflow_ids = []
        faults.error_rate = 0.5
        tenant.faults.fault_seed = 3
        exports = [await client.get_workflow_export(wf_b) for _ in range(6)]
        assert client.stats.retries > 3  # the 3 above, and some of the injected 50 %
    assert len({e.content_hash() for e in exports}) == 1


async def test_injected_latency_on_one_endpoint_only(zuora_sandbox, sandbox_client) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=5, seed=15)
    wf_id = next(i for i in tenant.sorted_ids() if tenant.workflows[i].get("active_version"))
    tenant.definitions.faults["versions"].latency_ms = 4000
    async with sandbox_client(tenant, max_retries=0, timeout=1.0) as client:
        await client.get_workflow_export(wf_id)  # not slowed down
        with pytest.raises(TransportError):
            await client.list_workflow_versions(wf_id)
