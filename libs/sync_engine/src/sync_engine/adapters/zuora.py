"""The Zuora gateway over ``zuora_client``: one :class:`ZuoraClient` per run over a connection
pool shared per base URL (:class:`~zuora_client.SharedHttpClients`), built with the
sync's bounds (timeouts, retries, byte cap, request deadline) and the process-wide host guards
(token rate, circuit breaker) shared by every client of this gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from zuora_client import (
    HostGuards,
    HostLimits,
    NotFoundError,
    PaginationError,
    RejectedItem,
    RequestHook,
    SharedHttpClients,
    Workflow,
    WorkflowExport,
    ZuoraClient,
    ZuoraCredentials,
)

from sync_engine.failures import IncompleteListingError
from sync_engine.hashing import content_hash
from sync_engine.ports import Listing
from sync_engine.settings import SyncSettings

__all__ = ["ClientFactory", "ClientZuoraSession", "HttpZuoraGateway"]

ClientFactory = Callable[[ZuoraCredentials], ZuoraClient]

# Connections per Zuora host for every concurrent run of a process (a run's own share is bounded
# by its concurrency settings); was 8 per run when each run had its own client.
_SHARED_CONNECTIONS = 128


class HttpZuoraGateway:
    def __init__(
        self,
        settings: SyncSettings,
        *,
        allowed_base_urls: Sequence[str] = (),
        client_factory: ClientFactory | None = None,
        on_request: RequestHook | None = None,
    ) -> None:
        """``on_request`` (metrics) is handed to the clients this gateway builds, not to those
        of a custom ``client_factory``."""
        self._settings = settings
        self._allowed_base_urls = tuple(allowed_base_urls)
        self._client_factory = client_factory or self._default_client
        self._on_request = on_request
        # One connection pool per Zuora base URL for every run of this gateway (keep-alive
        # across syncs: no client, TLS context or TCP connection set up per sync).
        self._http = SharedHttpClients(
            timeout=settings.zuora_timeout_seconds, max_connections=_SHARED_CONNECTIONS
        )
        self._host_guards = HostGuards(
            HostLimits(
                token_requests_per_minute=settings.zuora_token_requests_per_minute,
                token_burst=settings.zuora_token_burst,
                breaker_threshold=settings.zuora_breaker_threshold,
                breaker_cooldown_seconds=settings.zuora_breaker_cooldown_seconds,
            )
        )

    async def aclose(self) -> None:
        """Close the shared HTTP clients (their pooled connections)."""
        await self._http.aclose()

    def _default_client(self, creds: ZuoraCredentials) -> ZuoraClient:
        settings = self._settings
        return ZuoraClient(
            creds,
            allowed_base_urls=self._allowed_base_urls,
            timeout=settings.zuora_timeout_seconds,
            max_retries=settings.zuora_max_retries,
            backoff_base=settings.zuora_backoff_base_seconds,
            backoff_cap=settings.zuora_backoff_cap_seconds,
            on_request=self._on_request,
            max_response_bytes=settings.zuora_max_response_bytes,
            request_deadline=settings.zuora_request_deadline_seconds,
            host_guards=self._host_guards,
            shared_http=self._http,
        )

    @asynccontextmanager
    async def connect(self, credentials: ZuoraCredentials) -> AsyncIterator[ClientZuoraSession]:
        async with self._client_factory(credentials) as client:
            yield ClientZuoraSession(client, page_length=self._settings.page_length)


class ClientZuoraSession:
    def __init__(self, client: ZuoraClient, *, page_length: int) -> None:
        self._client = client
        self._page_length = page_length

    async def list_workflows(self, known: Mapping[int, str] | None = None) -> Listing:
        workflows: dict[int, Workflow] = {}
        unchanged: dict[int, dict[str, Any]] = {}
        rejected: list[RejectedItem] = []
        hashes: dict[int, str] = {}
        stored = known or {}

        def is_unchanged(workflow_id: int, item: dict[str, Any]) -> bool:
            # Hashed once here (the plan reuses it); parsed only when new or changed.
            digest = content_hash(item)
            hashes[workflow_id] = digest
            return stored.get(workflow_id) == digest

        pages = 0
        try:
            async for page in self._client.iter_pages(
                page_length=self._page_length, unchanged=is_unchanged
            ):
                pages += 1
                rejected.extend(page.rejected)
                for workflow in page.workflows:
                    workflows.setdefault(workflow.id, workflow)
                unchanged.update(page.unchanged)
        except PaginationError as exc:
            raise IncompleteListingError(f"incomplete listing: {exc}") from exc
        return Listing(
            workflows=workflows,
            pages=pages,
            rejected=rejected,
            unchanged=unchanged,
            hashes={wid: hashes[wid] for wid in (*workflows, *unchanged) if wid in hashes},
        )

    async def is_gone(self, workflow_id: int) -> bool:
        try:
            await self._client.get_workflow(workflow_id)
        except NotFoundError:
            return True
        return False

    async def export(self, workflow_id: int, version: str | None) -> WorkflowExport:
        return await self._client.get_workflow_export(workflow_id, version=version)
