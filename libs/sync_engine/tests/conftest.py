"""A migrated PostgreSQL store plus helpers to point customers at the sandbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sync_engine import SyncSettings, WorkflowSyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async
from zuora_sandbox import Tenant


@dataclass
class Store:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    base_url: str

    async def add_customer_for(self, tenant: Tenant, name: str | None = None) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            customer = await add_customer(
                session,
                self.box,
                name=name or tenant.name,
                base_url=self.base_url,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret,
            )
            return customer.id

    def sync_engine(self, **settings: object) -> WorkflowSyncEngine:
        return WorkflowSyncEngine(
            self.engine,
            self.box,
            allowed_base_urls=(self.base_url,),
            settings=SyncSettings(
                zuora_max_retries=settings.pop("zuora_max_retries", 1),
                zuora_backoff_base_seconds=0.01,
                zuora_backoff_cap_seconds=0.05,
                **settings,  # type: ignore[arg-type]
            ),
        )

    async def row_versions(self, customer_id: uuid.UUID) -> dict[int, str]:
        """zuora_id -> xmin: any insert, update or delete of a row changes this map."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT zuora_id, xmin::text FROM workflows WHERE customer_id = :c"),
                {"c": customer_id},
            )
            return {int(z): x for z, x in rows}


@pytest.fixture
async def store(postgres_url: str, zuora_sandbox: object) -> AsyncIterator[Store]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        yield Store(
            engine=engine,
            sessions=create_session_factory(engine),
            box=SecretBox([SecretBox.generate_key()]),
            base_url=zuora_sandbox.base_url,  # type: ignore[attr-defined]
        )
    finally:
        await engine.dispose()
