"""The store ports over SQLAlchemy: PostgreSQL in production, SQLite for embedded single-node
runs. One :class:`SqlTransaction` is one session in one transaction; its ``workflows`` and
``runs`` work inside it and never commit on their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, cast, delete, extract, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from workflow_store.crypto import SecretBox
from workflow_store.definitions import (
    DefinitionChange,
    DefinitionFingerprint,
    FetchedDefinition,
    current_fingerprints,
    store_definitions,
)
from workflow_store.models import Customer, StoredWorkflow, SyncRun, UTCDateTime
from workflow_store.workflow_counts import refresh_workflow_counts
from zuora_client import Workflow, ZuoraCredentials

from sync_engine.failures import FailureKind
from sync_engine.locks import HeldLock, fence_write
from sync_engine.outcome import CustomerSyncStatus, RunStatus, SyncOutcome
from sync_engine.ports import CustomerState, RunningRun
from sync_engine.request import SyncRequest
from sync_engine.rows import UPDATABLE_COLUMNS, stored_request_id, workflow_row

__all__ = ["SqlRunLedger", "SqlSyncStore", "SqlTransaction", "SqlWorkflowRepository"]

_DELETE_CHUNK = 500
_CUSTOMERS = Customer.metadata.tables[Customer.__tablename__]
_RUNS = SyncRun.metadata.tables[SyncRun.__tablename__]
_CUSTOMER_COLUMNS = (
    _CUSTOMERS.c.id,
    _CUSTOMERS.c.active,
    _CUSTOMERS.c.last_successful_sync_at,
    _CUSTOMERS.c.base_url,
    _CUSTOMERS.c.client_id,
    _CUSTOMERS.c.entity_id,
    _CUSTOMERS.c.client_secret_encrypted,
)


class SqlSyncStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret_box: SecretBox,
        clock: Callable[[], datetime],
    ) -> None:
        """``clock`` stands in for the database's clock on SQLite (which has no shared one)."""
        self._sessions = sessions
        self._box = secret_box
        self._clock = clock

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        async with self._sessions() as session, session.begin():
            yield SqlTransaction(session, self._box, self._clock)


class SqlTransaction:
    def __init__(
        self, session: AsyncSession, secret_box: SecretBox, clock: Callable[[], datetime]
    ) -> None:
        self._session = session
        self._clock = clock
        self.workflows = SqlWorkflowRepository(session)
        self.runs = SqlRunLedger(session, secret_box)

    async def now(self) -> datetime:
        """The database's clock (one clock for every worker); the injected clock on SQLite."""
        bind = self._session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            value = await self._session.scalar(text("SELECT clock_timestamp()"))
            if isinstance(value, datetime):
                return value.astimezone(UTC)
        return self._clock()

    async def fence(self, lock: HeldLock) -> None:
        await fence_write(self._session, lock)


class SqlWorkflowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def stored_hashes(self, customer_id: uuid.UUID) -> dict[int, str]:
        result = await self._session.execute(
            select(StoredWorkflow.zuora_id, StoredWorkflow.content_hash).where(
                StoredWorkflow.customer_id == customer_id
            )
        )
        return {int(zid): h for zid, h in result.all()}

    async def definition_fingerprints(
        self, customer_id: uuid.UUID
    ) -> Mapping[int, DefinitionFingerprint]:
        return await current_fingerprints(self._session, customer_id)

    async def upsert(
        self, customer_id: uuid.UUID, workflows: Sequence[tuple[Workflow, str]], now: datetime
    ) -> None:
        if not workflows:
            return
        rows = [workflow_row(customer_id, wf, digest, now) for wf, digest in workflows]
        await self._session.execute(self._upsert_statement(), rows)

    def _upsert_statement(self) -> Any:
        bind = self._session.bind
        dialect = bind.dialect.name if bind is not None else "postgresql"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # The Table, not the mapped class: a Core executemany ("insertmanyvalues" batches).
        # With the ORM entity, SQLAlchemy takes the ORM bulk-insert path, which cost ~6x the
        # CPU per row (profiled in docs/performance.md: 5,000 rows 3.2-3.9 s CPU -> 0.5-0.65 s).
        stmt = insert(StoredWorkflow.metadata.tables[StoredWorkflow.__tablename__])
        return stmt.on_conflict_do_update(
            index_elements=[StoredWorkflow.customer_id, StoredWorkflow.zuora_id],
            set_={name: getattr(stmt.excluded, name) for name in UPDATABLE_COLUMNS},
        )

    async def delete(self, customer_id: uuid.UUID, zuora_ids: Sequence[int]) -> None:
        # Scoped to the customer, in chunks (a bounded IN list); definitions go by ON DELETE
        # CASCADE.
        for first in range(0, len(zuora_ids), _DELETE_CHUNK):
            chunk = zuora_ids[first : first + _DELETE_CHUNK]
            await self._session.execute(
                delete(StoredWorkflow).where(
                    StoredWorkflow.customer_id == customer_id,
                    StoredWorkflow.zuora_id.in_(chunk),
                )
            )

    async def refresh_counts(self, customer_id: uuid.UUID) -> None:
        await refresh_workflow_counts(self._session, [customer_id])

    async def store_definitions(
        self,
        customer_id: uuid.UUID,
        items: Sequence[FetchedDefinition],
        *,
        now: datetime,
        history_limit: int,
    ) -> list[DefinitionChange]:
        return await store_definitions(
            self._session, customer_id, items, now=now, history_limit=history_limit
        )


class SqlRunLedger:
    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self._session = session
        self._box = secret_box

    async def customer(self, customer_id: uuid.UUID, *, hold: bool = False) -> CustomerState | None:
        # Core: the columns the sync reads, no ORM object (a sync reads its customer three times).
        stmt = select(*_CUSTOMER_COLUMNS).where(_CUSTOMERS.c.id == customer_id)
        if hold:
            # FOR SHARE: the customer cannot be deleted under the write; if it is already gone,
            # its rows and runs went with it (ON DELETE CASCADE).
            stmt = stmt.with_for_update(read=True)
        row = (await self._session.execute(stmt)).first()
        if row is None:
            return None
        box = self._box
        base_url, client_id, entity_id = row.base_url, row.client_id, row.entity_id
        encrypted = row.client_secret_encrypted

        def credentials() -> ZuoraCredentials:
            return ZuoraCredentials(
                base_url=base_url,
                client_id=client_id,
                client_secret=box.decrypt(encrypted),  # as decrypt_client_secret does
                entity_id=entity_id,
            )

        return CustomerState(
            id=row.id,
            active=row.active,
            last_successful_sync_at=row.last_successful_sync_at,
            credentials=credentials,
        )

    @staticmethod
    def _new_run(request: SyncRequest, status: RunStatus, started_at: datetime) -> dict[str, Any]:
        """The one place a ``sync_runs`` row is built from a request (a Core row: no ORM
        object per run; the Table's column defaults fill the counters)."""
        return {
            "id": uuid.uuid4(),
            "customer_id": request.customer_id,
            "command_id": request.command_id,
            "reason": request.reason,
            "attempt": request.attempt,
            "forced": request.force,
            "status": status.value,
            "started_at": started_at,
            "replay_of": request.replay_of,
        }

    async def start_run(self, request: SyncRequest, started_at: datetime) -> uuid.UUID:
        # We hold the customer's lock, so a run still marked running was left by a process that
        # died mid-sync (its lock went with its connection): close it for the record.
        await self._session.execute(
            update(_RUNS)
            .where(
                _RUNS.c.customer_id == request.customer_id,
                _RUNS.c.status == RunStatus.RUNNING.value,
            )
            .values(
                status=RunStatus.FAILED.value,
                error_kind=FailureKind.TRANSIENT.value,
                error_message="abandoned: the process running this sync stopped before it ended",
                finished_at=started_at,
            )
        )
        run = self._new_run(request, RunStatus.RUNNING, started_at)
        await self._session.execute(insert(_RUNS), [run])
        return uuid.UUID(str(run["id"]))

    async def record_skip(self, request: SyncRequest, skip_reason: str, now: datetime) -> uuid.UUID:
        run = self._new_run(request, RunStatus.SKIPPED, now)
        run.update(skip_reason=skip_reason, finished_at=now, duration_ms=0)
        await self._session.execute(insert(_RUNS), [run])
        return uuid.UUID(str(run["id"]))

    async def running_run(self, customer_id: uuid.UUID) -> RunningRun | None:
        row = (
            await self._session.execute(
                select(SyncRun.started_at, SyncRun.command_id)
                .where(
                    SyncRun.customer_id == customer_id,
                    SyncRun.status == RunStatus.RUNNING.value,
                )
                .order_by(SyncRun.started_at.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else RunningRun(row.started_at, row.command_id)

    async def finish_run(self, run_id: uuid.UUID, outcome: SyncOutcome, now: datetime) -> None:
        # One Core UPDATE (no ORM load + unit of work); the duration from the stored start.
        stats = outcome.stats
        values: dict[str, Any] = {
            "status": outcome.status.value,
            "pages": stats.pages,
            "created": stats.created,
            "updated": stats.updated,
            "deleted": stats.deleted,
            "unchanged": stats.unchanged,
            "total": stats.total,
            "definitions_fetched": stats.definitions_fetched,
            "definitions_changed": stats.definitions_changed,
            "definitions_failed": stats.definitions_failed,
            "blocked_deletes": outcome.blocked_deletes,
            "error_kind": outcome.error_kind.value if outcome.error_kind else None,
            "error_message": outcome.error_message,
            "skip_reason": outcome.skip_reason,
            "finished_at": now,
        }
        if outcome.zuora_request_id is not None:
            values["zuora_request_id"] = stored_request_id(outcome.zuora_request_id)
        if self._dialect() == "postgresql":
            elapsed_ms = func.floor(
                extract("epoch", literal(now, UTCDateTime()) - _RUNS.c.started_at) * 1000
            )
            values["duration_ms"] = func.greatest(0, cast(elapsed_ms, Integer))
        else:  # SQLite: the start as stored, then the same arithmetic in Python
            started = await self._session.scalar(
                select(_RUNS.c.started_at).where(_RUNS.c.id == run_id)
            )
            if started is None:  # pragma: no cover - the row was written before the listing
                return
            values["duration_ms"] = max(0, int((now - started).total_seconds() * 1000))
        await self._session.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(**values))

    async def record_customer(self, customer_id: uuid.UUID, status: CustomerSyncStatus) -> None:
        # A customer deleted meanwhile matches no row: its runs went with it. ``updated_at``
        # moves, as the ORM's flush moved it (the column's onupdate).
        await self._session.execute(
            update(_CUSTOMERS).where(_CUSTOMERS.c.id == customer_id).values(**status.columns())
        )

    def _dialect(self) -> str:
        bind = self._session.bind
        return bind.dialect.name if bind is not None else "postgresql"
