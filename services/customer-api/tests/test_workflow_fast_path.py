"""The workflow list's ASGI fast path (customer_api.fast_reads): it answers only what it has
validated with the route's rules, with the route's bytes; everything else reaches the route."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from customer_api.fast_reads import WorkflowListFastPath, parse_list_query
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

Db = Any


@pytest.fixture
async def customer(create_customer: Any, db: Db) -> str:
    created = await create_customer()
    await db.add(*(db.workflow(created["id"], 500 + i, name=f"Flow {i:02d}") for i in range(12)))
    return str(created["id"])


@pytest.fixture
def route_calls(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests the fast path handed on to FastAPI's routing."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, WorkflowListFastPath):
        layer = layer.app
    calls: list[str] = []
    inner = layer.app

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await inner(scope, receive, send)

    monkeypatch.setattr(layer, "app", counting)
    return calls


async def test_a_valid_page_is_served_below_the_route_with_its_bytes(
    client: httpx.AsyncClient, customer: str, route_calls: list[str]
) -> None:
    fast = await client.get(f"/customers/{customer}/workflows", params={"page_size": 5})
    assert route_calls == []
    # The same page through the route: a UUID spelling the fast path leaves to FastAPI.
    routed = await client.get(
        f"/customers/{uuid.UUID(customer).hex}/workflows", params={"page_size": 5}
    )
    assert len(route_calls) == 1
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert fast.headers == routed.headers
    assert fast.json()["total"] == 12 and len(fast.json()["items"]) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "abc"},
        {"page": ""},
        {"page_size": "201"},
        {"page": "1000001"},
        {"status": ""},
        {"q": "a\x00b"},
        {"q": "x" * 201},
        {"trigger": "manual"},
        {"sort": "raw"},
        {"sort": ""},
    ],
)
async def test_invalid_queries_get_the_routes_422(
    client: httpx.AsyncClient, customer: str, route_calls: list[str], params: dict[str, str]
) -> None:
    response = await client.get(f"/customers/{customer}/workflows", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:zuora-workflow-sync:problem:validation"
    assert route_calls == [f"/customers/{customer}/workflows"]


async def test_unknown_customer_and_past_the_end_reach_the_route(
    client: httpx.AsyncClient, customer: str, route_calls: list[str]
) -> None:
    missing = await client.get(f"/customers/{uuid.uuid4()}/workflows")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    beyond = await client.get(f"/customers/{customer}/workflows", params={"page": 9})
    assert beyond.status_code == 200
    assert beyond.json() == {"items": [], "total": 12, "page": 9, "page_size": 50}
    assert len(route_calls) == 2


async def test_the_api_key_is_checked_first(
    anon: httpx.AsyncClient, customer: str, route_calls: list[str]
) -> None:
    response = await anon.get(f"/customers/{customer}/workflows")
    assert response.status_code == 401
    wrong = await anon.get(
        f"/customers/{customer}/workflows", headers={"Authorization": "Bearer wrong"}
    )
    assert wrong.status_code == 401
    assert route_calls == []


def test_the_parser_takes_only_what_the_route_accepts() -> None:
    assert parse_list_query(b"") == {"page": 1, "page_size": 50, "sort": "name"}
    assert parse_list_query(b"page=3&page_size=200&sort=-zuora_updated_at&trigger=callout") == {
        "page": 3,
        "page_size": 200,
        "sort": "-zuora_updated_at",
        "trigger": "callout",
    }
    assert parse_list_query(b"q=50%25+off&status=Active&other=1") == {
        "page": 1,
        "page_size": 50,
        "sort": "name",
        "q": "50% off",
        "status": "Active",
    }
    for refused in (b"page=01", b"page=+1", b"page=1&page=2", b"page_size=0", b"status=a%00"):
        assert parse_list_query(refused) is None, refused
