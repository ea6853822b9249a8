"""Workflow definitions end to end: a customer created over HTTP (API process), synced by a worker
process through the local broker, its definitions then all readable through the API; a workflow
deleted in Zuora takes its definition with it; a no-change re-sync asks Zuora for no export."""

from __future__ import annotations

from typing import Any

import pytest
from event_bus.local_broker import free_port

from .harness import Stack, wait_until
from .test_product_e2e import api_client, customer_body

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("dump_logs_on_failure")]


def stored_export(tenant: Any, zuora_id: int) -> dict[str, Any]:
    active = tenant.workflows[zuora_id].get("active_version")
    return tenant.definitions.export(zuora_id, None if active else "latest")  # type: ignore[no-any-return]


async def test_new_customers_definitions_are_readable_through_the_api(
    stack: Stack, zuora_sandbox: Any
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=20, seed=4)
    port = free_port()
    await stack.start_api(port)
    await stack.start_worker()
    async with api_client(stack, port) as client:
        created = await client.post("/customers", json=customer_body(stack, tenant))
        assert created.status_code == 201, created.text
        cid = created.json()["id"]

        async def synced() -> bool:
            runs = (await client.get(f"/customers/{cid}/sync-runs")).json()
            return any(r["status"] == "succeeded" for r in runs["items"])

        await wait_until(synced, timeout=60, what="the new customer's first sync")
        for zuora_id in tenant.workflows:
            response = await client.get(f"/customers/{cid}/workflows/{zuora_id}/definition")
            assert response.status_code == 200, response.text
            body = response.json()
            export = stored_export(tenant, zuora_id)
            assert (body["tasks"], body["linkages"]) == (export["tasks"], export["linkages"])
        assert tenant.stats.export_requests == 20

        gone = sorted(tenant.workflows)[0]
        tenant.delete_workflow(gone)
        tenant.stats.reset()
        queued = await client.post(f"/customers/{cid}/sync", json={"force": True})
        assert queued.status_code == 202, queued.text

        async def deleted() -> bool:
            answer = await client.get(f"/customers/{cid}/workflows/{gone}/definition")
            return answer.status_code == 404

        await wait_until(deleted, timeout=60, what="the deleted workflow's definition to go")
        # That re-sync changed nothing else: no export was asked for.
        assert tenant.stats.export_requests == 0
        tasks = (await client.get("/tasks", params={"customer": cid, "page_size": 1})).json()
        expected = sum(len(stored_export(tenant, z)["tasks"]) for z in tenant.workflows)
        assert tasks["total"] == expected
