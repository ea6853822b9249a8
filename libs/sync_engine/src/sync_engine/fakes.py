"""In-memory fakes of the sync use case's ports (:mod:`sync_engine.ports`), for unit tests: no
database, no network. They live under ``src`` so that mypy checks them against the Protocols
(:meth:`Fakes.use_case` hands each to :class:`~sync_engine.use_case.SyncCustomer`).

What they keep of the real adapters' behaviour, because the use case relies on it:
- a store transaction is all or nothing (it works on a copy, swapped in only on commit);
- the fence refuses a lock that was lost (:meth:`FakeLock.lose`) or is held by someone else;
- the Zuora tenant answers a listing, ``GET /workflows/{id}`` (gone = not in the tenant) and
  exports, with faults to switch on per call kind.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sync_messages.vocabulary import CredentialStatus
from workflow_store.definitions import DefinitionChange, DefinitionFingerprint, FetchedDefinition
from zuora_client import RejectedItem, Workflow, WorkflowExport, ZuoraCredentials

from sync_engine.definitions_step import DefinitionSettings, DefinitionsStep
from sync_engine.failures import CustomerBusyError, CustomerLockLostError, FailureKind
from sync_engine.hashing import content_hash
from sync_engine.locks import HeldLock
from sync_engine.outcome import CustomerSyncStatus, RunStatus, SyncOutcome, SyncStats
from sync_engine.ports import CustomerState, Listing, RunningRun
from sync_engine.request import SyncRequest
from sync_engine.settings import SyncSettings
from sync_engine.use_case import SyncCustomer

__all__ = [
    "FakeClock",
    "FakeCustomer",
    "FakeLock",
    "FakeRun",
    "FakeStore",
    "FakeZuora",
    "Fakes",
    "StoredItem",
]

_PAGE = 50


class FakeClock:
    """The store's (and the definitions step's) clock: moves only when told."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


# -- the store -----------------------------------------------------------------------------------


@dataclass
class FakeCustomer:
    id: uuid.UUID
    credentials: ZuoraCredentials | Exception  # an exception: the secret cannot be decrypted
    active: bool = True
    last_successful_sync_at: datetime | None = None
    last_sync_at: datetime | None = None
    last_sync_status: str | None = None
    last_sync_error: str | None = None
    credential_status: str = CredentialStatus.UNKNOWN
    workflow_count: int = 0
    active_workflow_count: int = 0


@dataclass
class FakeRun:
    id: uuid.UUID
    customer_id: uuid.UUID
    command_id: str | None
    reason: str
    attempt: int
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    skip_reason: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    blocked_deletes: int | None = None
    zuora_request_id: str | None = None
    stats: SyncStats = field(default_factory=SyncStats)


@dataclass
class StoredItem:
    content_hash: str
    name: str
    status: str | None
    changed_at: datetime


@dataclass
class _Definition:
    fingerprint: DefinitionFingerprint
    history: list[str]


@dataclass
class _State:
    customers: dict[uuid.UUID, FakeCustomer] = field(default_factory=dict)
    workflows: dict[uuid.UUID, dict[int, StoredItem]] = field(default_factory=dict)
    definitions: dict[uuid.UUID, dict[int, _Definition]] = field(default_factory=dict)
    runs: dict[uuid.UUID, FakeRun] = field(default_factory=dict)


class FakeStore:
    def __init__(self, clock: FakeClock, lock: FakeLock) -> None:
        self._clock = clock
        self._lock = lock
        self.state = _State()
        self.commits = 0
        self.fail_upsert: Exception | None = None  # raised by the next upsert

    def add_customer(self, credentials: ZuoraCredentials | Exception, **fields: Any) -> uuid.UUID:
        customer = FakeCustomer(id=uuid.uuid4(), credentials=credentials, **fields)
        self.state.customers[customer.id] = customer
        return customer.id

    # what a test reads back
    def customer(self, customer_id: uuid.UUID) -> FakeCustomer:
        return self.state.customers[customer_id]

    def stored(self, customer_id: uuid.UUID) -> dict[int, StoredItem]:
        return dict(self.state.workflows.get(customer_id, {}))

    def definition_hashes(self, customer_id: uuid.UUID) -> dict[int, str]:
        defs = self.state.definitions.get(customer_id, {})
        return {zid: d.fingerprint.content_hash for zid, d in defs.items()}

    def runs(self, customer_id: uuid.UUID) -> list[FakeRun]:
        return [run for run in self.state.runs.values() if run.customer_id == customer_id]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTransaction]:
        work = copy.deepcopy(self.state)
        yield FakeTransaction(work, self._clock, self._lock, self)
        self.state = work  # committed only if the body did not raise
        self.commits += 1


class FakeTransaction:
    def __init__(self, state: _State, clock: FakeClock, lock: FakeLock, store: FakeStore) -> None:
        self._clock = clock
        self._lock = lock
        self.workflows = FakeWorkflows(state, store)
        self.runs = FakeRuns(state)

    async def now(self) -> datetime:
        return self._clock()

    async def fence(self, lock: HeldLock) -> None:
        if not self._lock.still_held(lock):
            raise CustomerLockLostError(f"lost the lock of customer {lock.customer_id}")


class FakeWorkflows:
    def __init__(self, state: _State, store: FakeStore) -> None:
        self._state = state
        self._store = store

    async def stored_hashes(self, customer_id: uuid.UUID) -> dict[int, str]:
        rows = self._state.workflows.get(customer_id, {})
        return {zid: item.content_hash for zid, item in rows.items()}

    async def definition_fingerprints(
        self, customer_id: uuid.UUID
    ) -> Mapping[int, DefinitionFingerprint]:
        defs = self._state.definitions.get(customer_id, {})
        return {zid: d.fingerprint for zid, d in defs.items()}

    async def upsert(
        self, customer_id: uuid.UUID, workflows: Sequence[tuple[Workflow, str]], now: datetime
    ) -> None:
        if self._store.fail_upsert is not None:
            error, self._store.fail_upsert = self._store.fail_upsert, None
            raise error
        rows = self._state.workflows.setdefault(customer_id, {})
        for workflow, digest in workflows:
            rows[workflow.id] = StoredItem(digest, workflow.name, workflow.status, now)

    async def delete(self, customer_id: uuid.UUID, zuora_ids: Sequence[int]) -> None:
        rows = self._state.workflows.get(customer_id, {})
        defs = self._state.definitions.get(customer_id, {})
        for zid in zuora_ids:
            rows.pop(zid, None)
            defs.pop(zid, None)  # ON DELETE CASCADE

    async def refresh_counts(self, customer_id: uuid.UUID) -> None:
        customer = self._state.customers.get(customer_id)
        if customer is not None:  # "active" as workflow_store.workflow_counts counts it
            rows = self._state.workflows.get(customer_id, {}).values()
            customer.workflow_count = len(rows)
            customer.active_workflow_count = sum(
                1 for row in rows if (row.status or "").lower() == "active"
            )

    async def store_definitions(
        self,
        customer_id: uuid.UUID,
        items: Sequence[FetchedDefinition],
        *,
        now: datetime,
        history_limit: int,
    ) -> list[DefinitionChange]:
        rows = self._state.workflows.get(customer_id, {})
        defs = self._state.definitions.setdefault(customer_id, {})
        changes = []
        for item in items:
            if item.zuora_id not in rows:  # gone from the listing: ignored, as in the store
                continue
            old = defs.get(item.zuora_id)
            fingerprint = DefinitionFingerprint(
                listed_version_id=item.listed_version_id,
                listed_version=item.listed_version,
                listed_updated_at=item.listed_updated_at,
                checked_at=now,
                content_hash=item.content_hash,
            )
            history = [] if old is None else old.history
            if old is None or old.fingerprint.content_hash != item.content_hash:
                changes.append(
                    DefinitionChange(
                        zuora_id=item.zuora_id,
                        old_hash=None if old is None else old.fingerprint.content_hash,
                        new_hash=item.content_hash,
                        tasks_added=0,
                        tasks_removed=0,
                        tasks_changed=0,
                    )
                )
                history = [*history, item.content_hash][-history_limit:]
            defs[item.zuora_id] = _Definition(fingerprint, history)
        return changes


class FakeRuns:
    def __init__(self, state: _State) -> None:
        self._state = state

    async def customer(self, customer_id: uuid.UUID, *, hold: bool = False) -> CustomerState | None:
        row = self._state.customers.get(customer_id)
        if row is None:
            return None
        secret = row.credentials

        def credentials() -> ZuoraCredentials:
            if isinstance(secret, Exception):
                raise secret
            return secret

        return CustomerState(
            id=row.id,
            active=row.active,
            last_successful_sync_at=row.last_successful_sync_at,
            credentials=credentials,
        )

    def _new_run(self, request: SyncRequest, status: RunStatus, started_at: datetime) -> FakeRun:
        run = FakeRun(
            id=uuid.uuid4(),
            customer_id=request.customer_id,
            command_id=request.command_id,
            reason=request.reason,
            attempt=request.attempt,
            status=status.value,
            started_at=started_at,
        )
        self._state.runs[run.id] = run
        return run

    async def start_run(self, request: SyncRequest, started_at: datetime) -> uuid.UUID:
        for run in self._state.runs.values():
            if run.customer_id == request.customer_id and run.status == RunStatus.RUNNING.value:
                run.status, run.error_kind = RunStatus.FAILED.value, FailureKind.TRANSIENT.value
                run.error_message, run.finished_at = "abandoned", started_at
        return self._new_run(request, RunStatus.RUNNING, started_at).id

    async def record_skip(self, request: SyncRequest, skip_reason: str, now: datetime) -> uuid.UUID:
        run = self._new_run(request, RunStatus.SKIPPED, now)
        run.skip_reason, run.finished_at = skip_reason, now
        return run.id

    async def running_run(self, customer_id: uuid.UUID) -> RunningRun | None:
        running = [
            run
            for run in self._state.runs.values()
            if run.customer_id == customer_id and run.status == RunStatus.RUNNING.value
        ]
        newest = max(running, key=lambda run: run.started_at, default=None)
        return None if newest is None else RunningRun(newest.started_at, newest.command_id)

    async def finish_run(self, run_id: uuid.UUID, outcome: SyncOutcome, now: datetime) -> None:
        run = self._state.runs[run_id]
        run.status = outcome.status.value
        run.stats = copy.copy(outcome.stats)
        run.blocked_deletes = outcome.blocked_deletes
        run.error_kind = outcome.error_kind.value if outcome.error_kind else None
        run.error_message = outcome.error_message
        run.skip_reason = outcome.skip_reason
        run.zuora_request_id = outcome.zuora_request_id
        run.finished_at = now

    async def record_customer(self, customer_id: uuid.UUID, status: CustomerSyncStatus) -> None:
        customer = self._state.customers.get(customer_id)
        if customer is not None:
            for column, value in status.columns().items():
                setattr(customer, column, value)


# -- the lock ------------------------------------------------------------------------------------


class FakeLock:
    def __init__(self) -> None:
        self._holders = itertools.count(1)
        self.held: dict[uuid.UUID, int] = {}
        self.busy: set[uuid.UUID] = set()  # customers another sync holds (CustomerBusyError)
        self._lost: set[int] = set()
        self.on_hold: Callable[[uuid.UUID], None] | None = None  # runs once the lock is taken

    @asynccontextmanager
    async def hold(self, customer_id: uuid.UUID) -> AsyncIterator[HeldLock]:
        if customer_id in self.busy or customer_id in self.held:
            raise CustomerBusyError(f"customer {customer_id} is being synced by another worker")
        holder = next(self._holders)
        self.held[customer_id] = holder
        try:
            if self.on_hold is not None:
                self.on_hold(customer_id)
            yield HeldLock(customer_id, holder_pid=holder)
        finally:
            if self.held.get(customer_id) == holder:  # not lost and taken by another meanwhile
                del self.held[customer_id]

    def lose(self, customer_id: uuid.UUID) -> None:
        """The lock's connection died: the lock is gone although the run still runs."""
        self._lost.add(self.held[customer_id])
        del self.held[customer_id]

    def still_held(self, lock: HeldLock) -> bool:
        holder = lock.holder_pid
        return holder not in self._lost and self.held.get(lock.customer_id) == holder


# -- Zuora ---------------------------------------------------------------------------------------


def workflow_item(workflow_id: int, name: str, *, version: str = "0.0.1") -> dict[str, Any]:
    """A listing item as Zuora sends it (camelCase)."""
    return {
        "id": workflow_id,
        "name": name,
        "status": "Active",
        "active_version": {"id": workflow_id * 10, "version": version, "status": "Active"},
        "updatedAt": "2026-12-01T00:00:00Z",
    }


def export_document(item: Mapping[str, Any]) -> dict[str, Any]:
    """The export of a listed item: one task named after the workflow (a rename changes it)."""
    version = item.get("active_version") or {}
    return {
        "workflow": {"id": version.get("id") or item["id"], "name": item["name"]},
        "tasks": [{"id": 1, "name": f"task of {item['name']}"}],
        "linkages": [{"target_task_id": 1}],
    }


class FakeZuora:
    """One tenant; every customer connects to it."""

    def __init__(self) -> None:
        self.items: dict[int, dict[str, Any]] = {}
        self.hidden: set[int] = set()  # left out of the listing, though GET still finds them
        self.rejected: list[RejectedItem] = []
        self.listing_error: Exception | None = None
        self.get_errors: dict[int, Exception] = {}
        self.export_errors: dict[int, Exception] = {}
        self.before_list: Callable[[], Awaitable[object]] | None = None
        self.export_delay: Callable[[int], Awaitable[object]] | None = None
        self.calls: list[tuple[str, int | None]] = []
        self.connected: list[ZuoraCredentials] = []
        self.parsed = 0  # listed items parsed (an unchanged one is not)

    def put(self, workflow_id: int, name: str | None = None, **changes: Any) -> None:
        item = workflow_item(workflow_id, name or f"workflow {workflow_id}")
        item.update(changes)
        self.items[workflow_id] = item

    @asynccontextmanager
    async def connect(self, credentials: ZuoraCredentials) -> AsyncIterator[FakeZuoraSession]:
        self.connected.append(credentials)
        yield FakeZuoraSession(self)


class FakeZuoraSession:
    def __init__(self, tenant: FakeZuora) -> None:
        self._tenant = tenant

    async def list_workflows(self, known: Mapping[int, str] | None = None) -> Listing:
        """As the real session: an item whose hash equals ``known``'s comes back raw."""
        tenant = self._tenant
        tenant.calls.append(("list", None))
        if tenant.before_list is not None:
            await tenant.before_list()
        if tenant.listing_error is not None:
            raise tenant.listing_error
        stored = known or {}
        listed: dict[int, Workflow] = {}
        unchanged: dict[int, dict[str, Any]] = {}
        hashes: dict[int, str] = {}
        for wid, item in tenant.items.items():
            if wid in tenant.hidden:
                continue
            hashes[wid] = digest = content_hash(item)
            if stored.get(wid) == digest:
                unchanged[wid] = item
            else:
                listed[wid] = Workflow.from_api(item)
        tenant.parsed += len(listed)
        pages = max(1, -(-(len(listed) + len(unchanged)) // _PAGE))
        return Listing(
            workflows=listed,
            pages=pages,
            rejected=list(tenant.rejected),
            unchanged=unchanged,
            hashes=hashes,
        )

    async def is_gone(self, workflow_id: int) -> bool:
        self._tenant.calls.append(("get", workflow_id))
        error = self._tenant.get_errors.get(workflow_id)
        if error is not None:
            raise error
        return workflow_id not in self._tenant.items

    async def export(self, workflow_id: int, version: str | None) -> WorkflowExport:
        self._tenant.calls.append(("export", workflow_id))
        if self._tenant.export_delay is not None:
            await self._tenant.export_delay(workflow_id)
        error = self._tenant.export_errors.get(workflow_id)
        if error is not None:
            raise error
        return WorkflowExport.from_api(export_document(self._tenant.items[workflow_id]))


# -- all of them, wired --------------------------------------------------------------------------


@dataclass
class Fakes:
    clock: FakeClock = field(default_factory=FakeClock)
    lock: FakeLock = field(default_factory=FakeLock)
    zuora: FakeZuora = field(default_factory=FakeZuora)
    store: FakeStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = FakeStore(self.clock, self.lock)

    def add_customer(self, **fields: Any) -> uuid.UUID:
        creds = ZuoraCredentials(
            base_url="https://zuora.invalid", client_id="client", client_secret="secret"
        )
        return self.store.add_customer(fields.pop("credentials", creds), **fields)

    def use_case(
        self,
        settings: SyncSettings | None = None,
        definitions: DefinitionSettings | None = None,
    ) -> SyncCustomer:
        """The use case over these fakes, wired as :class:`~sync_engine.WorkflowSyncEngine`
        wires the real adapters."""
        return SyncCustomer(
            store=self.store,
            zuora=self.zuora,
            lock=self.lock,
            settings=settings or SyncSettings(),
            steps=[DefinitionsStep(self.store, definitions or DefinitionSettings(), self.clock)],
        )
