"""The definitions step of a sync: fetch the exports the listing says changed, write them.

Between the plan and the write, outside any transaction: a workflow's export (tasks and
linkages) is fetched only when the workflow is new to the store, when the listing's
``(active_version.id, active_version.version, updatedAt)`` differs from what it said when the
stored definition was fetched, or when that definition was last checked longer ago than the
verification interval (an active version can be edited in place without the listing showing
it; zuora-workflow-export.md section 5). So a no-change re-sync asks for no export at all.

An export that fails is counted and logged; the stored definition stays as it was (never
overwritten), the listing's result is still applied, and the next sync asks again (the stored
fingerprint still differs). The write runs inside the run's write transaction.

This is the first of the use case's further fetch steps (:class:`sync_engine.ports.FetchStep`),
over its ports: Zuora through a :class:`~sync_engine.ports.ZuoraSession`, the store through a
:class:`~sync_engine.ports.SyncStore`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from observability.settings import EnvSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from workflow_store.definitions import DefinitionFingerprint, FetchedDefinition, canonical_document
from zuora_client import InvalidResponseError, Workflow, listing_fingerprint

from sync_engine.failures import describe_failure
from sync_engine.outcome import SyncOutcome
from sync_engine.ports import Listing, SyncStore, SyncTransaction, ZuoraSession

__all__ = ["DefinitionSettings", "DefinitionsStep", "FetchedDefinitions"]

logger = logging.getLogger("sync_engine.definitions")

_FAILURES_KEPT = 5


class DefinitionSettings(EnvSettings):
    """Tuning of the definitions step, from ``SYNC_DEFINITIONS_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="SYNC_DEFINITIONS_", extra="ignore")

    enabled: bool = Field(True, description="Fetch and store workflow definitions (exports).")
    concurrency: int = Field(
        4, ge=1, le=32, description="Export requests in flight at once for one customer."
    )
    verify_interval_seconds: float = Field(
        86_400.0,
        ge=0,
        description="Refetch a definition checked longer ago than this, even if the listing "
        "shows no change (catches in-place edits of an active version); 0 = every sync.",
    )
    history_limit: int = Field(
        20, ge=1, le=1000, description="Distinct definitions kept per workflow (newest)."
    )


@dataclass
class FetchedDefinitions:
    """What the fetch produced: the exports, and how many requests succeeded or failed."""

    history_limit: int
    items: list[FetchedDefinition] = field(default_factory=list)
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # the first few, for the run's note

    @property
    def fetched(self) -> int:
        return len(self.items)

    async def write(
        self, tx: SyncTransaction, customer_id: uuid.UUID, now: datetime, outcome: SyncOutcome
    ) -> None:
        """Store the fetched exports in the run's write transaction; count them on the run."""
        changes = await tx.workflows.store_definitions(
            customer_id, self.items, now=now, history_limit=self.history_limit
        )
        outcome.stats.definitions_fetched = self.fetched
        outcome.stats.definitions_changed = len(changes)
        outcome.stats.definitions_failed = self.failed
        outcome.definition_changes = changes


_Fingerprint = tuple[int | None, str | None, datetime | None]


def _fingerprint(workflow: Workflow) -> _Fingerprint:
    version = workflow.active_version
    return (
        version.id if version else None,
        version.version if version else None,
        workflow.updated_at,
    )


class DefinitionsStep:
    def __init__(
        self,
        store: SyncStore,
        settings: DefinitionSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def _due(
        self, fingerprint: _Fingerprint, stored: DefinitionFingerprint | None, now: datetime
    ) -> bool:
        if stored is None:
            return True
        listed = (stored.listed_version_id, stored.listed_version, stored.listed_updated_at)
        if fingerprint != listed:
            return True
        return stored.checked_at <= now - timedelta(seconds=self._settings.verify_interval_seconds)

    async def fetch(
        self,
        zuora: ZuoraSession,
        customer_id: uuid.UUID,
        listing: Listing,
        *,
        budget_seconds: float = float("inf"),
    ) -> FetchedDefinitions:
        """Fetch the exports that are due, ``concurrency`` at a time (one customer's share of
        Zuora's rate limit); never raises for one export's failure. Exports still missing after
        ``budget_seconds`` are counted failed (the run's listing is written all the same, and
        the next run asks for them again)."""
        result = FetchedDefinitions(history_limit=self._settings.history_limit)
        if not self._settings.enabled or not listing.total:
            return result
        async with self._store.transaction() as tx:
            stored = await tx.workflows.definition_fingerprints(customer_id)
        now = self._clock()
        due = [
            wf
            for wid, wf in listing.workflows.items()
            if self._due(_fingerprint(wf), stored.get(wid), now)
        ]
        # The items the listing left unparsed (unchanged): only their fingerprint is read, and
        # only a due one is parsed (a no-change re-sync parses none).
        for wid, item in listing.unchanged.items():
            try:
                if self._due(listing_fingerprint(item), stored.get(wid), now):
                    due.append(Workflow.from_api(item))
            except InvalidResponseError:  # no longer parses: kept as it is, asked next time
                continue
        if not due:
            return result
        queue: asyncio.Queue[Workflow] = asyncio.Queue()
        for workflow in due:
            queue.put_nowait(workflow)

        async def worker() -> None:
            while True:
                try:
                    workflow = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._fetch_one(zuora, customer_id, workflow, result)

        workers = min(self._settings.concurrency, len(due))
        try:
            limit = None if budget_seconds == float("inf") else max(0.0, budget_seconds)
            async with asyncio.timeout(limit):
                await asyncio.gather(*(worker() for _ in range(workers)))
        except TimeoutError:
            done = result.fetched + result.failed
            missed = len(due) - done
            result.failed += missed
            result.failures.append(
                f"{missed} export(s) not fetched within the sync deadline; asked again next run"
            )
            logger.warning(
                "Workflow definitions not all fetched within the sync deadline",
                extra={"customer_id": str(customer_id), "not_fetched": missed},
            )
        return result

    async def _fetch_one(
        self,
        zuora: ZuoraSession,
        customer_id: uuid.UUID,
        workflow: Workflow,
        result: FetchedDefinitions,
    ) -> None:
        version_id, version, updated_at = _fingerprint(workflow)
        # No active version (a definition's first version is inactive): its newest one.
        wanted = None if version_id is not None else "latest"
        try:
            export = await zuora.export(workflow.id, wanted)
            canonical, content_hash = canonical_document(export.raw)
        except Exception as exc:  # one export's failure never fails the customer
            message = f"workflow {workflow.id}: {describe_failure(exc)}"
            result.failed += 1
            if len(result.failures) < _FAILURES_KEPT:
                result.failures.append(message)
            logger.warning(
                "Workflow definition not fetched; the stored one is kept",
                extra={"customer_id": str(customer_id), "zuora_id": workflow.id, "error": message},
            )
            return
        result.items.append(
            FetchedDefinition(
                zuora_id=workflow.id,
                canonical=canonical,
                content_hash=content_hash,
                listed_version_id=version_id,
                listed_version=version,
                listed_updated_at=updated_at,
            )
        )
