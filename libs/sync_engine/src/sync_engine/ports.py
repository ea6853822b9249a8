"""The ports of the sync use case (:mod:`sync_engine.use_case`): what it needs from Zuora, from
the store and from the customer lock, as Protocols.

Two sets of adapters satisfy them: :mod:`sync_engine.adapters` (SQLAlchemy on PostgreSQL or
SQLite, ``zuora_client`` over httpx, advisory locks), wired by
:class:`sync_engine.WorkflowSyncEngine`, and the in-memory fakes of :mod:`sync_engine.fakes`
for the use case's unit tests; mypy checks both against these definitions.

The store is a unit of work: :meth:`SyncStore.transaction` opens one transaction and hands out
the two repositories that work inside it (``workflows`` and ``runs``), so the write of a run -
upserts, deletes, definitions, the run's row and the customer's status - commits as one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from workflow_store.definitions import DefinitionChange, DefinitionFingerprint, FetchedDefinition
from zuora_client import (
    RejectedItem,
    Workflow,
    WorkflowExport,
    ZuoraCredentials,
)

from sync_engine.locks import HeldLock
from sync_engine.outcome import CustomerSyncStatus, SyncOutcome
from sync_engine.request import SyncRequest

__all__ = [
    "CustomerLock",
    "CustomerState",
    "FetchStep",
    "Fetched",
    "Listing",
    "RunLedger",
    "RunningRun",
    "SyncStore",
    "SyncTransaction",
    "WorkflowRepository",
    "ZuoraGateway",
    "ZuoraSession",
]


# -- values crossing the ports -------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerState:
    """What the use case reads of a customer. ``credentials()`` decrypts the stored secret
    (raising, e.g. ``SecretDecryptionError``, if this process cannot): the use case calls it only
    once a run has started, so that failure is recorded on the run."""

    id: uuid.UUID
    active: bool
    last_successful_sync_at: datetime | None
    credentials: Callable[[], ZuoraCredentials] = field(repr=False)


@dataclass(frozen=True)
class Listing:
    """A complete listing: every page to a real last page. ``rejected``: items Zuora sent that
    could not be read (skipped, never deleted because of that).

    ``workflows`` are the parsed items; ``unchanged`` the raw items whose content hash equals
    the stored one (given to :meth:`ZuoraSession.list_workflows` as ``known``): they are not
    parsed, as nothing about them is written. ``hashes``: content hashes the listing already
    computed (every id of ``unchanged``, and any of ``workflows``)."""

    workflows: dict[int, Workflow]
    pages: int
    rejected: list[RejectedItem] = field(default_factory=list)
    unchanged: dict[int, dict[str, Any]] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many workflows the listing holds (parsed or unchanged)."""
        return len(self.workflows) + len(self.unchanged)


@dataclass(frozen=True)
class RunningRun:
    """The newest run of a customer still marked running."""

    started_at: datetime
    command_id: str | None


# -- Zuora ---------------------------------------------------------------------------------------


class ZuoraSession(Protocol):
    """One customer's Zuora tenant, for the duration of one run."""

    async def list_workflows(self, known: Mapping[int, str] | None = None) -> Listing:
        """Every page of ``GET /workflows``; raises ``IncompleteListingError`` unless the
        listing reached a real last page (then nothing may be deleted or marked synced).
        ``known``: the stored content hashes (id -> hash); an item whose hash equals its stored
        one may be handed back raw in ``Listing.unchanged`` instead of parsed."""
        ...

    async def is_gone(self, workflow_id: int) -> bool:
        """``GET /workflows/{id}``: True only on 404, False when Zuora still has it; raises
        ``ZuoraError`` when the request failed (the absence is then unconfirmed)."""
        ...

    async def export(self, workflow_id: int, version: str | None) -> WorkflowExport:
        """``GET /workflows/{id}/export``: ``version`` None = the active one, or ``"latest"``."""
        ...


class ZuoraGateway(Protocol):
    def connect(self, credentials: ZuoraCredentials) -> AbstractAsyncContextManager[ZuoraSession]:
        """A session on the tenant; closing it releases its connections."""
        ...


# -- the customer lock ---------------------------------------------------------------------------


class CustomerLock(Protocol):
    def hold(self, customer_id: uuid.UUID) -> AbstractAsyncContextManager[HeldLock]:
        """Hold the customer's lock for a whole run; raises ``CustomerBusyError`` if another
        sync holds it past the wait. The lock can be lost while held (its connection dies): the
        write checks it with :meth:`SyncTransaction.fence`, inside the write's transaction,
        because only there can the check and the commit not be separated."""
        ...


# -- the store -----------------------------------------------------------------------------------


class WorkflowRepository(Protocol):
    """One customer's stored workflows and their definitions."""

    async def stored_hashes(self, customer_id: uuid.UUID) -> dict[int, str]:
        """Zuora id -> content hash of every stored workflow of the customer."""
        ...

    async def definition_fingerprints(
        self, customer_id: uuid.UUID
    ) -> Mapping[int, DefinitionFingerprint]:
        """Zuora id -> what decided the current definition's last fetch."""
        ...

    async def upsert(
        self, customer_id: uuid.UUID, workflows: Sequence[tuple[Workflow, str]], now: datetime
    ) -> None:
        """Insert or rewrite these (workflow, content hash) rows."""
        ...

    async def delete(self, customer_id: uuid.UUID, zuora_ids: Sequence[int]) -> None:
        """Delete these rows of this customer (and their definitions); only ids whose absence
        Zuora confirmed are ever passed."""
        ...

    async def refresh_counts(self, customer_id: uuid.UUID) -> None:
        """Recount the customer's stored workflows onto its row (after this write's upserts and
        deletes, in the same transaction)."""
        ...

    async def store_definitions(
        self,
        customer_id: uuid.UUID,
        items: Sequence[FetchedDefinition],
        *,
        now: datetime,
        history_limit: int,
    ) -> list[DefinitionChange]:
        """Write fetched exports (``workflow_store.definitions.store_definitions``)."""
        ...


class RunLedger(Protocol):
    """The ``sync_runs`` rows and the customer's sync status."""

    async def customer(self, customer_id: uuid.UUID, *, hold: bool = False) -> CustomerState | None:
        """The customer, None if it no longer exists. ``hold``: keep its row from being deleted
        until the transaction ends (the write's ``FOR SHARE``)."""
        ...

    async def start_run(self, request: SyncRequest, started_at: datetime) -> uuid.UUID:
        """Close a run left ``running`` by a dead process (we hold the lock), then insert this
        run as running; returns its id."""
        ...

    async def record_skip(self, request: SyncRequest, skip_reason: str, now: datetime) -> uuid.UUID:
        """A finished ``skipped`` run; returns its id."""
        ...

    async def running_run(self, customer_id: uuid.UUID) -> RunningRun | None: ...

    async def finish_run(self, run_id: uuid.UUID, outcome: SyncOutcome, now: datetime) -> None:
        """The run's final status, counters and error, from the outcome."""
        ...

    async def record_customer(self, customer_id: uuid.UUID, status: CustomerSyncStatus) -> None:
        """Set the customer's last-sync columns (a customer deleted meanwhile is left gone)."""
        ...


class SyncTransaction(Protocol):
    """One open transaction of the store: committed when the context ends normally, rolled
    back when it raises."""

    @property
    def workflows(self) -> WorkflowRepository: ...
    @property
    def runs(self) -> RunLedger: ...

    async def now(self) -> datetime:
        """The store's clock (PostgreSQL's, one clock for every worker)."""
        ...

    async def fence(self, lock: HeldLock) -> None:
        """Raise ``CustomerLockLostError`` unless ``lock`` is still held, and keep any other
        writer of the customer out until this transaction ends."""
        ...


class SyncStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[SyncTransaction]: ...


# -- further fetch steps -------------------------------------------------------------------------


class Fetched(Protocol):
    """What a fetch step brought back, written with the run."""

    async def write(
        self, tx: SyncTransaction, customer_id: uuid.UUID, now: datetime, outcome: SyncOutcome
    ) -> None:
        """Inside the run's write transaction (after the workflow rows): store what was fetched
        and add the step's counters and changes to ``outcome``."""
        ...


class FetchStep(Protocol):
    """A further fetch of a run, between the plan and the write, outside any transaction (see
    :mod:`sync_engine.use_case`). One failing request of a step must not fail the run: the step
    counts it in what it returns. Raising fails the run (nothing is written)."""

    async def fetch(
        self,
        zuora: ZuoraSession,
        customer_id: uuid.UUID,
        listing: Listing,
        *,
        budget_seconds: float,
    ) -> Fetched:
        """``budget_seconds``: what is left of the run's Zuora deadline for this step."""
        ...
