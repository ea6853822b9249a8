"""Sync triggers (commands through the outbox), run history, the failed list and replay."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sync_messages import topics
from workflow_store.models import RunStatus

Db = Any


async def test_sync_one_customer(client: httpx.AsyncClient, create_customer: Any, db: Db) -> None:
    customer = await create_customer()
    response = await client.post(f"/customers/{customer['id']}/sync")
    assert response.status_code == 202
    command_id = response.json()["command_id"]
    forced = await client.post(f"/customers/{customer['id']}/sync", json={"force": True})
    assert forced.status_code == 202
    rows = await db.outbox(topics.SYNC_PRIORITY_COMMANDS)
    assert str(rows[0].id) == command_id
    assert all(r.key == customer["id"] for r in rows)
    first, second = (r.payload for r in rows)
    assert first["type"] == "SyncCustomerWorkflows"
    assert first["reason"] == "manual" and first["force"] is False
    assert first["customer_id"] == customer["id"] and first["id"] == command_id
    assert second["force"] is True and second["id"] == forced.json()["command_id"]


async def test_sync_unknown_customer_is_404(client: httpx.AsyncClient, db: Db) -> None:
    response = await client.post(f"/customers/{uuid.uuid4()}/sync")
    assert response.status_code == 404
    assert await db.outbox() == []
    extra = await client.post(f"/customers/{uuid.uuid4()}/sync", json={"forse": True})
    assert extra.status_code == 422


async def test_sync_all(client: httpx.AsyncClient, db: Db) -> None:
    first = await client.post("/sync")
    second = await client.post("/sync", json={"force": False})
    assert first.status_code == second.status_code == 202
    ids = {first.json()["command_id"], second.json()["command_id"]}
    assert len(ids) == 2
    rows = await db.outbox(topics.SYNC_ALL)
    assert {r.payload["id"] for r in rows} == ids
    assert all(r.payload["type"] == "SyncAllCustomers" for r in rows)
    assert all(r.payload["reason"] == "manual" for r in rows)
    assert len({r.payload["slot"] for r in rows}) == 2


async def test_customer_sync_runs_newest_first(
    client: httpx.AsyncClient, create_customer: Any, db: Db
) -> None:
    customer = await create_customer()
    other = await create_customer(name="Other")
    runs = [db.sync_run(customer["id"], "succeeded", minutes_ago=m) for m in (30, 10, 20)]
    await db.add(*runs, db.sync_run(other["id"], "failed", minutes_ago=5))
    data = (await client.get(f"/customers/{customer['id']}/sync-runs")).json()
    assert data["total"] == 3
    assert [item["id"] for item in data["items"]] == [str(runs[i].id) for i in (1, 2, 0)]
    assert data["items"][0]["customer_name"] == "Acme"
    paged = (
        await client.get(
            f"/customers/{customer['id']}/sync-runs", params={"page": 2, "page_size": 2}
        )
    ).json()
    assert [item["id"] for item in paged["items"]] == [str(runs[0].id)]
    missing = await client.get(f"/customers/{uuid.uuid4()}/sync-runs")
    assert missing.status_code == 404


async def test_failed_list_filter(client: httpx.AsyncClient, create_customer: Any, db: Db) -> None:
    customer = await create_customer()
    failed = db.sync_run(
        customer["id"], "failed", minutes_ago=1, error_kind="transient", error_message="HTTP 503"
    )
    blocked = db.sync_run(customer["id"], "deletes_blocked", minutes_ago=2, blocked_deletes=40)
    await db.add(
        failed,
        blocked,
        db.sync_run(customer["id"], "succeeded", minutes_ago=3),
        db.sync_run(customer["id"], "failed", minutes_ago=4),
    )
    only_failed = (await client.get("/sync-runs", params={"status": "failed"})).json()
    assert only_failed["total"] == 2
    assert only_failed["items"][0]["id"] == str(failed.id)
    assert only_failed["items"][0]["error_message"] == "HTTP 503"
    both = (await client.get("/sync-runs?status=failed&status=deletes_blocked")).json()
    assert both["total"] == 3
    assert (await client.get("/sync-runs")).json()["total"] == 4
    bad = await client.get("/sync-runs", params={"status": "broken"})
    assert bad.status_code == 422
    one = await client.get(f"/sync-runs/{blocked.id}")
    assert one.status_code == 200 and one.json()["blocked_deletes"] == 40
    assert (await client.get(f"/sync-runs/{uuid.uuid4()}")).status_code == 404


async def test_replay(client: httpx.AsyncClient, create_customer: Any, db: Db) -> None:
    customer = await create_customer()
    failed = db.sync_run(customer["id"], "failed")
    blocked = db.sync_run(customer["id"], "deletes_blocked")
    succeeded = db.sync_run(customer["id"], "succeeded")
    await db.add(failed, blocked, succeeded)

    response = await client.post(f"/sync-runs/{failed.id}/replay")
    assert response.status_code == 202
    forced = await client.post(f"/sync-runs/{blocked.id}/replay", json={"force": True})
    assert forced.status_code == 202
    rows = await db.outbox(topics.SYNC_PRIORITY_COMMANDS)
    assert [r.payload["id"] for r in rows] == [
        response.json()["command_id"],
        forced.json()["command_id"],
    ]
    assert rows[0].payload["reason"] == "replay"
    assert rows[0].payload["replay_of"] == str(failed.id)
    assert rows[0].payload["force"] is False
    assert rows[0].key == customer["id"]
    assert rows[1].payload["replay_of"] == str(blocked.id) and rows[1].payload["force"] is True

    conflict = await client.post(f"/sync-runs/{succeeded.id}/replay")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "succeeded" in conflict.json()["detail"]
    assert (await client.post(f"/sync-runs/{uuid.uuid4()}/replay")).status_code == 404
    assert len(await db.outbox(topics.SYNC_PRIORITY_COMMANDS)) == 2


async def test_unfiltered_run_list_uses_the_estimate_on_a_large_table(
    client: httpx.AsyncClient, create_customer: Any, db: Db
) -> None:
    # Audit A9: every GET /sync-runs counted the whole table.
    from sqlalchemy import text

    customer = await create_customer()
    await db.add(*(db.sync_run(customer["id"], "succeeded", minutes_ago=m) for m in (1, 2)))
    async with db.sessions() as session, session.begin():
        # What ANALYZE would record for a table of 2.5 million runs.
        await session.execute(
            text("UPDATE pg_class SET reltuples = 2500000 WHERE oid = 'sync_runs'::regclass")
        )
    data = (await client.get("/sync-runs", params={"page_size": 10})).json()
    assert data["total"] == 2_500_000
    assert len(data["items"]) == 2
    filtered = (await client.get("/sync-runs", params={"status": "succeeded"})).json()
    assert filtered["total"] == 2  # filtered lists are counted exactly


async def test_allow_deletes_is_carried_on_one_customer_and_refused_on_sync_all(
    client: httpx.AsyncClient, create_customer: Any, db: Db
) -> None:
    customer = await create_customer()
    bounded = await client.post(
        f"/customers/{customer['id']}/sync", json={"force": True, "allow_deletes": 30}
    )
    assert bounded.status_code == 202
    (row,) = await db.outbox(topics.SYNC_PRIORITY_COMMANDS)
    assert row.payload["allow_deletes"] == 30 and row.payload["force"] is True
    negative = await client.post(f"/customers/{customer['id']}/sync", json={"allow_deletes": -1})
    assert negative.status_code == 422

    refused = await client.post("/sync", json={"force": True, "allow_deletes": 5})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "one customer only" in refused.text
    assert await db.outbox(topics.SYNC_ALL) == []


async def test_allow_deletes_on_replay_only_of_a_deletes_blocked_run(
    client: httpx.AsyncClient, create_customer: Any, db: Db
) -> None:
    customer = await create_customer()
    failed = db.sync_run(customer["id"], "failed")
    blocked = db.sync_run(customer["id"], "deletes_blocked")
    await db.add(failed, blocked)
    wrong = await client.post(f"/sync-runs/{failed.id}/replay", json={"allow_deletes": 3})
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert "deletes_blocked" in wrong.json()["detail"]
    applied = await client.post(f"/sync-runs/{blocked.id}/replay", json={"allow_deletes": 40})
    assert applied.status_code == 202
    (row,) = await db.outbox(topics.SYNC_PRIORITY_COMMANDS)
    assert row.payload["allow_deletes"] == 40 and row.payload["replay_of"] == str(blocked.id)


async def test_every_stored_run_status_filters_the_run_list(
    client: httpx.AsyncClient, create_customer: Any, db: Db
) -> None:
    """The filter accepts each status the store holds, retry_scheduled (the worker's) included."""
    customer = await create_customer()
    runs = {
        status: db.sync_run(customer["id"], status.value, minutes_ago=i)
        for i, status in enumerate(RunStatus)
    }
    await db.add(*runs.values())
    retrying = (await client.get("/sync-runs?status=retry_scheduled")).json()
    assert [item["id"] for item in retrying["items"]] == [str(runs[RunStatus.RETRY_SCHEDULED].id)]
    assert retrying["items"][0]["status"] == "retry_scheduled"
    for status, run in runs.items():
        listed = (await client.get("/sync-runs", params={"status": status.value})).json()
        assert [item["id"] for item in listed["items"]] == [str(run.id)], status


async def test_openapi_status_filter_lists_every_run_status(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    (param,) = (
        p for p in document["paths"]["/sync-runs"]["get"]["parameters"] if p["name"] == "status"
    )
    items = next(s for s in param["schema"]["anyOf"] if s.get("type") == "array")["items"]
    schema = document["components"]["schemas"][items["$ref"].rsplit("/", 1)[-1]]
    assert schema["enum"] == [s.value for s in RunStatus]
    assert "retry_scheduled" in schema["enum"]
