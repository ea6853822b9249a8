"""The sync of one customer: list its Zuora workflows, reconcile them into the store, record it.

Safety rules (ARCHITECTURE.md section 5):
- a request already covered by a successful sync that started after it is skipped (coalescing);
- one sync per customer at a time (advisory lock held for the whole run);
- nothing is written unless the listing was complete; deletions go through the deletion guard;
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
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
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
    RequestHook,
    Workflow,
    ZuoraClient,
    ZuoraCredentials,
    ZuoraError,
)

from sync_engine.failures import (
    CustomerBusyError,
    FailureKind,
    classify_failure,
    describe_failure,
)
from sync_engine.hashing import content_hash
from sync_engine.locks import customer_lock
from sync_engine.outcome import ChangedIds, RunStatus, SyncOutcome, SyncStats
from sync_engine.reconcile import DeletionGuard, ReconcilePlan, plan_reconciliation
from sync_engine.rows import UPDATABLE_COLUMNS, workflow_row
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
    command_id: str | None = None
    attempt: int = 1
    replay_of: uuid.UUID | None = None


@dataclass(frozen=True)
class _Listing:
    workflows: dict[int, Workflow]
    pages: int


ClientFactory = Callable[[ZuoraCredentials], ZuoraClient]


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
        self._guard = DeletionGuard(max_share=self._settings.delete_guard_share)
        self._host_guards = HostGuards(
            HostLimits(
                token_requests_per_minute=self._settings.zuora_token_requests_per_minute,
                token_burst=self._settings.zuora_token_burst,
                breaker_threshold=self._settings.zuora_breaker_threshold,
                breaker_cooldown_seconds=self._settings.zuora_breaker_cooldown_seconds,
            )
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
            ):
                return await self._sync_locked(request)
        except CustomerBusyError as exc:
            return await self._busy(request, exc)

    async def _sync_locked(self, request: SyncRequest) -> SyncOutcome:
        # Re-read under the lock: a sync we waited for may already cover this request.
        async with self._sessions() as session:
            customer = await session.get(Customer, request.customer_id)
            if customer is None:
                return _customer_gone(request)
            reason = self._skip_reason(customer, request)
            if reason:
                return await self._record_skip(request, reason, coalesced=True)
            run_id, run_started = await self._start_run_in(session, request)
            await session.commit()
            try:
                creds = ZuoraCredentials(
                    base_url=customer.base_url,
                    client_id=customer.client_id,
                    client_secret=decrypt_client_secret(self._box, customer),
                    entity_id=customer.entity_id,
                )
            except Exception as exc:
                return await self._record_failure(request, run_id, exc, SyncStats())

        stats = SyncStats()
        try:
            listing = await self._list_workflows(creds)
            stats.pages = listing.pages
            return await self._reconcile(request, run_id, run_started, listing, stats)
        except Exception as exc:
            return await self._record_failure(request, run_id, exc, stats)

    def _skip_reason(self, customer: Customer, request: SyncRequest) -> str | None:
        if request.force:
            return None
        if not customer.active:
            return "customer is inactive"
        last_ok = customer.last_successful_sync_at
        if last_ok is not None and last_ok > request.requested_at:
            return f"covered by a successful sync that started at {last_ok.isoformat()}"
        return None

    async def _list_workflows(self, creds: ZuoraCredentials) -> _Listing:
        workflows: dict[int, Workflow] = {}
        pages = 0
        deadline = self._settings.deadline_seconds
        # The deadline keeps a sync inside the consumer's poll interval (audit A2/A6), whatever
        # Zuora does; it covers only the listing, so a reconcile is never cut mid-transaction.
        try:
            async with asyncio.timeout(deadline) as scope, self._client_factory(creds) as client:
                async for page in client.iter_pages(page_length=self._settings.page_length):
                    pages += 1
                    for workflow in page.workflows:
                        workflows.setdefault(workflow.id, workflow)
        except TimeoutError:
            if not scope.expired():
                raise
            raise DeadlineExceededError(
                f"deadline_exceeded: the Zuora listing did not finish within the sync deadline "
                f"of {deadline:g}s (SYNC_DEADLINE_SECONDS) after {pages} pages; nothing was stored"
            ) from None
        return _Listing(workflows=workflows, pages=pages)

    async def _reconcile(
        self,
        request: SyncRequest,
        run_id: uuid.UUID,
        run_started: datetime,
        listing: _Listing,
        stats: SyncStats,
    ) -> SyncOutcome:
        customer_id = request.customer_id
        listed = {wid: content_hash(wf.raw) for wid, wf in listing.workflows.items()}
        async with self._sessions() as session, session.begin():
            stored = await self._stored_hashes(session, customer_id)
            plan = plan_reconciliation(stored, listed, guard=self._guard, force=request.force)
            now = self._clock()
            rows = [
                workflow_row(customer_id, listing.workflows[wid], listed[wid], now)
                for wid in (*plan.to_insert, *plan.to_update)
            ]
            if rows:
                await session.execute(self._upsert_statement(session), rows)
            for start in range(0, len(plan.to_delete), _DELETE_CHUNK):
                chunk = plan.to_delete[start : start + _DELETE_CHUNK]
                await session.execute(
                    delete(StoredWorkflow).where(
                        StoredWorkflow.customer_id == customer_id,
                        StoredWorkflow.zuora_id.in_(chunk),
                    )
                )
            stats.created = len(plan.to_insert)
            stats.updated = len(plan.to_update)
            stats.deleted = len(plan.to_delete)
            stats.unchanged = plan.unchanged
            stats.total = len(listed)
            outcome = self._outcome_of(request, run_id, plan, stats, stored_count=len(stored))
            await self._finish_run(session, run_id, outcome, now)
            customer = await session.get(Customer, customer_id)
            if customer is not None:
                customer.last_sync_at = now
                customer.last_sync_status = outcome.status.value
                customer.credential_status = "valid"
                if outcome.status is RunStatus.SUCCEEDED:
                    customer.last_successful_sync_at = run_started
                    customer.last_sync_error = None
                else:
                    customer.last_sync_error = outcome.error_message
        return outcome

    def _outcome_of(
        self,
        request: SyncRequest,
        run_id: uuid.UUID,
        plan: ReconcilePlan,
        stats: SyncStats,
        *,
        stored_count: int,
    ) -> SyncOutcome:
        changes = ChangedIds(
            created=list(plan.to_insert), updated=list(plan.to_update), deleted=list(plan.to_delete)
        )
        if plan.deletes_blocked:
            would_delete = stored_count - (stats.total - stats.created)
            return SyncOutcome(
                customer_id=request.customer_id,
                status=RunStatus.DELETES_BLOCKED,
                run_id=run_id,
                stats=stats,
                changes=changes,
                blocked_deletes=would_delete,
                error_message=(
                    f"deletion guard: the listing would delete {would_delete} of {stored_count} "
                    "stored workflows; nothing was deleted - re-run with force to apply"
                ),
            )
        return SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.SUCCEEDED,
            run_id=run_id,
            stats=stats,
            changes=changes,
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

    async def _start_run_in(
        self, session: AsyncSession, request: SyncRequest
    ) -> tuple[uuid.UUID, datetime]:
        now = self._clock()
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
        return run.id, run.started_at

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
        run.blocked_deletes = outcome.blocked_deletes
        run.error_kind = outcome.error_kind.value if outcome.error_kind else None
        run.error_message = outcome.error_message
        run.skip_reason = outcome.skip_reason
        run.finished_at = now
        run.duration_ms = max(0, int((now - run.started_at).total_seconds() * 1000))

    async def _record_skip(
        self, request: SyncRequest, reason: str, *, coalesced: bool = False
    ) -> SyncOutcome:
        now = self._clock()
        run_id = uuid.uuid4()
        async with self._sessions() as session, session.begin():
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
            now = self._clock()
            async with self._sessions() as session, session.begin():
                await self._finish_run(session, run_id, outcome, now)
                run = await session.get(SyncRun, run_id)
                if run is not None and isinstance(exc, ZuoraError):
                    run.zuora_request_id = exc.request_id
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
