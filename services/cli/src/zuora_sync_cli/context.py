"""What every command needs, built once per invocation from the environment (never at import)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from application.credentials import ZuoraCredentialsChecker
from application.customers import CustomerPolicy
from application.uow import SqlUnitOfWork, unit_of_work
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sync_engine import WorkflowSyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.settings import StoreSettings

from zuora_sync_cli.settings import CliSettings


@dataclass
class CliContext:
    settings: CliSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def store(self) -> StoreSettings:
        return self.settings.store

    def secret_box(self) -> SecretBox:
        # Built on demand: read-only commands work without encryption keys.
        return self.store.secret_box()

    def policy(self) -> CustomerPolicy:
        """The customer rules' configuration; the CLI asks Zuora only when told to
        (``--check-credentials``, ``customers check``)."""
        return CustomerPolicy(
            box=self.secret_box(),
            allowed_base_urls=self.store.allowed_base_urls,
            checker=ZuoraCredentialsChecker(allowed_base_urls=self.store.allowed_base_urls),
        )

    def uow(self) -> AbstractAsyncContextManager[SqlUnitOfWork]:
        """``async with ctx.uow() as uow``: one unit of work over a new session."""
        return unit_of_work(self.sessions)

    def sync_engine(self) -> WorkflowSyncEngine:
        return WorkflowSyncEngine(
            self.engine,
            self.secret_box(),
            allowed_base_urls=self.store.allowed_base_urls,
            settings=self.settings.sync,
            definition_settings=self.settings.definitions,
        )


@asynccontextmanager
async def open_context() -> AsyncIterator[CliContext]:
    settings = CliSettings()
    engine = create_engine(settings.store.database_url)
    try:
        yield CliContext(settings=settings, engine=engine, sessions=create_session_factory(engine))
    finally:
        await engine.dispose()
