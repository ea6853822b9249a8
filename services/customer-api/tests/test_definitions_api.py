"""Definitions, history, diff, the download and the lists across customers, over the API, after a
real sync of sandbox tenants (PostgreSQL, the sandbox over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sync_engine import DefinitionSettings, SyncRequest, WorkflowSyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine
from zuora_sandbox import SandboxServer, Tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def sync_now(db_url: str, encryption_key: str, zuora_sandbox: SandboxServer) -> Callable[..., Any]:
    async def run(customer_id: str, **definitions: Any) -> None:
        engine = create_engine(db_url)
        try:
            sync = WorkflowSyncEngine(
                engine,
                SecretBox([encryption_key]),
                allowed_base_urls=(zuora_sandbox.base_url,),
                definition_settings=DefinitionSettings(**definitions),
            )
            request = SyncRequest(customer_id=uuid.UUID(customer_id), force=True)
            outcome = await sync.sync_customer(request)
            assert outcome.status.value == "succeeded", outcome.error_message
        finally:
            await engine.dispose()

    return run


def _export(tenant: Tenant, zuora_id: int) -> dict[str, Any]:
    """What the sync stored: the active version, or the newest one when none is active."""
    active = tenant.workflows[zuora_id].get("active_version")
    return tenant.definitions.export(zuora_id, None if active else "latest")


async def _get(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_definition_is_readable_and_a_new_version_shows_in_history_and_diff(
    client: httpx.AsyncClient,
    create_customer: Any,
    tenant: Tenant,
    sync_now: Callable[..., Any],
) -> None:
    customer = await create_customer()
    cid = customer["id"]
    await sync_now(cid)
    for zuora_id in tenant.workflows:
        body = await _get(client, f"/customers/{cid}/workflows/{zuora_id}/definition")
        export = tenant.definitions.export(zuora_id)
        assert (body["workflow"], body["tasks"], body["linkages"]) == (
            export["workflow"],
            export["tasks"],
            export["linkages"],
        )
        assert len(body["content_hash"]) == 64 and body["version"] == export["workflow"]["version"]
        assert body["fetched_at"].endswith("Z")

    wid = sorted(tenant.workflows)[0]
    base = f"/customers/{cid}/workflows/{wid}/definition"
    download = await client.get(f"{base}.json")
    assert download.status_code == 200
    assert download.json() == tenant.definitions.export(wid)
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="') and disposition.endswith('.json"')
    assert all(c.isalnum() or c in '-_."=; ' for c in disposition)

    runs = await _get(client, f"/customers/{cid}/sync-runs")
    assert runs["items"][0]["definitions_fetched"] == len(tenant.workflows)
    assert runs["items"][0]["definitions_failed"] == 0

    missing = await client.get(f"{base}/diff")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    summary = tenant.definitions.edit(wid, seed=3, changes=2)
    await sync_now(cid, verify_interval_seconds=0)
    history = await _get(client, f"{base}/history")
    assert [v["current"] for v in history["items"]] == [True, False]
    newer, older = history["items"]
    diff = await _get(client, f"{base}/diff", **{"from": older["content_hash"][:10]})
    assert diff["to"]["content_hash"] == newer["content_hash"]
    assert {t["id"] for t in diff["tasks_added"]} == set(summary.added)
    assert {t["id"] for t in diff["tasks_removed"]} == set(summary.removed)
    assert {t["task_id"] for t in diff["tasks_changed"]} == set(summary.renamed) | set(
        summary.reconfigured
    )
    old = await _get(client, base, hash=older["content_hash"])
    assert old["current"] is False

    bad = await client.get(f"{base}/diff", params={"from": "not-hex"})
    assert bad.status_code == 422
    unknown = await client.get(f"/customers/{cid}/workflows/999999/definition")
    assert unknown.status_code == 404


async def test_lists_across_customers_name_each_rows_customer(
    client: httpx.AsyncClient,
    create_customer: Any,
    customer_body: Callable[..., dict[str, Any]],
    zuora_sandbox: SandboxServer,
    tenant: Tenant,
    sync_now: Callable[..., Any],
) -> None:
    first = await create_customer()
    other_tenant = zuora_sandbox.add_tenant("globex", workflow_count=2, seed=9)
    second = await create_customer(
        name="Globex",
        client_id=other_tenant.client_id,
        client_secret=other_tenant.client_secret,
    )
    await sync_now(first["id"])
    await sync_now(second["id"])

    everything = await _get(client, "/workflows", page_size=200)
    assert everything["total"] == 5
    assert {row["customer_name"] for row in everything["items"]} == {"Acme", "Globex"}
    only = await _get(client, "/workflows", customer=second["id"])
    assert {row["zuora_id"] for row in only["items"]} == set(other_tenant.workflows)

    tasks = await _get(client, "/tasks", page_size=200)
    expected = sum(len(_export(tenant, z)["tasks"]) for z in tenant.workflows) + sum(
        len(_export(other_tenant, z)["tasks"]) for z in other_tenant.workflows
    )
    assert tasks["total"] == expected
    some = tasks["items"][0]
    assert set(some["customer"]) == {"id", "name"} and "zuora_id" in some["workflow"]
    kind = some["action_type"]
    filtered = await _get(client, "/tasks", action_type=kind.upper(), page_size=200)
    assert filtered["total"] >= 1 and {t["action_type"] for t in filtered["items"]} == {kind}
    wid = sorted(other_tenant.workflows)[0]
    of_one = await _get(client, "/tasks", customer=second["id"], workflow=wid, page_size=200)
    assert of_one["total"] == len(_export(other_tenant, wid)["tasks"])
    named = some["name"]
    by_name = await _get(client, "/tasks", q=named[:5], page_size=200)
    assert any(t["name"] == named for t in by_name["items"])
