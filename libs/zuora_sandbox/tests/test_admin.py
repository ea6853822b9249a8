"""The /_sandbox admin API and the Python mutation API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from zuora_sandbox import SandboxState

if TYPE_CHECKING:
    from .conftest import Api


async def test_tenant_crud(api: Api, state: SandboxState) -> None:
    client = api.client
    assert (await client.get("/_sandbox/health")).json() == {"status": "ok", "tenants": 0}
    created = await client.post(
        "/_sandbox/tenants", json={"name": "acme", "workflow_count": 25, "seed": 4}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "acme"
    assert body["workflow_count"] == 25
    tenant = state.tenants["acme"]
    assert body["client_id"] == tenant.client_id
    assert body["client_secret"] == tenant.client_secret
    duplicate = await client.post("/_sandbox/tenants", json={"name": "acme"})
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    listing = (await client.get("/_sandbox/tenants")).json()
    assert [t["name"] for t in listing] == ["acme"]
    assert (await client.get("/_sandbox/tenants/acme")).json()["workflow_count"] == 25
    assert (await client.get("/_sandbox/tenants/nope")).status_code == 404
    # the new tenant's credentials work against the Zuora endpoints
    assert len((await api.get(tenant, "/workflows", page_length=50)).json()["data"]) == 25
    assert (await client.delete("/_sandbox/tenants/acme")).status_code == 204
    assert (await client.get("/_sandbox/tenants/acme")).status_code == 404
    assert (await api.token_response(tenant)).status_code == 401


async def test_create_tenant_with_given_credentials(api: Api, state: SandboxState) -> None:
    payload = {
        "name": "fixed",
        "client_id": "11111111-2222-4333-8444-555555555555",
        "client_secret": "s3cret=+/",
        "entity_ids": ["e1111111-2222-4333-8444-555555555555", "e2"],
    }
    response = await api.client.post("/_sandbox/tenants", json=payload)
    assert response.status_code == 201
    tenant = state.tenants["fixed"]
    assert tenant.client_secret == "s3cret=+/"
    assert tenant.multi_entity
    again = await api.client.post("/_sandbox/tenants", json={**payload, "name": "other"})
    assert again.status_code == 409  # client_id taken


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": "x", "workflow_count": -1},
        {"name": "x", "workflow_count": "3"},
        {"name": "x", "client_id": "short"},
        {"name": "x", "client_secret": "y" * 43},
        {"name": "x", "colour": "blue"},
        {"name": "x", "entity_ids": "e1"},
    ],
)
async def test_create_tenant_validation(api: Api, payload: dict[str, object]) -> None:
    response = await api.client.post("/_sandbox/tenants", json=payload)
    assert response.status_code == 422
    assert response.json()["status"] == 422


async def test_malformed_json_400(api: Api) -> None:
    response = await api.client.post(
        "/_sandbox/tenants", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    response = await api.client.post("/_sandbox/tenants", json=[1, 2])
    assert response.status_code == 400


async def test_workflow_crud_over_admin(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=5, seed=1)
    base = "/_sandbox/tenants/acme/workflows"
    listed = (await api.client.get(base)).json()
    assert listed["count"] == 5
    assert [w["id"] for w in listed["workflows"]] == sorted(tenant.workflows)
    token = await api.token(tenant)
    before = (await api.get_with(token, "/workflows")).json()["data"]

    item = {"name": "Brand new", "status": "Active", "calloutTrigger": False}
    created = await api.client.put(f"{base}/5", json=item)
    assert created.status_code == 201
    assert tenant.workflows[5] == {"id": 5, **item}
    replaced = await api.client.put(f"{base}/5", json={**item, "name": "Renamed"})
    assert replaced.status_code == 200
    mismatch = await api.client.put(f"{base}/5", json={"id": 6})
    assert mismatch.status_code == 422
    after = (await api.get_with(token, "/workflows")).json()["data"]
    assert after[0]["name"] == "Renamed"
    assert len(after) == len(before) + 1

    wf_id = max(tenant.workflows)
    old_updated = tenant.workflows[wf_id]["updatedAt"]
    patched = await api.client.patch(f"{base}/{wf_id}", json={"description": "patched"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "patched"
    assert patched.json()["updatedAt"] > old_updated
    single = (await api.get_with(token, f"/workflows/{wf_id}")).json()
    assert single["description"] == "patched"
    assert (await api.client.patch(f"{base}/1", json={"name": "x"})).status_code == 404

    assert (await api.client.delete(f"{base}/{wf_id}")).status_code == 204
    assert (await api.client.delete(f"{base}/{wf_id}")).status_code == 404
    assert (await api.get_with(token, f"/workflows/{wf_id}")).status_code == 404
    assert wf_id not in [w["id"] for w in (await api.get_with(token, "/workflows")).json()["data"]]


async def test_churn_over_admin(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=50, seed=1)
    before = {i: dict(w) for i, w in tenant.workflows.items()}
    response = await api.client.post(
        "/_sandbox/tenants/acme/churn", json={"change": 5, "add": 3, "delete": 4, "seed": 9}
    )
    assert response.status_code == 200
    result = response.json()
    assert len(result["changed"]) == 5
    assert len(result["added"]) == 3
    assert len(result["deleted"]) == 4
    assert set(result["deleted"]).isdisjoint(tenant.workflows)
    assert all(i not in before for i in result["added"])
    assert all(tenant.workflows[i] != before[i] for i in result["changed"])
    assert len(tenant.workflows) == 49
    unchanged = set(before) - set(result["changed"]) - set(result["deleted"])
    assert all(tenant.workflows[i] == before[i] for i in unchanged)
    listed = (await api.get(tenant, "/workflows", page_length=50)).json()["data"]
    assert sorted(w["id"] for w in listed) == sorted(tenant.workflows)
    too_many = await api.client.post("/_sandbox/tenants/acme/churn", json={"delete": 500})
    assert too_many.status_code == 422


def test_churn_is_deterministic() -> None:
    results = []
    for _ in range(2):
        tenant = SandboxState().add_tenant("acme", workflow_count=40, seed=1)
        results.append(tenant.churn(change=3, add=2, delete=2, seed=5))
    assert results[0] == results[1]


async def test_faults_over_admin(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=5, seed=1)
    url = "/_sandbox/tenants/acme/faults"
    assert (await api.client.get(url)).json()["error_rate"] == 0
    put = await api.client.put(url, json={"error_rate": 1, "error_statuses": [502]})
    assert put.status_code == 200
    assert put.json()["error_rate"] == 1
    assert (await api.get(tenant, "/workflows")).status_code == 502
    patch = await api.client.patch(url, json={"error_statuses": [504]})
    assert patch.json()["error_rate"] == 1
    assert patch.json()["error_statuses"] == [504]
    # PUT replaces over the defaults
    put = await api.client.put(url, json={"last_page_next_page": "null"})
    assert put.json()["error_rate"] == 0
    assert put.json()["last_page_next_page"] == "null"
    assert (await api.client.put(url, json={"bogus": 1})).status_code == 422
    assert (await api.client.put(url, json={"error_rate": "lots"})).status_code == 422
    assert tenant.faults.last_page_next_page == "null"


async def test_stats_and_expire_over_admin(api: Api, state: SandboxState) -> None:
    tenant = state.add_tenant("acme", workflow_count=5, seed=1)
    token = await api.token(tenant)
    await api.get_with(token, "/workflows")
    await api.get_with(token, f"/workflows/{min(tenant.workflows)}")
    stats = (await api.client.get("/_sandbox/tenants/acme/stats")).json()
    assert stats == {
        "token_requests": 1,
        "list_requests": 1,
        "get_requests": 1,
        "export_requests": 0,
        "versions_requests": 0,
        "injected_errors": 0,
        "by_status": {"200": 3},
    }
    assert (await api.client.post("/_sandbox/tenants/acme/expire-tokens")).status_code == 200
    assert (await api.get_with(token, "/workflows")).status_code == 401
    reset = await api.client.post("/_sandbox/tenants/acme/stats/reset")
    assert reset.json()["list_requests"] == 0
    assert tenant.stats.by_status == {}


async def test_global_reset(api: Api, state: SandboxState) -> None:
    state.add_tenant("a", workflow_count=1, seed=1)
    state.add_tenant("b", workflow_count=1, seed=2)
    assert (await api.client.post("/_sandbox/reset")).status_code == 200
    assert state.tenants == {}


def test_python_mutation_api() -> None:
    tenant = SandboxState().add_tenant("acme", workflow_count=3, seed=1)
    wf_id = min(tenant.workflows)
    updated = tenant.update_workflow(wf_id, name="New name", status="Inactive")
    assert tenant.workflows[wf_id]["name"] == "New name"
    assert updated["status"] == "Inactive"
    with pytest.raises(KeyError):
        tenant.update_workflow(1, name="x")
    with pytest.raises(ValueError):
        tenant.put_workflow({"name": "no id"})
    tenant.put_workflow({"id": 1, "name": "first"})
    assert tenant.sorted_ids()[0] == 1
    tenant.delete_workflow(1)
    assert 1 not in tenant.sorted_ids()
    with pytest.raises(KeyError):
        tenant.delete_workflow(1)
    tenant.workflows[2] = {"id": 2, "name": "direct"}
    tenant.invalidate()
    assert tenant.sorted_ids()[0] == 2
    assert tenant.item_json(2) == '{"id": 2, "name": "direct"}'
