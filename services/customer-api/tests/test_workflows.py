"""Workflows read API: from the database only; paging, search, filters, sort; fast path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

Db = Any

LAST_SYNC = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture
async def seeded(create_customer: Any, db: Db) -> str:
    """A customer with 30 workflows of varied names, statuses and triggers."""
    customer = await create_customer()
    await db.set_customer(customer["id"], last_successful_sync_at=LAST_SYNC)
    rows = []
    for i in range(1, 31):
        rows.append(
            db.workflow(
                customer["id"],
                1000 + i,
                name=("Invoice Run " if i % 3 == 0 else "Billing Flow ") + f"{i:02d}",
                status="Active" if i % 2 else "Inactive",
                callout_trigger=i % 5 == 0,
                ondemand_trigger=i % 2 == 0,
                scheduled_trigger=i % 7 == 0,
                zuora_updated_at=None
                if i == 30
                else datetime(2026, 1, i, 0, 0, 0, 1230 * (i == 4), UTC),
                raw={"id": 1000 + i, "name": f"raw {i}", "nested": {"x": [1, 2]}},
                **(
                    {
                        "active_version_id": None,
                        "active_version": None,
                        "active_version_status": None,
                        "active_version_type": None,
                    }
                    if i == 1
                    else {}
                ),
            )
        )
    # A workflow of another customer, with the same Zuora id: must never show up.
    other = await create_customer(name="Other")
    rows.append(db.workflow(other["id"], 1001, name="Billing Flow other"))
    await db.add(*rows)
    return str(customer["id"])


async def _list(client: httpx.AsyncClient, customer_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/customers/{customer_id}/workflows", params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_paging_and_total(client: httpx.AsyncClient, seeded: str) -> None:
    first = await _list(client, seeded, page=1, page_size=12)
    assert first["total"] == 30
    assert (first["page"], first["page_size"]) == (1, 12)
    assert len(first["items"]) == 12
    last = await _list(client, seeded, page=3, page_size=12)
    assert len(last["items"]) == 6
    beyond = await _list(client, seeded, page=4, page_size=12)
    assert beyond["items"] == [] and beyond["total"] == 30
    default = await _list(client, seeded)
    assert default["page_size"] == 50 and len(default["items"]) == 30
    everything = [
        i["zuora_id"]
        for p in (1, 2, 3)
        for i in (await _list(client, seeded, page=p, page_size=12))["items"]
    ]
    assert sorted(everything) == list(range(1001, 1031))


async def test_item_shape(client: httpx.AsyncClient, seeded: str) -> None:
    items = (await _list(client, seeded, sort="zuora_id", page_size=2))["items"]
    first, second = items
    assert first["zuora_id"] == 1001
    assert first["active_version"] is None
    assert second["active_version"] == {
        "id": 10020,
        "version": "1.0",
        "status": "Active",
        "type": "Workflow::Setup",
    }
    for field in (
        "zuora_id",
        "name",
        "description",
        "status",
        "active_version",
        "callout_trigger",
        "ondemand_trigger",
        "scheduled_trigger",
        "interval",
        "timezone",
        "priority",
        "zuora_created_at",
        "zuora_updated_at",
        "last_synced_at",
    ):
        assert field in second
    assert "raw" not in second
    assert second["last_synced_at"] == "2026-02-03T04:05:06Z"


async def test_search_is_case_insensitive_substring(client: httpx.AsyncClient, seeded: str) -> None:
    data = await _list(client, seeded, q="invoice RUN")
    assert data["total"] == 10
    assert all("Invoice Run" in item["name"] for item in data["items"])
    assert (await _list(client, seeded, q="%"))["total"] == 0  # wildcards are literal
    assert (await _list(client, seeded, q="_"))["total"] == 0
    assert (await _list(client, seeded, q=""))["total"] == 30


async def test_status_and_trigger_filters(client: httpx.AsyncClient, seeded: str) -> None:
    active = await _list(client, seeded, status="Active")
    assert active["total"] == 15
    assert all(item["status"] == "Active" for item in active["items"])
    assert (await _list(client, seeded, status="inactive"))["total"] == 15
    callout = await _list(client, seeded, trigger="callout")
    assert callout["total"] == 6 and all(i["callout_trigger"] for i in callout["items"])
    scheduled = await _list(client, seeded, trigger="scheduled")
    assert scheduled["total"] == 4
    ondemand_active = await _list(client, seeded, trigger="ondemand", status="Active")
    assert ondemand_active["total"] == 0
    combined = await _list(client, seeded, trigger="callout", q="invoice")
    assert [i["zuora_id"] for i in combined["items"]] == [1015, 1030]
    bad = await client.get(f"/customers/{seeded}/workflows", params={"trigger": "webhook"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("sort", "expected_first", "expected_last"),
    [
        ("name", "Billing Flow 01", "Invoice Run 30"),
        ("-name", "Invoice Run 30", "Billing Flow 01"),
        ("zuora_id", 1001, 1030),
        ("-zuora_id", 1030, 1001),
        ("zuora_updated_at", 1001, 1030),  # 1030 has no update time: last
        ("-zuora_updated_at", 1029, 1030),
    ],
)
async def test_sort(
    client: httpx.AsyncClient, seeded: str, sort: str, expected_first: Any, expected_last: Any
) -> None:
    items = (await _list(client, seeded, sort=sort))["items"]
    key = "name" if isinstance(expected_first, str) else "zuora_id"
    assert items[0][key] == expected_first
    assert items[-1][key] == expected_last


async def test_invalid_params_are_422(client: httpx.AsyncClient, seeded: str) -> None:
    for params in ({"page_size": 201}, {"page": 0}, {"sort": "raw"}, {"q": "a\x00b"}):
        response = await client.get(f"/customers/{seeded}/workflows", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    ok = await client.get(f"/customers/{seeded}/workflows", params={"page_size": 200})
    assert ok.status_code == 200


async def test_single_workflow_with_raw(client: httpx.AsyncClient, seeded: str) -> None:
    response = await client.get(f"/customers/{seeded}/workflows/1007")
    assert response.status_code == 200
    data = response.json()
    assert data["zuora_id"] == 1007
    assert data["raw"] == {"id": 1007, "name": "raw 7", "nested": {"x": [1, 2]}}
    assert data["last_synced_at"] == "2026-02-03T04:05:06Z"
    missing = await client.get(f"/customers/{seeded}/workflows/999")
    assert missing.status_code == 404
    assert "Workflow 999" in missing.json()["detail"]


async def test_unknown_customer_is_404_problem(client: httpx.AsyncClient) -> None:
    for path in ("/workflows", "/workflows/1"):
        response = await client.get(f"/customers/{uuid.uuid4()}{path}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == 404 and body["title"] == "Not Found"
        assert body["instance"].startswith("/customers/")


async def test_a_page_is_one_postgres_rendered_query_an_empty_one_two_orm_queries(
    app: FastAPI, client: httpx.AsyncClient, seeded: str
) -> None:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = app.state.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await _list(client, seeded, q="flow", status="Active", trigger="ondemand", sort="-name")
        assert len(statements) == 2  # no match: the fast path's empty page, then ORM page + head
        statements.clear()
        await _list(client, seeded, page_size=50)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements == []  # rendered by PostgreSQL through the read pool, not the ORM
    assert all("workflows.raw" not in s for s in statements)


QUERIES: list[dict[str, Any]] = [
    {},
    {"page_size": 7, "page": 2},
    {"page_size": 7, "page": 5},
    {"q": "INVOICE"},
    {"q": "flow", "status": "active"},
    {"trigger": "callout"},
    {"trigger": "scheduled", "sort": "-zuora_updated_at"},
    {"sort": "zuora_updated_at", "page_size": 10, "page": 3},
    {"sort": "-zuora_id"},
    {"sort": "-name", "status": "Inactive", "trigger": "ondemand"},
    {"q": "50%_/"},
]


@pytest.mark.parametrize("query", QUERIES)
async def test_postgres_rendered_page_equals_the_orm_page(
    app: FastAPI, client: httpx.AsyncClient, seeded: str, query: dict[str, Any]
) -> None:
    """The fast path and the ORM path (SQLite, empty pages, the UI) give byte-for-byte the same
    document once parsed: same items, order, nulls, timestamps, total."""
    fast = await _list(client, seeded, **query)
    runtime = app.state.runtime
    pages, runtime.workflow_pages = runtime.workflow_pages, None
    try:
        orm = await _list(client, seeded, **query)
    finally:
        runtime.workflow_pages = pages
    assert pages is not None
    assert fast == orm
