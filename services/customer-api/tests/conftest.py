"""Fixtures: a migrated PostgreSQL database, the app (lifespan running), an HTTP client, the
Zuora sandbox over real HTTP, and helpers to seed and inspect the database."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from customer_api.app import create_app
from customer_api.settings import ApiSettings
from event_bus.settings import KafkaSettings
from event_bus.testing import kafka_bootstrap, local_kafka  # noqa: F401
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from workflow_store.crypto import SecretBox
from workflow_store.migrate import upgrade_async
from workflow_store.models import Customer, OutboxMessage, StoredWorkflow, SyncRun
from workflow_store.settings import StoreSettings
from workflow_store.workflow_counts import refresh_workflow_counts
from zuora_sandbox import SandboxServer, Tenant

KEY_ONE = "test-key-one-0123456789"
KEY_TWO = "test-key-two-9876543210"
AUTH = {"Authorization": f"Bearer {KEY_ONE}"}
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens there


@pytest.fixture
async def db_url(postgres_url: str) -> str:
    await upgrade_async(postgres_url)
    return postgres_url


@pytest.fixture
def encryption_key() -> str:
    return SecretBox.generate_key()


STORE_VARIABLES = {"DATABASE_URL", "ENCRYPTION_KEYS", "APP_ENV", "ZUORA_ALLOWED_BASE_URLS"}


@pytest.fixture
def make_settings(
    db_url: str, encryption_key: str, zuora_sandbox: SandboxServer
) -> Callable[..., ApiSettings]:
    def make(**overrides: Any) -> ApiSettings:
        # The store's variables (DATABASE_URL, APP_ENV, ...) go to its nested part.
        store: dict[str, Any] = {
            "DATABASE_URL": db_url,
            "ENCRYPTION_KEYS": encryption_key,
            "APP_ENV": "test",
            "ZUORA_ALLOWED_BASE_URLS": f"{zuora_sandbox.base_url},{CLOSED_PORT_URL}",
        }
        for key in [k for k in overrides if k in STORE_VARIABLES]:
            store[key] = overrides.pop(key)
        values: dict[str, Any] = {
            "store": StoreSettings(**store),
            "API_KEYS": f"{KEY_ONE},{KEY_TWO}",
            "OUTBOX_RELAY_ENABLED": False,
            "ZUORA_VALIDATE_TIMEOUT": 3.0,
            "kafka": KafkaSettings(bootstrap_servers="127.0.0.1:9"),
        }
        values.update(overrides)
        return ApiSettings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., ApiSettings]) -> ApiSettings:
    return make_settings()


@pytest.fixture
async def app(settings: ApiSettings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=AUTH
    ) as c:
        yield c


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without the API key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = app.state.runtime.session_factory
    return factory


@pytest.fixture
def tenant(zuora_sandbox: SandboxServer) -> Tenant:
    return zuora_sandbox.add_tenant("acme", workflow_count=3, seed=1)


@pytest.fixture
def customer_body(zuora_sandbox: SandboxServer, tenant: Tenant) -> Callable[..., dict[str, Any]]:
    def body(**overrides: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": "Acme",
            "base_url": zuora_sandbox.base_url,
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        }
        data.update(overrides)
        return data

    return body


@pytest.fixture
def create_customer(
    client: httpx.AsyncClient, customer_body: Callable[..., dict[str, Any]]
) -> Callable[..., Any]:
    """POST a customer (credentials not checked unless asked); returns its JSON."""

    async def create(**overrides: Any) -> dict[str, Any]:
        overrides.setdefault("validate_credentials", False)
        response = await client.post("/customers", json=customer_body(**overrides))
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    return create


class Db:
    """Seed and inspect the test database directly (bypassing the API)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def outbox(self, topic: str | None = None) -> list[OutboxMessage]:
        async with self.sessions() as session:
            stmt = select(OutboxMessage).order_by(OutboxMessage.created_at)
            if topic is not None:
                stmt = stmt.where(OutboxMessage.topic == topic)
            return list((await session.scalars(stmt)).all())

    async def customers(self) -> list[Customer]:
        async with self.sessions() as session:
            return list((await session.scalars(select(Customer))).all())

    async def customer(self, customer_id: uuid.UUID | str) -> Customer | None:
        async with self.sessions() as session:
            return await session.get(Customer, uuid.UUID(str(customer_id)))

    async def workflow_count(self) -> int:
        async with self.sessions() as session:
            return len((await session.scalars(select(StoredWorkflow.id))).all())

    async def add(self, *rows: Any) -> None:
        async with self.sessions() as session, session.begin():
            session.add_all(rows)
            # What the sync's write transaction does after writing workflows (the pages read
            # their totals from the customer rows).
            await session.flush()
            await refresh_workflow_counts(
                session, [row.customer_id for row in rows if isinstance(row, StoredWorkflow)]
            )

    async def set_customer(self, customer_id: uuid.UUID | str, **fields: Any) -> None:
        async with self.sessions() as session, session.begin():
            customer = await session.get(Customer, uuid.UUID(str(customer_id)))
            assert customer is not None
            for name, value in fields.items():
                setattr(customer, name, value)

    @staticmethod
    def workflow(customer_id: uuid.UUID | str, zuora_id: int, **fields: Any) -> StoredWorkflow:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        values: dict[str, Any] = {
            "customer_id": uuid.UUID(str(customer_id)),
            "zuora_id": zuora_id,
            "name": f"Workflow {zuora_id:04d}",
            "description": f"Description {zuora_id}",
            "status": "Active",
            "active_version_id": zuora_id * 10,
            "active_version": "1.0",
            "active_version_status": "Active",
            "active_version_type": "Workflow::Setup",
            "callout_trigger": False,
            "ondemand_trigger": True,
            "scheduled_trigger": False,
            "interval": None,
            "timezone": "UTC",
            "priority": "Medium",
            "zuora_created_at": base,
            "zuora_updated_at": base + timedelta(minutes=zuora_id),
            "raw": {"id": zuora_id, "name": f"Workflow {zuora_id:04d}"},
            "content_hash": f"{zuora_id:064d}",
        }
        values.update(fields)
        return StoredWorkflow(**values)

    @staticmethod
    def sync_run(
        customer_id: uuid.UUID | str, status: str, minutes_ago: int = 0, **fields: Any
    ) -> SyncRun:
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "customer_id": uuid.UUID(str(customer_id)),
            "command_id": str(uuid.uuid4()),
            "reason": "hourly",
            "status": status,
            "started_at": datetime.now(UTC) - timedelta(minutes=minutes_ago),
        }
        values.update(fields)
        return SyncRun(**values)


@pytest.fixture
def db(sessions: async_sessionmaker[AsyncSession]) -> Db:
    return Db(sessions)


@pytest.fixture
def api_keys() -> tuple[str, str]:
    return KEY_ONE, KEY_TWO


# -- the web UI ------------------------------------------------------------------------------

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class UiClient:
    """An httpx client signed in to the UI (session cookie set) and its CSRF token."""

    def __init__(self, http: httpx.AsyncClient, csrf: str) -> None:
        self.http = http
        self.csrf = csrf

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, **kwargs)

    async def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        """A same-origin form post with the CSRF token (what the browser sends)."""
        headers = {"Origin": "http://testserver", **kw.pop("headers", {})}
        return await self.http.post(
            url, data={"csrf_token": self.csrf, **(data or {})}, headers=headers, **kw
        )


async def sign_in(http: httpx.AsyncClient, key: str) -> str:
    """Sign ``http`` in to the UI with ``key``; returns the session's CSRF token."""
    form = await http.get("/ui/login")
    match = _LOGIN_TOKEN.search(form.text)
    assert match, form.text
    response = await http.post(
        "/ui/login",
        data={"api_key": key, "csrf_token": match.group(1), "next": "/ui/"},
        headers={"Origin": "http://testserver"},
    )
    assert response.status_code == 303, response.text
    page = await http.get("/ui/")
    assert page.status_code == 200, page.text
    token = _CSRF_META.search(page.text)
    assert token, page.text
    return token.group(1)


@pytest.fixture
async def ui(app: FastAPI) -> AsyncIterator[UiClient]:
    """A browser-like client signed in to the UI with the first API key (no bearer header)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield UiClient(http, await sign_in(http, KEY_ONE))
