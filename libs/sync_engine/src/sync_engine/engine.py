"""The sync of one customer: list its Zuora workflows, reconcile them into the store, record it.

The steps of a run: list (every page, to a real last page) -> plan (outside any transaction) ->
fetch what the plan needs (today: confirm each absence with ``GET /workflows/{id}``) -> write
(one fenced transaction).

Safety rules (ARCHITECTURE.md section 5):
- a request already covered by a successful sync that started after it is skipped (coalescing),
  unless ``force``; both instants come from PostgreSQL's clock;
- one sync per customer at a time (advisory lock held for the whole run), and the write commits
  only while that lock is still held (fence);
- nothing is written unless the listing was complete; deletions go through the deletion guard
  or the operator's explicit bound ``allow_deletes`` (honoured only for a short while after the
  command was requested), and each absence is confirmed by Zuora (404) before its row goes;
- an item Zuora sends that we cannot read is skipped (counted in ``errors``), never deleted;
- inserts/updates/deletes and the run's result commit in ONE transaction;
- every attempt leaves a `sync_runs` row, and failures are classified transient / permanent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from workflow_store.crypto import SecretBox
from workflow_store.customers import decrypt_client_secret
from workflow_store.db import create_session_factory
from workflow_store.models import Customer, StoredWorkflow, SyncRun
from zuora_client import (
    AuthenticationError,
    DeadlineExceededError,
    HostGuards,
    HostLimits,
    NotFoundError,
    PaginationError,
    RejectedItem,
    RequestHook,
    Workflow,
    ZuoraClient,
    ZuoraCredentials,
    ZuoraError,
)

from sync_engine.definitions_step import DefinitionSettings, DefinitionsStep, FetchedDefinitions
from sync_engine.failures import (
    CustomerBusyError,
    FailureKind,
    IncompleteListingError,
    classify_failure,
    describe_failure,
)
from sync_engine.hashing import content_hash
from sync_engine.locks import HeldLock, customer_lock, fence_write
from sync_engine.outcome import ChangedIds, RunStatus, SyncOutcome, SyncStats
from sync_engine.reconcile import DeletionGuard, ReconcilePlan, plan_reconciliation
from sync_engine.rows import UPDATABLE_COLUMNS, stored_request_id, workflow_row
from sync_engine.settings import SyncSettings

logger = logging.getLogger("sync_engine")

_DELETE_CHUNK = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncRequest:
    """One request to sync one customer (from a Kafka command, the CLI or a test)."""

    customer_id: uuid.UUID
    reason: str = "manual"
    requested_at: datetime = field(default_factory=utcnow)
    force: bool = False
    """Sync even if a recent successful sync covers the request (skip coalescing). It never
    lifts the deletion guard."""
    command_id: str | None = None
    attempt: int = 1
    replay_of: uuid.UUID | None = None
    allow_deletes: int | None = None
    """The operator's bound for a guarded run: delete at most this many rows (more pending keeps
    the run blocked). Honoured only within ``SyncSettings.allow_deletes_valid_seconds`` of
    ``requested_at``."""


@dataclass(frozen=True)
class _Listing:
    workflows: dict[int, Workflow]
    pages: int
    rejected: list[RejectedItem] = field(default_factory=list)


@dataclass(frozen=True)
class _RunStart:
    run_id: uuid.UUID
    started_at: datetime  # PostgreSQL's clock, stamped before the customer was read
    allow_deletes: int | None  # the request's bound, if still valid
    note: str | None = None  # why the request's bound was not honoured


@dataclass(frozen=True)
class _Plan:
    reconcile: ReconcilePlan
    stored_count: int
    confirmed_deletes: list[int] = field(default_factory=list)
    unconfirmed: int = 0  # absences Zuora did not confirm (the item is there, or the GET failed)
    confirm_failures: int = 0  # of which the GET failed (counted in the run's errors)
    warnings: list[str] = field(default_factory=list)


ClientFactory = Callable[[ZuoraCredentials], ZuoraClient]


def _remaining(scope: asyncio.Timeout) -> float:
    when = scope.when()
    return float("inf") if when is None else when - asyncio.get_running_loop().time()


def _customer_gone(request: SyncRequest) -> SyncOutcome:
    """A command for a deleted customer: nothing to sync and no run to record (no customer row)."""
    return SyncOutcome(
        customer_id=request.customer_id,
        status=RunStatus.SKIPPED,
        run_id=None,
        skip_reason="customer no longer exists",
    )


OutcomeHook = Callable[[SyncRequest, SyncOutcome, float], None]
"""Called after every :meth:`WorkflowSyncEngine.sync_customer` with the request, its outcome and
the wall time in seconds (the metrics hook); must be quick and not raise."""


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
        a custom ``client_factory``)."""
        self._engine = engine
        self._sessions = create_session_factory(engine)
        self._box = secret_box
        self._allowed_base_urls = tuple(allowed_base_urls)
        self._settings = settings or SyncSettings()
        self._client_factory = client_factory or self._default_client
        self._clock = clock
        self._on_outcome = on_outcome
        self._on_zuora_request = on_zuora_request
        self._guard = DeletionGuard(
            max_share=self._settings.delete_guard_share, floor=self._settings.delete_guard_floor
        )
        self._host_guards = HostGuards(
            HostLimits(
                token_requests_per_minute=self._settings.zuora_token_requests_per_minute,
                token_burst=self._settings.zuora_token_burst,
                breaker_threshold=self._settings.zuora_breaker_threshold,
                breaker_cooldown_seconds=self._settings.zuora_breaker_cooldown_seconds,
            )
        )
        self._definitions = DefinitionsStep(
            self._sessions, definition_settings or DefinitionSettings(), clock
        )

    def _default_client(self, creds: ZuoraCredentials) -> ZuoraClient:
        return ZuoraClient(
            creds,
            allowed_base_urls=self._allowed_base_urls,
            timeout=self._settings.zuora_timeout_seconds,
            max_retries=self._settings.zuora_max_retries,
            backoff_base=self._settings.zuora_backoff_base_seconds,
            backoff_cap=self._settings.zuora_backoff_cap_seconds,
            on_request=self._on_zuora_request,
            max_response_bytes=self._settings.zuora_max_response_bytes,
            request_deadline=self._settings.zuora_request_deadline_seconds,
            host_guards=self._host_guards,
        )

    async def sync_customer(self, request: SyncRequest) -> SyncOutcome:
        started = time.monotonic()
        outcome = await self._sync(request)
        elapsed = time.monotonic() - started
        outcome.duration_ms = int(elapsed * 1000)
        self._log(request, outcome)
        if self._on_outcome is not None:
            try:
                self._on_outcome(request, outcome, elapsed)
            except Exception:  # an observer must never turn a sync into a failure
                logger.warning("on_outcome hook failed", exc_info=True)
        return outcome

    async def _sync(self, request: SyncRequest) -> SyncOutcome:
        async with self._sessions() as session:
            customer = await session.get(Customer, request.customer_id)
            if customer is None:
                return _customer_gone(request)
            early_skip = self._skip_reason(customer, request)
        if early_skip:
            return await self._record_skip(request, early_skip)

        try:
            async with customer_lock(
                self._engine, request.customer_id, wait_seconds=self._settings.lock_wait_seconds
            ) as lock:
                return await self._sync_locked(request, lock)
        except CustomerBusyError as exc:
            return await self._busy(request, exc)

    async def _sync_locked(self, request: SyncRequest, lock: HeldLock) -> SyncOutcome:
        async with self._sessions() as session:
            # The run's start instant is taken (from the database clock) BEFORE the customer is
            # read: a change committed after it is not seen by this run, so the run must not
            # cover a request made for that change.
            started_at = await self._db_now(session)
            # Re-read under the lock: a sync we waited for may already cover this request.
            customer = await session.get(Customer, request.customer_id)
            if customer is None:
                return _customer_gone(request)
            reason = self._skip_reason(customer, request)
            if reason:
                return await self._record_skip(request, reason, coalesced=True)
            start = await self._start_run_in(session, request, started_at)
            await session.commit()
            try:
                creds = ZuoraCredentials(
                    base_url=customer.base_url,
                    client_id=customer.client_id,
                    client_secret=decrypt_client_secret(self._box, customer),
                    entity_id=customer.entity_id,
                )
            except Exception as exc:
                return await self._record_failure(request, start.run_id, exc, SyncStats())

        stats = SyncStats()
        try:
            listing, plan, definitions = await self._fetch(request, creds, start, stats)
            return await self._write(request, start, lock, listing, plan, stats, definitions)
        except Exception as exc:
            return await self._record_failure(request, start.run_id, exc, stats)

    async def _fetch(
        self, request: SyncRequest, creds: ZuoraCredentials, start: _RunStart, stats: SyncStats
    ) -> tuple[_Listing, _Plan, FetchedDefinitions]:
        """Every Zuora call of the run: the listing, the plan, then what the plan needs."""
        deadline = self._settings.deadline_seconds
        # The deadline keeps a sync inside the consumer's poll interval (audit A2/A6), whatever
        # Zuora does; it covers only the Zuora calls, so a write is never cut mid-transaction.
        try:
            async with asyncio.timeout(deadline) as scope, self._client_factory(creds) as client:
                listing = await self._list_workflows(client)
                stats.pages = listing.pages
                plan = await self._plan(request.customer_id, listing, start)
                plan = await self._confirm_absences(client, plan)
                # Definitions get what is left of the deadline, minus a margin: exports not
                # fetched in time are counted failed and asked for again next run, while the
                # listing's result is still written.
                definitions = await self._definitions.fetch(
                    client,
                    request.customer_id,
                    listing.workflows,
                    budget_seconds=_remaining(scope) * 0.9 - 1.0,
                )
        except TimeoutError:
            if not scope.expired():
                raise
            raise DeadlineExceededError(
                f"deadline_exceeded: the Zuora calls did not finish within the sync deadline "
                f"of {deadline:g}s (SYNC_DEADLINE_SECONDS); nothing was stored"
            ) from None
        return listing, plan, definitions

    def _skip_reason(self, customer: Customer, request: SyncRequest) -> str | None:
        if request.force:
            return None
        if not customer.active:
            return "customer is inactive"
        if request.reason == "credentials_changed":
            # A sync that read the old credentials may have started after the change was
            # requested (the event is stamped before the change commits): never coalesce it.
            return None
        last_ok = customer.last_successful_sync_at
        if last_ok is not None and last_ok > request.requested_at:
            return f"covered by a successful sync that started at {last_ok.isoformat()}"
        return None

    async def _list_workflows(self, client: ZuoraClient) -> _Listing:
        workflows: dict[int, Workflow] = {}
        rejected: list[RejectedItem] = []
        pages = 0
        try:
            async for page in client.iter_pages(page_length=self._settings.page_length):
                pages += 1
                rejected.extend(page.rejected)
                for workflow in page.workflows:
                    workflows.setdefault(workflow.id, workflow)
        except PaginationError as exc:
            raise IncompleteListingError(f"incomplete listing: {exc}") from exc
        return _Listing(workflows=workflows, pages=pages, rejected=rejected)

    async def _plan(self, customer_id: uuid.UUID, listing: _Listing, start: _RunStart) -> _Plan:
        """Outside any transaction: what the write would do, before asking Zuora anything more.
        (We hold the customer's lock, so no other run changes these rows meanwhile.)"""
        listed = {wid: content_hash(wf.raw) for wid, wf in listing.workflows.items()}
        async with self._sessions() as session:
            stored = await self._stored_hashes(session, customer_id)
        warnings = [f"skipped a workflow item: {item.reason}" for item in listing.rejected]
        unreadable = [item for item in listing.rejected if item.workflow_id is None]
        if unreadable:
            warnings.append("no workflow deleted: an item without a readable id was skipped")
        if start.note:
            warnings.append(start.note)
        plan = plan_reconciliation(
            stored,
            listed,
            guard=self._guard,
            allow_deletes=start.allow_deletes,
            keep={item.workflow_id for item in listing.rejected if item.workflow_id is not None},
            deletes_possible=not unreadable,
        )
        return _Plan(reconcile=plan, stored_count=len(stored), warnings=warnings)

    async def _confirm_absences(self, client: ZuoraClient, plan: _Plan) -> _Plan:
        """A workflow missing from one listing is deleted only when ``GET /workflows/{id}``
        answers 404: offset paging can skip an item that moved between two page reads."""
        candidates = plan.reconcile.to_delete
        if not candidates:
            return plan
        limit = asyncio.Semaphore(self._settings.confirm_concurrency)

        async def gone(workflow_id: int) -> bool | None:
            async with limit:
                try:
                    await client.get_workflow(workflow_id)
                except NotFoundError:
                    return True
                except ZuoraError as exc:
                    logger.warning(
                        "Could not confirm a workflow's absence; it is kept",
                        extra={"zuora_id": workflow_id, "error": describe_failure(exc)},
                    )
                    return None
                return False

        answers = await asyncio.gather(*(gone(wid) for wid in candidates))
        confirmed = [wid for wid, answer in zip(candidates, answers, strict=True) if answer]
        failed = sum(1 for answer in answers if answer is None)
        warnings = list(plan.warnings)
        if failed:
            warnings.append(f"kept {failed} workflow(s) whose absence Zuora did not confirm")
        return _Plan(
            reconcile=plan.reconcile,
            stored_count=plan.stored_count,
            confirmed_deletes=confirmed,
            unconfirmed=len(candidates) - len(confirmed),
            confirm_failures=failed,
            warnings=warnings,
        )

    async def _write(
        self,
        request: SyncRequest,
        start: _RunStart,
        lock: HeldLock,
        listing: _Listing,
        plan: _Plan,
        stats: SyncStats,
        definitions: FetchedDefinitions,
    ) -> SyncOutcome:
        customer_id = request.customer_id
        reconcile = plan.reconcile
        async with self._sessions() as session, session.begin():
            await fence_write(session, lock)
            # Hold the customer row (FOR SHARE) so it cannot be deleted under the write; if it
            # is already gone, its rows and runs went with it (ON DELETE CASCADE).
            customer = await session.scalar(
                select(Customer).where(Customer.id == customer_id).with_for_update(read=True)
            )
            if customer is None:
                return _customer_gone(request)
            now = await self._db_now(session)
            rows = [
                workflow_row(
                    customer_id,
                    listing.workflows[wid],
                    content_hash(listing.workflows[wid].raw),
                    now,
                )
                for wid in (*reconcile.to_insert, *reconcile.to_update)
            ]
            if rows:
                await session.execute(self._upsert_statement(session), rows)
            deletes = plan.confirmed_deletes
            for first in range(0, len(deletes), _DELETE_CHUNK):
                chunk = deletes[first : first + _DELETE_CHUNK]
                await session.execute(
                    delete(StoredWorkflow).where(
                        StoredWorkflow.customer_id == customer_id,
                        StoredWorkflow.zuora_id.in_(chunk),
                    )
                )
            stats.created = len(reconcile.to_insert)
            stats.updated = len(reconcile.to_update)
            stats.deleted = len(deletes)
            stats.unchanged = reconcile.unchanged
            stats.total = len(listing.workflows)
            stats.errors = len(listing.rejected) + plan.confirm_failures
            definition_changes = await self._definitions.write(
                session, customer_id, definitions, now
            )
            stats.definitions_fetched = definitions.fetched
            stats.definitions_changed = len(definition_changes)
            stats.definitions_failed = definitions.failed
            outcome = self._outcome_of(request, start.run_id, plan, stats)
            outcome.definition_changes = definition_changes
            await self._finish_run(session, start.run_id, outcome, now)
            customer.last_sync_at = now
            customer.last_sync_status = outcome.status.value
            customer.credential_status = "valid"
            if outcome.status is RunStatus.SUCCEEDED:
                customer.last_successful_sync_at = start.started_at
                customer.last_sync_error = None
            else:
                customer.last_sync_error = outcome.error_message
        for warning in plan.warnings:
            logger.warning(
                "Workflow sync warning",
                extra={
                    "customer_id": str(customer_id),
                    "run_id": str(start.run_id),
                    "warning": warning,
                },
            )
        return outcome

    def _outcome_of(
        self, request: SyncRequest, run_id: uuid.UUID, plan: _Plan, stats: SyncStats
    ) -> SyncOutcome:
        reconcile = plan.reconcile
        changes = ChangedIds(
            created=list(reconcile.to_insert),
            updated=list(reconcile.to_update),
            deleted=list(plan.confirmed_deletes),
        )
        warning = "; ".join(plan.warnings) if plan.warnings else None
        if reconcile.deletes_blocked:
            pending = reconcile.pending_deletes
            bound = (
                f"more than allow_deletes={request.allow_deletes}"
                if request.allow_deletes is not None and warning is None
                else "over the deletion guard"
            )
            message = (
                f"deletion guard: the listing would delete {pending} of {plan.stored_count} "
                f"stored workflows ({bound}); nothing was deleted - replay this run with "
                f"allow_deletes={pending} to apply"
            )
            return SyncOutcome(
                customer_id=request.customer_id,
                status=RunStatus.DELETES_BLOCKED,
                run_id=run_id,
                stats=stats,
                changes=changes,
                blocked_deletes=pending,
                error_message=f"{message}; {warning}" if warning else message,
            )
        return SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.SUCCEEDED,
            run_id=run_id,
            stats=stats,
            changes=changes,
            error_message=warning,
        )

    @staticmethod
    async def _stored_hashes(session: AsyncSession, customer_id: uuid.UUID) -> dict[int, str]:
        result = await session.execute(
            select(StoredWorkflow.zuora_id, StoredWorkflow.content_hash).where(
                StoredWorkflow.customer_id == customer_id
            )
        )
        return {int(zid): h for zid, h in result.all()}

    @staticmethod
    def _upsert_statement(session: AsyncSession) -> Any:
        dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # The Table, not the mapped class: a Core executemany ("insertmanyvalues" batches).
        # With the ORM entity, SQLAlchemy takes the ORM bulk-insert path, which cost ~6x the
        # CPU per row (profiled in docs/performance.md: 5,000 rows 3.2-3.9 s CPU -> 0.5-0.65 s).
        stmt = insert(StoredWorkflow.metadata.tables[StoredWorkflow.__tablename__])
        return stmt.on_conflict_do_update(
            index_elements=[StoredWorkflow.customer_id, StoredWorkflow.zuora_id],
            set_={name: getattr(stmt.excluded, name) for name in UPDATABLE_COLUMNS},
        )

    # -- run bookkeeping -------------------------------------------------------------------------

    async def _db_now(self, session: AsyncSession) -> datetime:
        """The database's clock (one clock for every worker); the injected clock on SQLite."""
        bind = session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            value = await session.scalar(text("SELECT clock_timestamp()"))
            if isinstance(value, datetime):
                return value.astimezone(UTC)
        return self._clock()

    def _valid_allow_deletes(
        self, request: SyncRequest, started_at: datetime
    ) -> tuple[int | None, str | None]:
        """The request's bound if it is still fresh; a redelivered or replayed old command
        must never delete days later."""
        if request.allow_deletes is None:
            return None, None
        window = timedelta(seconds=self._settings.allow_deletes_valid_seconds)
        if started_at - request.requested_at > window:
            return None, (
                f"allow_deletes={request.allow_deletes} ignored: the command was requested at "
                f"{request.requested_at.isoformat()}, more than "
                f"{self._settings.allow_deletes_valid_seconds:.0f} s ago"
            )
        return request.allow_deletes, None

    async def _start_run_in(
        self, session: AsyncSession, request: SyncRequest, now: datetime
    ) -> _RunStart:
        # We hold the customer's lock, so a run still marked running was left by a process that
        # died mid-sync (its lock went with its connection): close it for the record.
        await session.execute(
            update(SyncRun)
            .where(
                SyncRun.customer_id == request.customer_id,
                SyncRun.status == RunStatus.RUNNING.value,
            )
            .values(
                status=RunStatus.FAILED.value,
                error_kind=FailureKind.TRANSIENT.value,
                error_message="abandoned: the process running this sync stopped before it ended",
                finished_at=now,
            )
        )
        run = SyncRun(
            id=uuid.uuid4(),
            customer_id=request.customer_id,
            command_id=request.command_id,
            reason=request.reason,
            attempt=request.attempt,
            forced=request.force,
            status=RunStatus.RUNNING.value,
            started_at=now,
            replay_of=request.replay_of,
        )
        session.add(run)
        await session.flush()
        allow_deletes, note = self._valid_allow_deletes(request, now)
        return _RunStart(run.id, run.started_at, allow_deletes, note)

    async def _finish_run(
        self, session: AsyncSession, run_id: uuid.UUID, outcome: SyncOutcome, now: datetime
    ) -> None:
        run = await session.get(SyncRun, run_id)
        if run is None:  # pragma: no cover - the row was written before the listing started
            return
        run.status = outcome.status.value
        run.pages = outcome.stats.pages
        run.created = outcome.stats.created
        run.updated = outcome.stats.updated
        run.deleted = outcome.stats.deleted
        run.unchanged = outcome.stats.unchanged
        run.total = outcome.stats.total
        run.definitions_fetched = outcome.stats.definitions_fetched
        run.definitions_changed = outcome.stats.definitions_changed
        run.definitions_failed = outcome.stats.definitions_failed
        run.blocked_deletes = outcome.blocked_deletes
        run.error_kind = outcome.error_kind.value if outcome.error_kind else None
        run.error_message = outcome.error_message
        run.skip_reason = outcome.skip_reason
        run.finished_at = now
        run.duration_ms = max(0, int((now - run.started_at).total_seconds() * 1000))

    async def _record_skip(
        self, request: SyncRequest, reason: str, *, coalesced: bool = False
    ) -> SyncOutcome:
        run_id = uuid.uuid4()
        async with self._sessions() as session, session.begin():
            now = await self._db_now(session)
            session.add(
                SyncRun(
                    id=run_id,
                    customer_id=request.customer_id,
                    command_id=request.command_id,
                    reason=request.reason,
                    attempt=request.attempt,
                    forced=request.force,
                    status=RunStatus.SKIPPED.value,
                    skip_reason=("coalesced: " if coalesced else "") + reason,
                    started_at=now,
                    finished_at=now,
                    duration_ms=0,
                    replay_of=request.replay_of,
                )
            )
        return SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.SKIPPED,
            run_id=run_id,
            skip_reason=reason,
        )

    async def _busy(self, request: SyncRequest, exc: CustomerBusyError) -> SyncOutcome:
        """Another sync of this customer holds the lock. That is not an attempt: no run is started
        (so no live run is closed as abandoned) and the customer's status is left alone. A sync
        already running for this command, or started after it was requested, covers it."""
        async with self._sessions() as session:
            running = (
                await session.execute(
                    select(SyncRun.started_at, SyncRun.command_id)
                    .where(
                        SyncRun.customer_id == request.customer_id,
                        SyncRun.status == RunStatus.RUNNING.value,
                    )
                    .order_by(SyncRun.started_at.desc())
                    .limit(1)
                )
            ).first()
        if running is not None and (
            running.command_id == request.command_id or running.started_at >= request.requested_at
        ):
            since = running.started_at.isoformat()
            return await self._record_skip(
                request, f"covered by the sync running since {since}", coalesced=True
            )
        return SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.FAILED,
            run_id=None,
            error_kind=FailureKind.TRANSIENT,
            error_message=describe_failure(exc),
            busy=True,
        )

    async def _record_failure(
        self, request: SyncRequest, run_id: uuid.UUID, exc: BaseException, stats: SyncStats
    ) -> SyncOutcome:
        kind = classify_failure(exc)
        message = describe_failure(exc)
        stats.errors += 1
        outcome = SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.FAILED,
            run_id=run_id,
            stats=stats,
            error_kind=kind,
            error_message=message,
            zuora_request_id=exc.request_id if isinstance(exc, ZuoraError) else None,
            retry_after_seconds=exc.retry_after if isinstance(exc, ZuoraError) else None,
        )
        if kind is FailureKind.PERMANENT and not isinstance(exc, ZuoraError):
            logger.error("Unexpected sync error", exc_info=exc)
        try:
            async with self._sessions() as session, session.begin():
                now = await self._db_now(session)
                await self._finish_run(session, run_id, outcome, now)
                run = await session.get(SyncRun, run_id)
                if run is not None and isinstance(exc, ZuoraError):
                    run.zuora_request_id = stored_request_id(exc.request_id)
                customer = await session.get(Customer, request.customer_id)
                if customer is not None:
                    customer.last_sync_at = now
                    customer.last_sync_status = RunStatus.FAILED.value
                    customer.last_sync_error = message
                    if isinstance(exc, AuthenticationError):
                        customer.credential_status = "invalid"
        except (
            Exception
        ):  # the database itself may be what failed; the caller still gets the outcome
            logger.warning("Could not record the failed sync run", exc_info=True)
        return outcome

    @staticmethod
    def _log(request: SyncRequest, outcome: SyncOutcome) -> None:
        fields: dict[str, Any] = {
            "customer_id": str(request.customer_id),
            "command_id": request.command_id,
            "run_id": str(outcome.run_id) if outcome.run_id else None,
            "reason": request.reason,
            "attempt": request.attempt,
            "status": outcome.status.value,
            "pages": outcome.stats.pages,
            "duration_ms": outcome.duration_ms,
            # LogRecord reserves "created"; prefix every stat so the names stay parallel.
            **{f"workflows_{k}": v for k, v in outcome.stats.as_dict().items()},
            **outcome.stats.definitions_dict(),
        }
        if outcome.status is RunStatus.FAILED:
            fields["error_kind"] = outcome.error_kind.value if outcome.error_kind else None
            fields["error"] = outcome.error_message
            fields["zuora_request_id"] = outcome.zuora_request_id
            logger.warning("Workflow sync failed", extra=fields)
        elif outcome.status is RunStatus.DELETES_BLOCKED:
            fields["blocked_deletes"] = outcome.blocked_deletes
            logger.warning("Workflow sync completed with deletions blocked", extra=fields)
        else:
            if outcome.skip_reason:
                fields["skip_reason"] = outcome.skip_reason
            logger.info("Workflow sync completed", extra=fields)
