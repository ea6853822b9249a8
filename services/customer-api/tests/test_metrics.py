"""``GET /metrics`` of the API: open, outside the OpenAPI document, outbox backlog and freshness
read from the database at scrape time (checked after a real sync against the sandbox); the
per-customer series only for a scraper with the API key."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from customer_api.app import create_app
from customer_api.settings import ApiSettings
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sync_engine import RunStatus, SyncRequest, SyncSettings, WorkflowSyncEngine
from zuora_sandbox import SandboxServer

from .conftest import AUTH, Db

pytestmark = pytest.mark.integration

AGE = "zws_customer_last_success_age_seconds"


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def ages(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, float]:
    return {dict(labels)["customer_id"]: v for (name, labels), v in samples.items() if name == AGE}


async def test_metrics_is_open_and_not_in_the_openapi_document(
    anon: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await anon.get("/metrics")
    assert response.status_code == 200
    assert "zws_outbox_pending" in response.text
    assert "/metrics" not in app.openapi()["paths"]
    assert (await anon.get("/customers")).status_code == 401  # everything else still needs a key


async def test_outbox_backlog_and_freshness_after_a_sync(
    client: httpx.AsyncClient,
    create_customer: Callable[..., Any],
    db: Db,
    settings: ApiSettings,
    zuora_sandbox: SandboxServer,
    app: FastAPI,
) -> None:
    before = await scrape(client)
    assert before[("zws_outbox_pending", frozenset())] == 0
    customer = await create_customer()
    pending = len([row for row in await db.outbox() if row.sent_at is None])
    assert pending >= 1  # CustomerCreated, not relayed (the relay is off in these tests)

    samples = await scrape(client)
    assert samples[("zws_outbox_pending", frozenset())] == pending
    assert samples[("zws_customers_never_synced", frozenset())] == 1
    assert ages(samples) == {}

    engine = WorkflowSyncEngine(
        app.state.runtime.engine,
        settings.store.secret_box(),
        allowed_base_urls=settings.store.allowed_base_urls,
        settings=SyncSettings(zuora_max_retries=0),
    )
    outcome = await engine.sync_customer(SyncRequest(customer_id=uuid.UUID(customer["id"])))
    assert outcome.status is RunStatus.SUCCEEDED

    samples = await scrape(client)
    assert samples[("zws_customers_never_synced", frozenset())] == 0
    age = ages(samples)
    assert set(age) == {customer["id"]}
    assert 0 <= age[customer["id"]] < 60
    assert samples[("zws_metrics_refresh_failures_total", frozenset())] == 0


async def test_freshness_covers_active_customers_stalest_first_up_to_the_limit(
    make_settings: Callable[..., ApiSettings],
    create_customer: Callable[..., Any],
    db: Db,
) -> None:
    now = datetime.now(UTC)
    stale = await create_customer(name="Stale")
    fresh = await create_customer(name="Fresh")
    inactive = await create_customer(name="Off")
    await db.set_customer(stale["id"], last_successful_sync_at=now - timedelta(hours=3))
    await db.set_customer(fresh["id"], last_successful_sync_at=now - timedelta(minutes=5))
    await db.set_customer(
        inactive["id"], active=False, last_successful_sync_at=now - timedelta(days=9)
    )
    limited = create_app(make_settings(METRICS_MAX_CUSTOMERS=1))
    async with (
        limited.router.lifespan_context(limited),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=limited), base_url="http://testserver", headers=AUTH
        ) as client,
    ):
        age = ages(await scrape(client))
    assert set(age) == {stale["id"]}  # the stalest one; the inactive one is not watched
    assert 3 * 3600 - 5 <= age[stale["id"]] < 3 * 3600 + 60


async def test_anonymous_scrapes_get_no_customer_ids(
    anon: httpx.AsyncClient, client: httpx.AsyncClient, create_customer: Callable[..., Any], db: Db
) -> None:
    # Audit S1: an anonymous GET /metrics listed customer ids with their last-success times.
    customer = await create_customer()
    await db.set_customer(customer["id"], last_successful_sync_at=datetime.now(UTC))
    bad_key = {"Authorization": "Bearer not-the-key"}
    for response in (await anon.get("/metrics"), await anon.get("/metrics", headers=bad_key)):
        assert response.status_code == 200
        assert customer["id"] not in response.text
        assert AGE not in response.text
        assert "zws_outbox_pending" in response.text  # the aggregates stay open
    assert set(ages(await scrape(client))) == {customer["id"]}
