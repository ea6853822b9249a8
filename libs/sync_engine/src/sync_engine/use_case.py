"""The sync of one customer, as a use case over ports (:mod:`sync_engine.ports`).

load -> coalesce -> lock -> list -> plan -> fetch -> write -> record -> outcome:

1. **load, coalesce**: read the customer; a request already covered by a successful sync that
   started after it is skipped (unless ``force``), and recorded as a skipped run.
2. **lock**: one sync per customer at a time, for the whole run; a busy lock is not an attempt.
   Under the lock the customer is read again (a sync we waited for may cover the request) and
   the run starts, its start instant taken from the store's clock *before* that read.
3. **list**: every page of the tenant's listing, to a real last page (else nothing is written).
4. **plan**, outside any transaction: what the write would do, with the deletion guard or the
   operator's bound ``allow_deletes`` (honoured only for a while after it was requested); then
   each absence is confirmed by Zuora (404) before it may be deleted.
5. **fetch**: the further fetch steps, in order (:class:`~sync_engine.ports.FetchStep`; today
   one, the workflow definitions), each with what is left of the Zuora deadline. A new fetch
   step goes in the ``steps`` list given to :class:`SyncCustomer`: its ``fetch`` runs here, and
   what it returns writes itself in step 6.
6. **write** in ONE transaction, fenced (it commits only while the lock is still held):
   upserts, confirmed deletes, the steps' results, the run's row and the customer's status.
7. **record / outcome**: a failure at any step after the run started is recorded on the run and
   classified transient or permanent; the outcome goes back to the caller (the worker publishes
   it, after settling the command: ``sync_worker.handlers``).

The safety rules are those of ARCHITECTURE.md section 5; every Zuora call of a run shares one
deadline, which never cuts a write.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sync_messages.vocabulary import CredentialStatus, SyncReason
from zuora_client import AuthenticationError, DeadlineExceededError, ZuoraCredentials, ZuoraError

from sync_engine.failures import (
    CustomerBusyError,
    CustomerLockLostError,
    FailureKind,
    classify_failure,
    describe_failure,
)
from sync_engine.hashing import content_hash
from sync_engine.locks import HeldLock
from sync_engine.outcome import ChangedIds, CustomerSyncStatus, RunStatus, SyncOutcome, SyncStats
from sync_engine.ports import (
    CustomerLock,
    CustomerState,
    Fetched,
    FetchStep,
    Listing,
    SyncStore,
    SyncTransaction,
    ZuoraGateway,
    ZuoraSession,
)
from sync_engine.reconcile import DeletionGuard, ReconcilePlan, plan_reconciliation
from sync_engine.request import SyncRequest
from sync_engine.settings import SyncSettings

__all__ = ["OutcomeHook", "SyncCustomer"]

logger = logging.getLogger("sync_engine")

OutcomeHook = Callable[[SyncRequest, SyncOutcome, float], None]
"""Called after every sync with the request, its outcome and the wall time in seconds (the
metrics hook); must be quick and not raise."""


@dataclass(frozen=True)
class _RunStart:
    run_id: uuid.UUID
    started_at: datetime  # the store's clock, stamped before the customer was read
    allow_deletes: int | None  # the request's bound, if still valid
    note: str | None = None  # why the request's bound was not honoured


@dataclass(frozen=True)
class _Plan:
    reconcile: ReconcilePlan
    listed: dict[int, str]  # zuora id -> content hash of the listed item
    stored_count: int
    confirmed_deletes: list[int] = field(default_factory=list)
    confirm_failures: int = 0  # absences Zuora could not be asked about (counted in errors)
    warnings: list[str] = field(default_factory=list)


def _remaining(scope: asyncio.Timeout) -> float:
    when = scope.when()
    return float("inf") if when is None else when - asyncio.get_running_loop().time()


def _customer_gone(request: SyncRequest) -> SyncOutcome:
    """A request for a deleted customer: nothing to sync and no run to record (no customer row)."""
    return SyncOutcome(
        customer_id=request.customer_id,
        status=RunStatus.SKIPPED,
        run_id=None,
        skip_reason="customer no longer exists",
    )


def skip_reason(customer: CustomerState, request: SyncRequest) -> str | None:
    """Why the request needs no sync (coalescing), or None."""
    if request.force:
        return None
    if not customer.active:
        return "customer is inactive"
    if request.reason == SyncReason.CREDENTIALS_CHANGED:
        # A sync that read the old credentials may have started after the change was
        # requested (the event is stamped before the change commits): never coalesce it.
        return None
    last_ok = customer.last_successful_sync_at
    if last_ok is not None and last_ok > request.requested_at:
        return f"covered by a successful sync that started at {last_ok.isoformat()}"
    return None


class SyncCustomer:
    """``await SyncCustomer(...)(request)``: one sync of one customer (module docstring)."""

    def __init__(
        self,
        *,
        store: SyncStore,
        zuora: ZuoraGateway,
        lock: CustomerLock,
        settings: SyncSettings,
        steps: Sequence[FetchStep] = (),
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self._store = store
        self._zuora = zuora
        self._lock = lock
        self._settings = settings
        self._steps = tuple(steps)
        self._on_outcome = on_outcome
        self._guard = DeletionGuard(
            max_share=settings.delete_guard_share, floor=settings.delete_guard_floor
        )

    async def __call__(self, request: SyncRequest) -> SyncOutcome:
        started = time.monotonic()
        outcome = await self._sync(request)
        elapsed = time.monotonic() - started
        outcome.duration_ms = int(elapsed * 1000)
        _log(request, outcome)
        if self._on_outcome is not None:
            try:
                self._on_outcome(request, outcome, elapsed)
            except Exception:  # an observer must never turn a sync into a failure
                logger.warning("on_outcome hook failed", exc_info=True)
        return outcome

    # -- the steps ------------------------------------------------------------------------------

    async def _sync(self, request: SyncRequest) -> SyncOutcome:
        async with self._store.transaction() as tx:
            customer = await tx.runs.customer(request.customer_id)
            if customer is None:
                return _customer_gone(request)
            reason = skip_reason(customer, request)
            if reason:
                return await _record_skip(tx, request, reason)
        try:
            async with self._lock.hold(request.customer_id) as lock:
                return await self._sync_locked(request, lock)
        except CustomerBusyError as exc:
            return await self._busy(request, exc)

    async def _sync_locked(self, request: SyncRequest, lock: HeldLock) -> SyncOutcome:
        async with self._store.transaction() as tx:
            # The start instant is taken BEFORE the customer is read: a change committed after
            # it is not seen by this run, so the run must not cover a request made for it.
            started_at = await tx.now()
            # Re-read under the lock: a sync we waited for may already cover this request.
            customer = await tx.runs.customer(request.customer_id)
            if customer is None:
                return _customer_gone(request)
            reason = skip_reason(customer, request)
            if reason:
                return await _record_skip(tx, request, reason, coalesced=True)
            run_id = await tx.runs.start_run(request, started_at)
            # Read with the run's start (one transaction fewer): we hold the customer's lock,
            # so no other run changes these rows until our write.
            stored = await tx.workflows.stored_hashes(request.customer_id)
        start = _RunStart(run_id, started_at, *self._valid_allow_deletes(request, started_at))
        stats = SyncStats()
        try:
            listing, plan, fetched = await self._fetch(
                request, customer.credentials(), start, stats, stored
            )
            return await self._write(request, start, lock, listing, plan, fetched, stats)
        except Exception as exc:
            return await self._record_failure(request, start, lock, exc, stats)

    async def _fetch(
        self,
        request: SyncRequest,
        creds: ZuoraCredentials,
        start: _RunStart,
        stats: SyncStats,
        stored: dict[int, str],
    ) -> tuple[Listing, _Plan, list[Fetched]]:
        """Every Zuora call of the run: the listing, the plan, then what the plan needs."""
        deadline = self._settings.deadline_seconds
        # The deadline keeps a sync inside the consumer's poll interval (audit A2/A6), whatever
        # Zuora does; it covers only the Zuora calls, so a write is never cut mid-transaction.
        try:
            async with asyncio.timeout(deadline) as scope, self._zuora.connect(creds) as zuora:
                # An item whose hash equals the stored one comes back unparsed.
                listing = await zuora.list_workflows(known=stored)
                stats.pages = listing.pages
                plan = self._plan(stored, listing, start)
                plan = await self._confirm_absences(zuora, plan)
                fetched = []
                for step in self._steps:
                    # What is left of the deadline, minus a margin: a step that runs out of time
                    # counts what it missed, and the listing's result is still written.
                    budget = _remaining(scope) * 0.9 - 1.0
                    fetched.append(
                        await step.fetch(zuora, request.customer_id, listing, budget_seconds=budget)
                    )
        except TimeoutError:
            if not scope.expired():
                raise
            raise DeadlineExceededError(
                f"deadline_exceeded: the Zuora calls did not finish within the sync deadline "
                f"of {deadline:g}s (SYNC_DEADLINE_SECONDS); nothing was stored"
            ) from None
        return listing, plan, fetched

    def _plan(self, stored: dict[int, str], listing: Listing, start: _RunStart) -> _Plan:
        """Outside any transaction: what the write would do, before asking Zuora anything more.
        ``stored`` was read under the customer's lock, which we still hold: no other run has
        changed these rows meanwhile."""
        hashes = listing.hashes
        listed = {
            wid: hashes.get(wid) or content_hash(wf.raw) for wid, wf in listing.workflows.items()
        }
        for wid in listing.unchanged:
            listed[wid] = hashes[wid]
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
        return _Plan(reconcile=plan, listed=listed, stored_count=len(stored), warnings=warnings)

    async def _confirm_absences(self, zuora: ZuoraSession, plan: _Plan) -> _Plan:
        """A workflow missing from one listing is deleted only when ``GET /workflows/{id}``
        answers 404: offset paging can skip an item that moved between two page reads."""
        candidates = plan.reconcile.to_delete
        if not candidates:
            return plan
        limit = asyncio.Semaphore(self._settings.confirm_concurrency)

        async def gone(workflow_id: int) -> bool | None:
            async with limit:
                try:
                    return await zuora.is_gone(workflow_id)
                except ZuoraError as exc:
                    logger.warning(
                        "Could not confirm a workflow's absence; it is kept",
                        extra={"zuora_id": workflow_id, "error": describe_failure(exc)},
                    )
                    return None

        answers = await asyncio.gather(*(gone(wid) for wid in candidates))
        confirmed = [wid for wid, answer in zip(candidates, answers, strict=True) if answer]
        failed = sum(1 for answer in answers if answer is None)
        warnings = list(plan.warnings)
        if failed:
            warnings.append(f"kept {failed} workflow(s) whose absence Zuora did not confirm")
        return _Plan(
            reconcile=plan.reconcile,
            listed=plan.listed,
            stored_count=plan.stored_count,
            confirmed_deletes=confirmed,
            confirm_failures=failed,
            warnings=warnings,
        )

    async def _write(
        self,
        request: SyncRequest,
        start: _RunStart,
        lock: HeldLock,
        listing: Listing,
        plan: _Plan,
        fetched: Sequence[Fetched],
        stats: SyncStats,
    ) -> SyncOutcome:
        customer_id = request.customer_id
        reconcile = plan.reconcile
        async with self._store.transaction() as tx:
            await tx.fence(lock)
            if await tx.runs.customer(customer_id, hold=True) is None:
                return _customer_gone(request)
            now = await tx.now()
            changed = (*reconcile.to_insert, *reconcile.to_update)
            await tx.workflows.upsert(
                customer_id, [(listing.workflows[wid], plan.listed[wid]) for wid in changed], now
            )
            await tx.workflows.delete(customer_id, plan.confirmed_deletes)
            # In this transaction, under the customer's lock: the committed counts are exact.
            await tx.workflows.refresh_counts(customer_id)
            stats.created = len(reconcile.to_insert)
            stats.updated = len(reconcile.to_update)
            stats.deleted = len(plan.confirmed_deletes)
            stats.unchanged = reconcile.unchanged
            stats.total = listing.total
            stats.errors = len(listing.rejected) + plan.confirm_failures
            outcome = _outcome_of(request, start.run_id, plan, stats)
            for result in fetched:
                await result.write(tx, customer_id, now, outcome)
            await tx.runs.finish_run(start.run_id, outcome, now)
            await tx.runs.record_customer(
                customer_id,
                CustomerSyncStatus.after(
                    outcome,
                    started_at=start.started_at,
                    now=now,
                    credential_status=CredentialStatus.VALID,
                ),
            )
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

    # -- the other ends -------------------------------------------------------------------------

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

    async def _busy(self, request: SyncRequest, exc: CustomerBusyError) -> SyncOutcome:
        """Another sync of this customer holds the lock. That is not an attempt: no run is started
        (so no live run is closed as abandoned) and the customer's status is left alone. A sync
        already running for this command, or started after it was requested, covers it."""
        async with self._store.transaction() as tx:
            running = await tx.runs.running_run(request.customer_id)
            if running is not None and (
                running.command_id == request.command_id
                or running.started_at >= request.requested_at
            ):
                since = running.started_at.isoformat()
                return await _record_skip(
                    tx, request, f"covered by the sync running since {since}", coalesced=True
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
        self,
        request: SyncRequest,
        start: _RunStart,
        lock: HeldLock,
        exc: BaseException,
        stats: SyncStats,
    ) -> SyncOutcome:
        kind = classify_failure(exc)
        stats.errors += 1
        outcome = SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.FAILED,
            run_id=start.run_id,
            stats=stats,
            error_kind=kind,
            error_message=describe_failure(exc),
            zuora_request_id=exc.request_id if isinstance(exc, ZuoraError) else None,
            retry_after_seconds=exc.retry_after if isinstance(exc, ZuoraError) else None,
        )
        if kind is FailureKind.PERMANENT and not isinstance(exc, ZuoraError):
            logger.error("Unexpected sync error", exc_info=exc)
        credentials = CredentialStatus.INVALID if isinstance(exc, AuthenticationError) else None
        try:
            async with self._store.transaction() as tx:
                try:
                    await tx.fence(lock)
                    still_ours = True
                except CustomerLockLostError:
                    # Another run may hold the customer now and have written its status: this
                    # run's failure goes on its own run row only, never over the newer status.
                    still_ours = False
                now = await tx.now()
                await tx.runs.finish_run(start.run_id, outcome, now)
                if still_ours:
                    status = CustomerSyncStatus.after(
                        outcome, started_at=start.started_at, now=now, credential_status=credentials
                    )
                    await tx.runs.record_customer(request.customer_id, status)
        except Exception:  # the store may be what failed; the caller still gets the outcome
            logger.warning("Could not record the failed sync run", exc_info=True)
        return outcome


async def _record_skip(
    tx: SyncTransaction, request: SyncRequest, reason: str, *, coalesced: bool = False
) -> SyncOutcome:
    now = await tx.now()
    run_id = await tx.runs.record_skip(request, ("coalesced: " if coalesced else "") + reason, now)
    return SyncOutcome(
        customer_id=request.customer_id, status=RunStatus.SKIPPED, run_id=run_id, skip_reason=reason
    )


def _outcome_of(
    request: SyncRequest, run_id: uuid.UUID, plan: _Plan, stats: SyncStats
) -> SyncOutcome:
    """A written run: succeeded, or deletes_blocked when the guard (or the bound) held back
    the deletions, with how to apply them."""
    reconcile = plan.reconcile
    warning = "; ".join(plan.warnings) if plan.warnings else None
    message = warning
    if reconcile.deletes_blocked:
        pending = reconcile.pending_deletes
        bound = (
            f"more than allow_deletes={request.allow_deletes}"
            if request.allow_deletes is not None and warning is None
            else "over the deletion guard"
        )
        blocked = (
            f"deletion guard: the listing would delete {pending} of {plan.stored_count} "
            f"stored workflows ({bound}); nothing was deleted - replay this run with "
            f"allow_deletes={pending} to apply"
        )
        message = f"{blocked}; {warning}" if warning else blocked
    return SyncOutcome(
        customer_id=request.customer_id,
        status=RunStatus.DELETES_BLOCKED if reconcile.deletes_blocked else RunStatus.SUCCEEDED,
        run_id=run_id,
        stats=stats,
        changes=ChangedIds(
            created=list(reconcile.to_insert),
            updated=list(reconcile.to_update),
            deleted=list(plan.confirmed_deletes),
        ),
        blocked_deletes=reconcile.pending_deletes if reconcile.deletes_blocked else None,
        error_message=message,
    )


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
