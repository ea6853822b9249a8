"""What every command needs, built once per invocation from the environment (never at import)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sync_engine import SyncSettings, WorkflowSyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.settings import StoreSettings


@dataclass
class CliContext:
    store: StoreSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    def secret_box(self) -> SecretBox:
        # Built on demand: read-only commands work without encryption keys.
        return self.store.secret_box()

    def sync_engine(self) -> WorkflowSyncEngine:
        return WorkflowSyncEngine(
            self.engine,
            self.secret_box(),
            allowed_base_urls=self.store.allowed_base_urls,
            settings=SyncSettings(),
        )


@asynccontextmanager
async def open_context() -> AsyncIterator[CliContext]:
    store = StoreSettings()
    engine = create_engine(store.database_url)
    try:
        yield CliContext(store=store, engine=engine, sessions=create_session_factory(engine))
    finally:
        await engine.dispose()
