"""Property-based API tests with schemathesis against the app's own OpenAPI (in-process).

- With the API key: no 5xx, status codes / content types / bodies conform to the schema.
- Without it: no protected operation ever succeeds.
- No client secret in any response body or log line.

Examples are bounded so this file runs well under a minute.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from customer_api.app import create_app
from customer_api.auth import OPEN_PATHS
from customer_api.settings import ApiSettings
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy.ext.asyncio import async_sessionmaker
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer
from workflow_store.db import create_engine, create_session_factory
from workflow_store.models import StoredWorkflow, SyncRun
from workflow_store.settings import StoreSettings

BASE_URL = "http://testserver"
AUTH = {"Authorization": "Bearer test-key-one-0123456789"}
SEEDED_SECRET = "seeded-Secret-Value-0042"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

_turn = itertools.count()


@pytest.fixture
async def seeded(db_url: str, encryption_key: str) -> dict[str, str]:
    """A customer (with a known secret), a workflow and a failed run, straight into the DB."""
    engine = create_engine(db_url)
    sessions: async_sessionmaker[Any] = create_session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            customer = await add_customer(
                session,
                SecretBox([encryption_key]),
                name="Seeded",
                base_url="https://rest.zuora.com",
                client_id="seeded-client",
                client_secret=SEEDED_SECRET,
            )
            run = SyncRun(customer_id=customer.id, reason="hourly", status="failed")
            session.add(run)
            session.add(
                StoredWorkflow(
                    customer_id=customer.id,
                    zuora_id=7,
                    name="Seeded workflow",
                    raw={"id": 7},
                    content_hash="0" * 64,
                )
            )
            await session.flush()
            return {"customer_id": str(customer.id), "run_id": str(run.id), "zuora_id": "7"}
    finally:
        await engine.dispose()


def _offline_app() -> Any:
    """The app with an unreachable database (building it connects to nothing)."""
    return create_app(
        ApiSettings(
            store=StoreSettings(
                DATABASE_URL="postgresql+psycopg://unused@127.0.0.1:1/unused",
                ENCRYPTION_KEYS=SecretBox.generate_key(),
            ),
            API_KEYS=AUTH["Authorization"].split()[1],
            OUTBOX_RELAY_ENABLED=False,
            ZUORA_VALIDATE_CREDENTIALS=False,
        )
    )


schema = schemathesis.openapi.from_dict(_offline_app().openapi())


@pytest.fixture
def offline_app() -> Iterator[Any]:
    """Enough for unauthenticated requests: they never reach the database."""
    try:
        yield _offline_app()
    finally:
        shutdown_lifespans()


@pytest.fixture
def api_app(make_settings: Callable[..., ApiSettings], seeded: dict[str, str]) -> Iterator[Any]:
    """The app on the test database; its lifespan runs in schemathesis' ASGI event loop."""
    # Credentials are never checked here: generated requests must not reach out to Zuora.
    app = create_app(make_settings(ZUORA_VALIDATE_CREDENTIALS=False))
    try:
        yield app
    finally:
        shutdown_lifespans()


def _point_at_seeded_data(case: Any, seeded: dict[str, str]) -> None:
    """Every other case uses the seeded ids, so the happy paths are exercised too."""
    if next(_turn) % 2 or not case.path_parameters:
        return
    for name in ("customer_id", "run_id", "zuora_id"):
        if name in case.path_parameters:
            case.path_parameters[name] = seeded[name]


@schema.parametrize()
@EXAMPLES
def test_api_conforms_with_auth(
    case: Any, api_app: Any, seeded: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _point_at_seeded_data(case, seeded)
    with caplog.at_level(logging.DEBUG):
        response = case.call_and_validate(
            headers=AUTH, checks=CHECKS, app=api_app, base_url=BASE_URL
        )
    assert SEEDED_SECRET not in response.text
    assert "client_secret_encrypted" not in response.text
    assert SEEDED_SECRET not in caplog.text
    assert AUTH["Authorization"].split()[1] not in caplog.text
    secret = (case.body or {}).get("client_secret") if isinstance(case.body, dict) else None
    if isinstance(secret, str) and len(secret) >= 6:
        assert secret not in response.text
        assert secret not in caplog.text


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_never_succeeds_without_auth(case: Any, offline_app: Any) -> None:
    if case.path in OPEN_PATHS:
        return
    response = case.call(app=offline_app, base_url=BASE_URL)
    assert response.status_code == 401, (case.method, case.formatted_path, response.status_code)
    assert response.headers["www-authenticate"][0].startswith("Bearer")


def test_seeded_ids_are_uuids(seeded: dict[str, str]) -> None:
    uuid.UUID(seeded["customer_id"])
    uuid.UUID(seeded["run_id"])
