"""Workflow definitions: generation, versions, in-place edits, activation, faults, counters."""

from __future__ import annotations

import collections
import json
from typing import TYPE_CHECKING, Any

import pytest
from zuora_sandbox import SandboxState
from zuora_sandbox.definition_book import UnknownVersion
from zuora_sandbox.definitions import MAX_TASKS, edit_definition, generate_definition

if TYPE_CHECKING:
    from .conftest import Api


def with_active(tenant: Any) -> list[int]:
    return [i for i in tenant.sorted_ids() if tenant.workflows[i].get("active_version")]


def test_generation_is_deterministic_and_covers_the_catalogue() -> None:
    assert generate_definition("1:10", 11) == generate_definition("1:10", 11)
    assert generate_definition("1:10", 11) != generate_definition("1:10", 12)
    counts: list[int] = []
    action_types: collections.Counter[str] = collections.Counter()
    linkage_types: collections.Counter[str] = collections.Counter()
    merges = cycles = orphans = 0
    for version_id in range(1000, 1400):
        tasks, linkages = generate_definition(f"7:{version_id}", version_id)
        counts.append(len(tasks))
        action_types.update(t["action_type"] for t in tasks)
        linkage_types.update(link["linkage_type"] for link in linkages)
        ids = [t["id"] for t in tasks]
        assert len(ids) == len(set(ids))
        entries = [link for link in linkages if link["source_task_id"] is None]
        assert len(entries) == 1 and entries[0]["source_workflow_id"] == version_id
        assert all(link["source_workflow_id"] is None for link in linkages if link not in entries)
        assert {link["target_task_id"] for link in linkages} <= set(ids)
        incoming = collections.Counter(link["target_task_id"] for link in linkages)
        merges += any(n > 1 for n in incoming.values())
        orphans += any(i not in incoming for i in ids)
        cycles += any(
            link["source_task_id"] is not None and link["source_task_id"] > link["target_task_id"]
            for link in linkages
        )
    assert min(counts) == 1 and max(counts) <= MAX_TASKS and max(counts) >= 50
    for action_type in ("Callout", "Email", "Query", "If", "Iterate", "Logic::Case", "Approval"):
        assert action_types[action_type] > 0, action_type
    assert action_types["Delay"] > 0 and action_types["Export"] > 0
    for kind in ("Start", "Success", "Failure", "True", "False", "For Each", "Complete"):
        assert linkage_types[kind] > 0, kind
    for kind in ("Case_1", "Case_2", "Case_Else", "Approve", "Reject", "InvoicePosted"):
        assert linkage_types[kind] > 0, kind
    assert merges > 0 and cycles > 0 and orphans > 0


def test_edit_summary_is_exact() -> None:
    tasks, linkages = generate_definition("3:50", 51)
    while len(tasks) < 8:  # a definition big enough for several edits
        tasks, linkages = generate_definition("3:50", 51 + len(tasks) * 1000)
    new_tasks, new_linkages, summary = edit_definition(tasks, linkages, seed=1, changes=6)
    old = {t["id"]: t for t in tasks}
    new = {t["id"]: t for t in new_tasks}
    assert sorted(set(new) - set(old)) == sorted(summary.added)
    assert sorted(set(old) - set(new)) == sorted(summary.removed)
    changed = sorted(i for i in set(old) & set(new) if old[i] != new[i])
    parent_only = [
        i for i in changed if {**old[i], "task_id": None} == {**new[i], "task_id": None}
    ]  # a removed parent clears task_id: not an edit of that task
    assert sorted(set(changed) - set(parent_only)) == sorted(summary.renamed + summary.reconfigured)
    assert len(summary.renamed + summary.reconfigured + summary.added + summary.removed) == 6
    ends = {
        end for link in new_linkages for end in (link["source_task_id"], link["target_task_id"])
    }
    assert ends.isdisjoint(summary.removed)
    assert set(summary.added) <= {link["target_task_id"] for link in new_linkages}
    assert tasks == generate_definition("3:50", tasks[0]["id"] // 100)[0]  # input untouched


def test_nothing_is_generated_up_front_and_the_cache_is_bounded() -> None:
    state = SandboxState()
    tenants = [state.add_tenant(f"t{n}", workflow_count=100, seed=n) for n in range(1000)]
    cache = state.definition_cache
    assert len(cache) == 0 and all(t._pending is not None for t in tenants)
    cache.max_bytes = 200_000
    first = tenants[0].definitions.export_json(with_active(tenants[0])[0])
    assert len(cache) == 1 and tenants[0].definitions._stored == {}
    exported = 0
    for tenant in tenants[1:4]:
        for wf_id in with_active(tenant):
            exported += len(tenant.definitions.export_json(wf_id))
    assert exported > 4 * cache.max_bytes and 0 < cache.bytes <= cache.max_bytes
    assert all(t._pending is not None for t in tenants[4:])  # untouched tenants cost nothing
    assert tenants[0].definitions.export_json(with_active(tenants[0])[0]) == first  # regenerated


async def test_export_and_versions_over_http(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=30, seed=5)
    multi = next(
        i for i in with_active(tenant) if len(tenant.workflows[i]["latest_inactive_verisons"]) >= 2
    )
    item = tenant.workflows[multi]
    token = await api.token(tenant)
    versions = (await api.get_with(token, f"/workflows/{multi}/versions")).json()["data"]
    ids = [v["id"] for v in versions]
    assert ids == sorted(ids) and len(ids) == len(item["latest_inactive_verisons"]) + 1
    active = [v for v in versions if v["status"] == "Active"]
    assert [v["id"] for v in active] == [item["active_version"]["id"]]
    body = (await api.get_with(token, f"/workflows/{multi}/export")).json()
    assert body["workflow"]["id"] == item["active_version"]["id"]
    assert body["workflow"]["version"] == item["active_version"]["version"]
    assert body["workflow"]["name"] == item["name"]
    inactive = next(v for v in versions if v["status"] == "Inactive")
    old = await api.get_with(token, f"/workflows/{multi}/export", version=inactive["version"])
    assert old.json()["workflow"]["id"] == inactive["id"]
    assert old.json()["tasks"] != body["tasks"]
    latest = await api.get_with(token, f"/workflows/{multi}/export", version="latest")
    assert latest.json()["workflow"]["id"] == max(ids)
    assert tenant.stats.export_requests == 3 and tenant.stats.versions_requests == 1
    assert tenant.stats.list_requests == 0 and tenant.stats.get_requests == 0


def test_versions_hidden_by_the_listing_cap_are_listed() -> None:
    tenant = SandboxState().add_tenant("acme", workflow_count=200, seed=2)
    wf_id = next(
        i
        for i in tenant.sorted_ids()
        if len(tenant.workflows[i]["latest_inactive_verisons"]) == 10
        and tenant.workflows[i].get("active_version")
        and tenant.workflows[i]["active_version"]["id"] - i > 11
    )
    versions = tenant.definitions.versions(wf_id)
    active_id = tenant.workflows[wf_id]["active_version"]["id"]
    assert [v["id"] for v in versions] == list(range(wf_id + 1, active_id + 1))[-len(versions) :]
    assert (
        len(versions) > 11 and versions[0]["id"] == wf_id + 1 and versions[0]["version"] == "0.0.1"
    )


async def test_no_active_version_is_a_404_but_latest_works(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=60, seed=3)
    wf_id = next(i for i in tenant.sorted_ids() if not tenant.workflows[i].get("active_version"))
    token = await api.token(tenant)
    plain = await api.get_with(token, f"/workflows/{wf_id}/export")
    assert plain.status_code == 404
    assert plain.json()["errors"][0]["title"] == "Workflow version 'active' is not found."
    if tenant.workflows[wf_id]["latest_inactive_verisons"]:
        latest = await api.get_with(token, f"/workflows/{wf_id}/export", version="latest")
        assert latest.status_code == 200


async def test_edit_in_place_over_admin(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=10, seed=1)
    wf_id = with_active(tenant)[0]
    listing_before = json.dumps(tenant.workflows[wf_id], sort_keys=True)
    before = (await api.client.get(f"/_sandbox/tenants/acme/workflows/{wf_id}/definition")).json()
    edited = await api.client.post(
        f"/_sandbox/tenants/acme/workflows/{wf_id}/definition/edit", json={"seed": 3, "changes": 2}
    )
    assert edited.status_code == 200
    summary = edited.json()
    assert sum(len(v) for v in summary.values()) == 2
    after = (await api.client.get(f"/_sandbox/tenants/acme/workflows/{wf_id}/definition")).json()
    assert after["workflow"] == before["workflow"]  # same version id, same header
    assert after["tasks"] != before["tasks"]
    assert json.dumps(tenant.workflows[wf_id], sort_keys=True) == listing_before
    assert tenant.stats.export_requests == 0  # admin reads are not counted
    token = await api.token(tenant)
    served = await api.get_with(token, f"/workflows/{wf_id}/export")
    assert served.json() == after


async def test_replace_definition_over_admin(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=10, seed=1)
    wf_id = with_active(tenant)[0]
    path = f"/_sandbox/tenants/acme/workflows/{wf_id}/definition"
    tasks = [{"id": 1, "name": "Only", "action_type": "Email", "call_type": "SOAP"}]
    linkages = [
        {
            "linkage_type": "Start",
            "source_task_id": None,
            "source_workflow_id": 1,
            "target_task_id": 1,
        }
    ]
    response = await api.client.put(path, json={"tasks": tasks, "linkages": linkages})
    assert response.status_code == 200 and response.json()["tasks"] == tasks
    assert (await api.client.put(path, json={"tasks": {}})).status_code == 422
    missing = await api.client.get(f"{path}?version=7.7.7")
    assert (
        missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    )


async def test_activate_new_and_existing_versions(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=10, seed=1)
    wf_id = with_active(tenant)[0]
    old_active = dict(tenant.workflows[wf_id]["active_version"])
    old_updated = tenant.workflows[wf_id]["updatedAt"]
    old_export = tenant.definitions.export(wf_id)
    response = await api.client.post(f"/_sandbox/tenants/acme/workflows/{wf_id}/activate")
    assert response.status_code == 200
    new_active = response.json()["active_version"]
    item = tenant.workflows[wf_id]
    assert item["active_version"] == new_active and new_active["id"] != old_active["id"]
    assert new_active["version"] != old_active["version"]
    assert item["updatedAt"] > old_updated
    assert item["latest_inactive_verisons"][0]["id"] == old_active["id"]
    new_export = tenant.definitions.export(wf_id)
    assert new_export["workflow"]["id"] == new_active["id"]
    assert {t["id"] for t in new_export["tasks"]}.isdisjoint({t["id"] for t in old_export["tasks"]})
    versions = tenant.definitions.versions(wf_id)
    assert [v["id"] for v in versions if v["status"] == "Active"] == [new_active["id"]]
    back = await api.client.post(
        f"/_sandbox/tenants/acme/workflows/{wf_id}/activate",
        json={"version": old_active["version"]},
    )
    assert back.json()["active_version"]["id"] == old_active["id"]
    assert tenant.definitions.export(wf_id) == old_export
    assert new_active["id"] in [v["id"] for v in tenant.definitions.versions(wf_id)]
    with pytest.raises(UnknownVersion):
        tenant.definitions.activate(wf_id, "8.8.8")


async def test_endpoint_faults(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=10, seed=1)
    wf_a, wf_b = with_active(tenant)[:2]
    put = await api.client.put(
        "/_sandbox/tenants/acme/faults/export",
        json={"fail_workflow_ids": [wf_a], "not_found_workflow_ids": [wf_b], "latency_ms": 1},
    )
    assert put.status_code == 200 and put.json()["fail_workflow_ids"] == [wf_a]
    token = await api.token(tenant)
    assert (await api.get_with(token, f"/workflows/{wf_a}/export")).status_code == 503
    assert (await api.get_with(token, f"/workflows/{wf_b}/export")).status_code == 404
    assert (await api.get_with(token, f"/workflows/{wf_a}/versions")).status_code == 200
    patch = await api.client.patch(
        "/_sandbox/tenants/acme/faults/versions", json={"error_rate": 1, "error_statuses": [500]}
    )
    assert patch.json()["error_rate"] == 1
    assert (await api.get_with(token, f"/workflows/{wf_a}/versions")).status_code == 500
    assert tenant.stats.injected_errors == 3
    assert tenant.stats.export_requests == 2 and tenant.stats.versions_requests == 2
    stats = (await api.client.get("/_sandbox/tenants/acme/stats")).json()
    assert (stats["export_requests"], stats["versions_requests"]) == (2, 2)
    bad = await api.client.put("/_sandbox/tenants/acme/faults/export", json={"error_rate": 2})
    assert bad.status_code == 422
    assert (await api.client.get("/_sandbox/tenants/acme/faults/tasks")).status_code == 404


async def test_seeded_not_found_rate_is_reproducible(api: Api, state: SandboxState) -> None:
    async def outcomes() -> list[int]:
        tenant.faults.fault_seed = 9
        tenant.reset_fault_rng()
        token = await api.token(tenant)
        return [
            (await api.get_with(token, f"/workflows/{wf}/export")).status_code
            for wf in with_active(tenant)
        ]

    tenant = state.add_tenant("acme", workflow_count=30, seed=1)
    tenant.definitions.faults["export"].not_found_rate = 0.5
    first = await outcomes()
    assert first == await outcomes()
    assert set(first) == {200, 404}


async def test_a_hand_made_item_without_versions_has_one(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme")
    tenant.put_workflow({"id": 5, "name": "Hand made", "createdAt": "2024-01-01T00:00:00.000Z"})
    token = await api.token(tenant)
    versions = (await api.get_with(token, "/workflows/5/versions")).json()["data"]
    assert [(v["version"], v["status"]) for v in versions] == [("0.0.1", "Inactive")]
    assert (await api.get_with(token, "/workflows/5/export")).status_code == 404  # none active
    latest = await api.get_with(token, "/workflows/5/export", version="latest")
    assert latest.status_code == 200
    assert latest.json()["workflow"]["id"] == versions[0]["id"]
    assert latest.json()["workflow"]["name"] == "Hand made" and latest.json()["tasks"]
    tenant.definitions.activate(5, "0.0.1")
    assert (await api.get_with(token, "/workflows/5/export")).json() == latest.json()
