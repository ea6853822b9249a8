"""The application factory. Nothing is built at import: call :func:`create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from application.credentials import ZuoraCredentialsChecker
from application.customers import CustomerPolicy
from application.ports import CredentialsChecker
from event_bus.broker import KafkaPublisher
from event_bus.outbox import OutboxRelay
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from observability.metrics import ApiMetrics
from workflow_store.db import create_engine, create_session_factory

from customer_api import __version__
from customer_api.auth import OPEN_PATHS, ApiKeyAuthMiddleware, ApiKeyVerifier
from customer_api.fast_reads import WorkflowListFastPath
from customer_api.handlers.workflow_pages import WorkflowPages, conninfo_for
from customer_api.problems import (
    FieldError,
    Problem,
    UnhandledErrorMiddleware,
    install_problem_handlers,
    problem_responses,
)
from customer_api.routes import catalog, customers, definitions, health, metrics, sync, workflows
from customer_api.runtime import Runtime
from customer_api.settings import ApiSettings
from customer_api.ui import install_ui

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Customers (Zuora tenants), the locally synced copy of their Workflows, sync triggers and
sync-run history.

Every route except `/healthz`, `/readyz`, `/metrics` (Prometheus; not listed here), `/docs` and
`/openapi.json` needs `Authorization: Bearer <API key>`. Errors are RFC 9457
`application/problem+json`. Malformed UUIDs in paths are answered 422 (validation), unknown ids 404.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    await runtime.start()
    try:
        yield
    finally:
        await runtime.close()


def build_runtime(settings: ApiSettings, checker: CredentialsChecker | None = None) -> Runtime:
    """Engine, session factory, policy and (unless disabled) the outbox relay."""
    engine = create_engine(settings.store.database_url)
    session_factory = create_session_factory(engine)
    policy = CustomerPolicy(
        box=settings.store.secret_box(),
        allowed_base_urls=settings.store.allowed_base_urls,
        checker=checker
        or ZuoraCredentialsChecker(
            allowed_base_urls=settings.store.allowed_base_urls,
            timeout=settings.zuora_validate_timeout,
            token_requests_per_minute=settings.zuora_token_requests_per_minute,
        ),
        validate_credentials=settings.zuora_validate_credentials,
    )
    metrics = ApiMetrics()
    relay = publisher = None
    if settings.outbox_relay_enabled:
        publisher = KafkaPublisher(settings.kafka, component="customer-api-outbox")
        relay = OutboxRelay(
            session_factory,
            publisher,
            max_attempts=settings.outbox_max_attempts,
            on_parked=lambda topic: metrics.outbox_parked.labels(topic=topic).inc(),
        )
    conninfo = conninfo_for(settings.store.database_url)
    pages = None if conninfo is None else WorkflowPages(conninfo, max_size=settings.read_pool_size)
    return Runtime(
        settings=settings,
        workflow_pages=pages,
        engine=engine,
        session_factory=session_factory,
        policy=policy,
        relay=relay,
        publisher=publisher,
        metrics=metrics,
    )


def operation_id(route: APIRoute) -> str:
    """Readable OpenAPI operation ids for generated clients: the route's first tag, then its
    function name without the tag's own words (``customers`` + ``create_customer`` ->
    ``customers-create``; ``workflow definitions`` + ``definition_diff`` ->
    ``workflow-definitions-diff``). FastAPI's default is ``create_customer_customers_post``.
    Ids must stay unique: customer-api tests/test_openapi_ids.py checks."""
    tag = str(route.tags[0]) if route.tags else ""
    tag_words = tag.lower().split()
    own = {w for word in tag_words for w in (word, word.removesuffix("s"))}
    words = [w for w in route.name.lower().split("_") if w and w not in own]
    if not words:  # the name was only the tag's words: say what the operation does
        words = [min(route.methods or {"op"}).lower()]
    return "-".join([*tag_words, *words])


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            ref = "#/components/schemas/{model}"
            for model in (Problem, FieldError):
                model_schema = model.model_json_schema(ref_template=ref)
                for name, definition in model_schema.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
                schemas[model.__name__] = model_schema
            components["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key."}
            }
            schema["security"] = [{"bearerAuth": []}]
            unauthorized = problem_responses(401)[401]
            for path, operations in schema.get("paths", {}).items():
                if path in OPEN_PATHS:
                    continue
                for operation in operations.values():
                    operation.setdefault("responses", {}).setdefault("401", unauthorized)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: ApiSettings | None = None, *, credentials_checker: CredentialsChecker | None = None
) -> FastAPI:
    """Build the API. Raises ``ConfigurationError`` for missing/invalid keys (API_KEYS,
    ENCRYPTION_KEYS outside development). ``credentials_checker`` replaces the real Zuora
    token request (tests)."""
    settings = settings if settings is not None else ApiSettings()
    verifier = ApiKeyVerifier(settings.api_key_hashes())
    runtime = build_runtime(settings, credentials_checker)
    app = FastAPI(
        title="Zuora Workflow Sync — customer API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        redoc_url=None,
        responses=problem_responses(400, 500),
        generate_unique_id_function=operation_id,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(customers.router)
    app.include_router(workflows.router)
    app.include_router(definitions.router)
    app.include_router(catalog.router)
    app.include_router(sync.router)
    # Innermost of ours, so inside the API-key check: the workflow list's hot path, answered
    # below FastAPI's routing and dependencies when valid (customer_api.fast_reads).
    app.add_middleware(WorkflowListFastPath, runtime=runtime)
    install_ui(app, settings, verifier)  # /ui: its own cookie session, never the bearer key
    app.add_middleware(ApiKeyAuthMiddleware, verifier=verifier)
    app.add_middleware(UnhandledErrorMiddleware)
    _install_openapi(app)
    return app
