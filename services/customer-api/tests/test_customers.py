"""Customers: create (credentials checked against the sandbox over HTTP), read, update, delete,
each change with its outbox event in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from customer_api.settings import ApiSettings
from sync_messages import topics
from workflow_store.crypto import SecretBox
from zuora_sandbox import Faults, SandboxServer, Tenant

BodyFactory = Callable[..., dict[str, Any]]
Db = Any
CLOSED_PORT_URL = "http://127.0.0.1:9"  # allowed in the test settings; nothing listens

SECRET_FIELDS = ("client_secret", "client_secret_encrypted")


def _assert_no_secret(response: httpx.Response, secret: str) -> None:
    assert secret not in response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        data = response.json()
        for item in data.get("items", [data]):
            assert not any(field in item for field in SECRET_FIELDS)


async def test_create_with_valid_credentials(
    client: httpx.AsyncClient,
    customer_body: BodyFactory,
    tenant: Tenant,
    db: Db,
    encryption_key: str,
) -> None:
    response = await client.post("/customers", json=customer_body(entity_id=tenant.entity_ids[0]))
    assert response.status_code == 201, response.text
    _assert_no_secret(response, tenant.client_secret)
    data = response.json()
    assert response.headers["location"] == f"/customers/{data['id']}"
    assert data["name"] == "Acme"
    assert data["credential_status"] == "valid"
    assert data["active"] is True
    assert data["workflow_count"] == 0
    assert data["entity_id"] == tenant.entity_ids[0]
    assert tenant.stats.token_requests == 1

    stored = await db.customer(data["id"])
    assert stored is not None
    assert tenant.client_secret not in stored.client_secret_encrypted
    assert SecretBox([encryption_key]).decrypt(stored.client_secret_encrypted) == (
        tenant.client_secret
    )

    rows = await db.outbox()
    assert len(rows) == 1
    assert rows[0].topic == topics.CUSTOMER_EVENTS
    assert rows[0].key == data["id"]
    assert rows[0].payload["type"] == "CustomerCreated"
    assert rows[0].payload["customer_id"] == data["id"]
    assert rows[0].sent_at is None
    assert tenant.client_secret not in str(rows[0].payload)


async def test_customer_and_event_commit_together(
    client: httpx.AsyncClient,
    customer_body: BodyFactory,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the outbox row cannot be written, the customer is not stored either."""

    def broken_enqueue(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr("application.uow.enqueue", broken_enqueue)
    response = await client.post("/customers", json=customer_body(validate_credentials=False))
    assert response.status_code == 500
    assert await db.customers() == []
    assert await db.outbox() == []


async def test_invalid_credentials_are_422_and_nothing_is_stored(
    client: httpx.AsyncClient, customer_body: BodyFactory, tenant: Tenant, db: Db
) -> None:
    wrong = "not-the-secret-XYZ"
    response = await client.post("/customers", json=customer_body(client_secret=wrong))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Zuora rejected the credentials"
    assert "refused" in problem["detail"]
    assert wrong not in response.text
    assert tenant.stats.token_requests == 1
    assert await db.customers() == []
    assert await db.outbox() == []


async def test_unknown_entity_is_refused(
    client: httpx.AsyncClient, customer_body: BodyFactory, db: Db
) -> None:
    response = await client.post("/customers", json=customer_body(entity_id="no-such-entity"))
    assert response.status_code == 422
    assert await db.customers() == []


async def test_base_url_not_allowed_is_422_without_a_token_request(
    client: httpx.AsyncClient, customer_body: BodyFactory, tenant: Tenant, db: Db
) -> None:
    for url in ("https://evil.example.com", "http://127.0.0.1:1/path", "ftp://rest.zuora.com"):
        response = await client.post("/customers", json=customer_body(base_url=url))
        assert response.status_code == 422, url
        problem = response.json()
        assert problem["title"] == "Base URL not allowed"
        assert problem["errors"][0]["loc"] == ["body", "base_url"]
    assert tenant.stats.token_requests == 0
    assert await db.customers() == []


async def test_zuora_unreachable_is_503(
    client: httpx.AsyncClient, customer_body: BodyFactory, db: Db
) -> None:
    response = await client.post("/customers", json=customer_body(base_url=CLOSED_PORT_URL))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Zuora unavailable"
    assert await db.customers() == []


async def test_zuora_server_error_is_502(
    client: httpx.AsyncClient, customer_body: BodyFactory, tenant: Tenant, db: Db
) -> None:
    tenant.faults = Faults(token_error_rate=1.0)
    response = await client.post("/customers", json=customer_body())
    assert response.status_code == 502, response.text
    assert await db.customers() == []


async def test_a_huge_retry_after_from_zuora_is_clamped_to_a_day(
    client: httpx.AsyncClient, customer_body: BodyFactory, tenant: Tenant, db: Db
) -> None:
    # The sandbox sends int(1e308): 309 digits. A longer one parses to inf, which int() cannot
    # convert (a 500 before the clamp); the client clamps every hint to 86400 s.
    tenant.faults = Faults(token_rate_limit_rate=1.0, rate_limit_retry_after=1e308)
    response = await client.post("/customers", json=customer_body())
    assert response.status_code == 502, response.text
    assert response.headers["retry-after"] == "86400"
    assert await db.customers() == []


async def test_duplicate_name_is_409(
    client: httpx.AsyncClient, customer_body: BodyFactory, create_customer: Any, tenant: Tenant
) -> None:
    await create_customer()
    response = await client.post("/customers", json=customer_body())
    assert response.status_code == 409
    assert response.json()["title"] == "Customer name already exists"
    assert tenant.stats.token_requests == 0  # refused before asking Zuora


async def test_validate_credentials_false_skips_the_token_request(
    client: httpx.AsyncClient, customer_body: BodyFactory, tenant: Tenant
) -> None:
    response = await client.post(
        "/customers", json=customer_body(client_secret="wrong", validate_credentials=False)
    )
    assert response.status_code == 201
    assert response.json()["credential_status"] == "unknown"
    assert tenant.stats.token_requests == 0


async def test_setting_can_turn_validation_off(
    make_settings: Callable[..., ApiSettings],
    customer_body: BodyFactory,
    tenant: Tenant,
) -> None:
    from customer_api.app import create_app

    app = create_app(make_settings(ZUORA_VALIDATE_CREDENTIALS=False))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers={"Authorization": "Bearer test-key-one-0123456789"},
        ) as c,
    ):
        response = await c.post("/customers", json=customer_body(client_secret="wrong"))
    assert response.status_code == 201
    assert tenant.stats.token_requests == 0


async def test_get_and_list(client: httpx.AsyncClient, create_customer: Any, db: Db) -> None:
    created = [await create_customer(name=f"Customer {i:02d}") for i in range(5)]
    await db.add(*(db.workflow(created[0]["id"], i) for i in range(1, 4)))
    one = await client.get(f"/customers/{created[0]['id']}")
    assert one.status_code == 200
    data = one.json()
    for field in (
        "last_sync_status",
        "last_sync_at",
        "last_successful_sync_at",
        "last_sync_error",
        "credential_status",
        "active",
        "workflow_count",
    ):
        assert field in data
    assert data["workflow_count"] == 3
    assert not any(field in data for field in SECRET_FIELDS)

    page = (await client.get("/customers", params={"page": 2, "page_size": 2})).json()
    assert page["total"] == 5
    assert page["page"] == 2
    assert page["page_size"] == 2
    assert [c["name"] for c in page["items"]] == ["Customer 02", "Customer 03"]
    assert (await client.get("/customers", params={"page": 9})).json()["items"] == []
    assert (await client.get("/customers", params={"page_size": 201})).status_code == 422


async def test_unknown_customer_is_404_and_malformed_id_422(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"/customers/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    malformed = await client.get("/customers/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["loc"] == ["path", "customer_id"]


async def test_rotate_credentials_emits_credentials_changed(
    client: httpx.AsyncClient,
    create_customer: Any,
    zuora_sandbox: SandboxServer,
    db: Db,
    encryption_key: str,
) -> None:
    customer = await create_customer()
    other = zuora_sandbox.add_tenant("acme-2", seed=2)
    response = await client.patch(
        f"/customers/{customer['id']}",
        json={"client_id": other.client_id, "client_secret": other.client_secret},
    )
    assert response.status_code == 200, response.text
    _assert_no_secret(response, other.client_secret)
    assert response.json()["client_id"] == other.client_id
    assert response.json()["credential_status"] == "valid"
    assert other.stats.token_requests == 1
    stored = await db.customer(customer["id"])
    assert stored is not None
    assert SecretBox([encryption_key]).decrypt(stored.client_secret_encrypted) == (
        other.client_secret
    )
    event = (await db.outbox())[-1]
    assert event.topic == topics.CUSTOMER_EVENTS
    assert event.key == customer["id"]
    assert event.payload["type"] == "CustomerUpdated"
    assert event.payload["credentials_changed"] is True
    assert event.payload["changed_fields"] == ["client_id", "client_secret"]
    assert other.client_secret not in str(event.payload)


async def test_rotation_with_refused_credentials_changes_nothing(
    client: httpx.AsyncClient, create_customer: Any, tenant: Tenant, db: Db
) -> None:
    customer = await create_customer()
    response = await client.patch(
        f"/customers/{customer['id']}", json={"client_secret": "wrong-secret-123"}
    )
    assert response.status_code == 422
    assert "wrong-secret-123" not in response.text
    assert len(await db.outbox()) == 1  # only CustomerCreated
    stored = await db.customer(customer["id"])
    assert stored is not None and stored.client_id == tenant.client_id


async def test_rename_only_is_not_a_credentials_change(
    client: httpx.AsyncClient, create_customer: Any, tenant: Tenant, db: Db
) -> None:
    customer = await create_customer()
    response = await client.patch(f"/customers/{customer['id']}", json={"name": "Acme Renamed"})
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Renamed"
    assert tenant.stats.token_requests == 0
    event = (await db.outbox())[-1]
    assert event.payload["type"] == "CustomerUpdated"
    assert event.payload["credentials_changed"] is False
    assert event.payload["changed_fields"] == ["name"]


async def test_same_secret_is_no_change(
    client: httpx.AsyncClient, create_customer: Any, tenant: Tenant, db: Db
) -> None:
    customer = await create_customer()
    response = await client.patch(
        f"/customers/{customer['id']}", json={"client_secret": tenant.client_secret}
    )
    assert response.status_code == 200
    assert len(await db.outbox()) == 1
    assert tenant.stats.token_requests == 0


async def test_deactivate_and_rename_conflict(
    client: httpx.AsyncClient, create_customer: Any, db: Db
) -> None:
    first = await create_customer(name="First")
    await create_customer(name="Second")
    response = await client.patch(f"/customers/{first['id']}", json={"active": False})
    assert response.status_code == 200
    assert response.json()["active"] is False
    event = (await db.outbox())[-1]
    assert event.payload["active"] is False
    assert event.payload["changed_fields"] == ["active"]

    conflict = await client.patch(f"/customers/{first['id']}", json={"name": "Second"})
    assert conflict.status_code == 409
    missing = await client.patch(f"/customers/{uuid.uuid4()}", json={"name": "x"})
    assert missing.status_code == 404
    extra = await client.patch(f"/customers/{first['id']}", json={"nickname": "x"})
    assert extra.status_code == 422


async def test_delete_cascades_and_emits_customer_deleted(
    client: httpx.AsyncClient, create_customer: Any, db: Db
) -> None:
    customer = await create_customer()
    await db.add(*(db.workflow(customer["id"], i) for i in range(1, 6)))
    await db.add(db.sync_run(customer["id"], "failed"))
    assert await db.workflow_count() == 5
    response = await client.delete(f"/customers/{customer['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert await db.workflow_count() == 0
    assert await db.customers() == []
    event = (await db.outbox())[-1]
    assert event.payload["type"] == "CustomerDeleted"
    assert event.key == customer["id"]
    again = await client.delete(f"/customers/{customer['id']}")
    assert again.status_code == 404


async def test_patch_answers_409_when_the_customer_changed_during_the_check(
    make_settings: Callable[..., ApiSettings],
    customer_body: Callable[..., dict[str, Any]],
    encryption_key: str,
    db: Db,
) -> None:
    # Audit M9: two PATCHes could commit a combination of credentials nobody validated.
    from customer_api.app import create_app
    from workflow_store.models import Customer
    from zuora_client import ZuoraCredentials

    from .conftest import AUTH

    box = SecretBox([encryption_key])
    target: dict[str, str] = {}

    async def concurrent_patch(credentials: ZuoraCredentials) -> None:
        # While this PATCH asks Zuora, another one stores a different secret.
        async with db.sessions() as session, session.begin():
            customer = await session.get(Customer, uuid.UUID(target["id"]))
            assert customer is not None
            customer.client_secret_encrypted = box.encrypt("secret-from-the-other-patch")

    app = create_app(make_settings(), credentials_checker=concurrent_patch)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=AUTH
        ) as client,
    ):
        created = await client.post("/customers", json=customer_body(validate_credentials=False))
        assert created.status_code == 201, created.text
        target["id"] = created.json()["id"]
        response = await client.patch(
            f"/customers/{target['id']}", json={"client_id": "another-client-id"}
        )
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    stored = await db.customer(target["id"])
    assert stored is not None
    assert stored.client_id != "another-client-id"  # nothing of the stale plan was written
    assert box.decrypt(stored.client_secret_encrypted) == "secret-from-the-other-patch"
