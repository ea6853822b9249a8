"""The sync engine as the services use it: the use case (:mod:`sync_engine.use_case`) wired to
its real adapters (:mod:`sync_engine.adapters`) - the store over SQLAlchemy, Zuora over
``zuora_client``, the customer lock over the database - with the workflow definitions as its
fetch step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.db import create_session_factory
from zuora_client import RequestHook

from sync_engine.adapters import ClientFactory, DatabaseCustomerLock, HttpZuoraGateway, SqlSyncStore
from sync_engine.definitions_step import DefinitionSettings, DefinitionsStep
from sync_engine.outcome import SyncOutcome
from sync_engine.request import SyncRequest, utcnow
from sync_engine.settings import SyncSettings
from sync_engine.use_case import OutcomeHook, SyncCustomer

__all__ = ["ClientFactory", "OutcomeHook", "SyncRequest", "WorkflowSyncEngine", "utcnow"]


class WorkflowSyncEngine:
    def __init__(
        self,
        engine: AsyncEngine,
        secret_box: SecretBox,
        *,
        allowed_base_urls: Sequence[str] = (),
        settings: SyncSettings | None = None,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_outcome: OutcomeHook | None = None,
        on_zuora_request: RequestHook | None = None,
        definition_settings: DefinitionSettings | None = None,
    ) -> None:
        """``on_outcome`` and ``on_zuora_request`` are optional observers (metrics);
        ``on_zuora_request`` is handed to the clients this engine builds (not to the clients of
        a custom ``client_factory``). ``clock`` is the store's clock on SQLite (PostgreSQL's own
        is used otherwise) and the definitions step's."""
        settings = settings or SyncSettings()
        store = SqlSyncStore(create_session_factory(engine), secret_box, clock)
        self._zuora = HttpZuoraGateway(
            settings,
            allowed_base_urls=allowed_base_urls,
            client_factory=client_factory,
            on_request=on_zuora_request,
        )
        self._sync = SyncCustomer(
            store=store,
            zuora=self._zuora,
            lock=DatabaseCustomerLock(engine, wait_seconds=settings.lock_wait_seconds),
            settings=settings,
            steps=[DefinitionsStep(store, definition_settings or DefinitionSettings(), clock)],
            on_outcome=on_outcome,
        )

    async def sync_customer(self, request: SyncRequest) -> SyncOutcome:
        return await self._sync(request)

    async def aclose(self) -> None:
        """Close the pooled Zuora connections (the database engine is the caller's)."""
        await self._zuora.aclose()
