"""Data for the workflow pages' browser tests, made the way production makes it: a tenant in the
Zuora sandbox, a customer created through the JSON API, the real worker's sync filling the
database with its workflows. Definitions: if the worker has not stored them (the sync's
definitions step may not be deployed in this tree yet), they are fetched from the sandbox with
the real client and written with the store's own write path, as that step does."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from workflow_store.definitions import FetchedDefinition, store_definitions
from zuora_client import NotFoundError, ZuoraClient, ZuoraCredentials

from .conftest import UiStack, run_async

SEED_TIMEOUT_SECONDS = 90.0  # a bound for a loaded 2-core machine


@dataclass(frozen=True)
class SeededCustomer:
    id: uuid.UUID
    name: str
    workflow_count: int
    client_id: str
    client_secret: str


_seeded: dict[str, SeededCustomer] = {}


def seed_workflows_with_definitions(ui_stack: UiStack, workflow_count: int = 12) -> SeededCustomer:
    """One customer with `workflow_count` synced workflows (once per stack)."""
    if ui_stack.base_url in _seeded:
        return _seeded[ui_stack.base_url]
    name = f"Workflows UI {uuid.uuid4().hex[:6]}"
    tenant = ui_stack.sandbox.add_tenant(name, workflow_count=workflow_count, seed=name)
    response = httpx.post(
        ui_stack.url("/customers"),
        headers={"Authorization": f"Bearer {ui_stack.api_key}"},
        json={
            "name": name,
            "base_url": ui_stack.sandbox.base_url,
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
        timeout=30,
    )
    response.raise_for_status()
    customer_id = uuid.UUID(response.json()["id"])
    deadline = time.monotonic() + SEED_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if _synced(ui_stack, customer_id, workflow_count):
            seeded = SeededCustomer(
                customer_id, name, workflow_count, tenant.client_id, tenant.client_secret
            )
            _ensure_definitions(ui_stack, seeded)
            _seeded[ui_stack.base_url] = seeded
            return seeded
        time.sleep(0.5)
    raise AssertionError(f"{name}: not synced within {SEED_TIMEOUT_SECONDS:.0f} s")


def sandbox_client(ui_stack: UiStack, customer: SeededCustomer) -> ZuoraClient:
    credentials = ZuoraCredentials(
        base_url=ui_stack.sandbox.base_url,
        client_id=customer.client_id,
        client_secret=customer.client_secret,
    )
    return ZuoraClient(credentials, allowed_base_urls=(ui_stack.sandbox.base_url,))


def _definition_count(ui_stack: UiStack, customer_id: uuid.UUID) -> int:
    (count,) = ui_stack.query(
        "SELECT count(*) FROM workflow_definitions d JOIN workflows w ON w.id = d.workflow_id"
        " WHERE w.customer_id = %s AND d.is_current",
        customer_id,
    )[0]
    return int(count)


def _run_finished(ui_stack: UiStack, customer_id: uuid.UUID) -> bool:
    rows = ui_stack.query(
        "SELECT count(*) FROM sync_runs WHERE customer_id = %s AND finished_at IS NOT NULL",
        customer_id,
    )
    return bool(rows[0][0])


def _ensure_definitions(ui_stack: UiStack, customer: SeededCustomer) -> None:
    """After the worker's run has finished, store what it did not (only missing ones: no race)."""
    deadline = time.monotonic() + SEED_TIMEOUT_SECONDS
    while not _run_finished(ui_stack, customer.id):
        assert time.monotonic() < deadline, f"{customer.name}: the sync run did not finish"
        time.sleep(0.5)
    if _definition_count(ui_stack, customer.id) == customer.workflow_count:
        return
    rows = ui_stack.query(
        "SELECT w.zuora_id FROM workflows w WHERE w.customer_id = %s AND NOT EXISTS"
        " (SELECT 1 FROM workflow_definitions d WHERE d.workflow_id = w.id AND d.is_current)",
        customer.id,
    )
    run_async(_fetch_and_store(ui_stack, customer, [int(r[0]) for r in rows]))


async def _fetch_and_store(ui_stack: UiStack, customer: SeededCustomer, ids: list[int]) -> None:
    exports = []
    async with sandbox_client(ui_stack, customer) as client:
        for zuora_id in ids:
            try:
                exports.append((zuora_id, await client.get_workflow_export(zuora_id)))
            except NotFoundError:
                continue  # no active version to export (the sandbox makes some such)
    engine = create_async_engine(ui_stack.database_url)
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            fetched = [
                FetchedDefinition(
                    zuora_id=zuora_id,
                    canonical=export.canonical_json(),
                    content_hash=export.content_hash(),
                    listed_version_id=None,
                    listed_version=None,
                    listed_updated_at=None,
                )
                for zuora_id, export in exports
            ]
            await store_definitions(session, customer.id, fetched, now=datetime.now(UTC))
    finally:
        await engine.dispose()


def _synced(ui_stack: UiStack, customer_id: uuid.UUID, workflow_count: int) -> bool:
    (count,) = ui_stack.query("SELECT count(*) FROM workflows WHERE customer_id = %s", customer_id)[
        0
    ]
    return bool(count == workflow_count)
