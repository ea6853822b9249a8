"""RFC 9457 problems for every error; no secret echoed, no stack trace; health endpoints."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from customer_api.app import create_app
from customer_api.settings import ApiSettings
from fastapi import FastAPI

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}
SECRET = "Sup3r-S3cret-Value-Never-Echo"


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    return body


async def test_problem_shapes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, create_customer: Any
) -> None:
    _assert_problem(await anon.get("/customers"), 401)
    not_found = _assert_problem(await client.get(f"/customers/{uuid.uuid4()}"), 404)
    assert not_found["instance"].startswith("/customers/")
    await create_customer()
    conflict = _assert_problem(
        await client.post(
            "/customers",
            json={
                "name": "Acme",
                "base_url": "https://rest.zuora.com",
                "client_id": "x",
                "client_secret": "y",
                "validate_credentials": False,
            },
        ),
        409,
    )
    assert conflict["type"].endswith("customer-name-taken")
    invalid = _assert_problem(await client.post("/customers", json={}), 422)
    locations = {tuple(e["loc"]) for e in invalid["errors"]}
    assert ("body", "name") in locations and ("body", "client_secret") in locations
    _assert_problem(await client.get("/no-such-route"), 404)
    _assert_problem(await client.put("/customers"), 405)
    _assert_problem(
        await client.post(
            "/customers", content=b"{broken", headers={"content-type": "application/json"}
        ),
        422,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x" * 201, "client_secret": SECRET},
        {"name": "ok", "client_secret": SECRET + "x" * 200},
        {"name": "ok", "client_secret": SECRET, "unexpected": SECRET},
        {"name": "ok", "client_secret": SECRET + "\x00"},
        {"name": "ok", "client_secret": [SECRET]},
        {"name": "ok", "client_secret": SECRET, "client_id": {"nested": SECRET}},
        {"name": "ok", "client_secret": SECRET, "entity_id": SECRET * 3},
    ],
)
async def test_validation_errors_never_echo_values(
    client: httpx.AsyncClient, body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    payload = {"base_url": "https://rest.zuora.com", "client_id": "cid", **body}
    with caplog.at_level(logging.DEBUG):
        response = await client.post("/customers", json=payload)
    problem = _assert_problem(response, 422)
    assert problem["errors"]
    assert all(set(e) == {"loc", "msg", "type"} for e in problem["errors"])
    assert SECRET not in response.text
    assert SECRET not in caplog.text
    patch = await client.patch(f"/customers/{uuid.uuid4()}", json=body)
    assert SECRET not in patch.text


async def test_limits(client: httpx.AsyncClient) -> None:
    base = {
        "name": "n",
        "base_url": "https://rest.zuora.com",
        "client_id": "c",
        "client_secret": "s",
        "validate_credentials": False,
    }
    for field, limit in (
        ("name", 200),
        ("client_id", 100),
        ("client_secret", 200),
        ("entity_id", 64),
    ):
        too_long = await client.post("/customers", json={**base, field: "a" * (limit + 1)})
        body = _assert_problem(too_long, 422)
        assert ["body", field] in [e["loc"] for e in body["errors"]]
    long_url = await client.post("/customers", json={**base, "base_url": "https://" + "a" * 250})
    _assert_problem(long_url, 422)
    at_limit = await client.post(
        "/customers", json={**base, "name": "a" * 200, "client_secret": "s" * 200}
    )
    assert at_limit.status_code == 201


async def test_unhandled_error_is_a_bare_500_problem(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    app.add_api_route("/boom", boom)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/boom")
    body = _assert_problem(response, 500)
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text
    assert body["title"] == "Internal Server Error"
    assert "internal detail that must not leak" in caplog.text  # logged server-side


async def test_healthz_needs_no_database(
    make_settings: Callable[..., ApiSettings],
) -> None:
    app = create_app(make_settings(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as anon,
    ):
        healthz = await anon.get("/healthz")
        assert healthz.status_code == 200 and healthz.json() == {"status": "ok"}
        readyz = await anon.get("/readyz")
        body = _assert_problem(readyz, 503)
        assert body["title"] == "Not ready"
        assert "nobody" not in readyz.text


async def test_readyz_ok_with_database(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_several_api_workers_are_refused_on_sqlite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    # Audit M3: each API process runs an outbox relay; on SQLite nothing makes them take turns.
    from customer_api import main as api_main

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("API_WORKERS", "2")
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("DEV_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        api_main.main()
    assert exited.value.code == 2
    assert "API_WORKERS > 1 needs PostgreSQL" in capsys.readouterr().err
