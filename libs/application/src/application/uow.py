"""The SQLAlchemy unit of work and repositories (the adapters of :mod:`application.ports`).

One :class:`SqlUnitOfWork` wraps one ``AsyncSession``. Messages queued with :meth:`publish` are
outbox rows added in the same transaction as the change they describe; after a commit that
queued some, ``on_commit`` is called (the API wakes its relay, so events leave within
milliseconds instead of at the next poll).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from event_bus.outbox import enqueue
from pydantic import BaseModel
from sqlalchemy import Select, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from workflow_store.customers import resolve_customer
from workflow_store.errors import CustomerNotFoundError
from workflow_store.models import WORKFLOW_FIELDS, Customer, StoredWorkflow, SyncRun

from application.errors import CustomerNameTaken
from application.views import CustomerView, RunView, WorkflowView

__all__ = [
    "EXACT_COUNT_UP_TO",
    "SqlCustomerRepository",
    "SqlRunRepository",
    "SqlUnitOfWork",
    "SqlWorkflowRepository",
    "unit_of_work",
]


class SqlCustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, customer_id: uuid.UUID, *, for_update: bool = False) -> Customer | None:
        if for_update:
            return await self._session.get(
                Customer, customer_id, with_for_update=True, populate_existing=True
            )
        return await self._session.get(Customer, customer_id)

    async def find(self, ref: str | uuid.UUID) -> Customer | None:
        try:
            return await resolve_customer(self._session, ref)
        except CustomerNotFoundError:
            return None

    async def exists(self, customer_id: uuid.UUID) -> bool:
        stmt = select(Customer.id).where(Customer.id == customer_id)
        return (await self._session.scalar(stmt)) is not None

    async def name_exists(self, name: str, *, other_than: uuid.UUID | None = None) -> bool:
        stmt = select(Customer.id).where(Customer.name == name)
        if other_than is not None:
            stmt = stmt.where(Customer.id != other_than)
        return (await self._session.scalar(stmt.limit(1))) is not None

    async def add(self, customer: Customer) -> None:
        self._session.add(customer)
        await self._flush(customer)

    async def save(self, customer: Customer) -> None:
        await self._flush(customer)

    async def _flush(self, customer: Customer) -> None:
        try:
            # A savepoint, so losing a race on the unique name leaves the transaction usable.
            async with self._session.begin_nested():
                await self._session.flush([customer])
        except IntegrityError:
            raise CustomerNameTaken(customer.name) from None

    async def delete(self, customer: Customer) -> None:
        await self._session.delete(customer)
        await self._session.flush()

    async def view(self, customer_id: uuid.UUID) -> CustomerView | None:
        # The count is the customer row's own, recounted in every transaction that writes the
        # customer's workflows (workflow_store.workflow_counts): no count over the workflows.
        customer = await self._session.get(Customer, customer_id)
        return None if customer is None else CustomerView.of(customer, customer.workflow_count)

    async def page(
        self, *, page: int, page_size: int, active_only: bool = False, where: Sequence[Any] = ()
    ) -> tuple[list[CustomerView], int]:
        conditions = [*where, *((Customer.active.is_(True),) if active_only else ())]
        count = select(func.count()).select_from(Customer).where(*conditions)
        total = int(await self._session.scalar(count) or 0)
        items: list[CustomerView] = []
        if total > (page - 1) * page_size:
            stmt: Select[Any] = (
                select(Customer)
                .where(*conditions)
                .order_by(Customer.name, Customer.id)
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
            rows = (await self._session.scalars(stmt)).all()
            items = [CustomerView.of(c, c.workflow_count) for c in rows]
        return items, total


_RUN_COLUMNS = (
    SyncRun.id,
    SyncRun.customer_id,
    Customer.name.label("customer_name"),
    SyncRun.command_id,
    SyncRun.reason,
    SyncRun.attempt,
    SyncRun.forced,
    SyncRun.status,
    SyncRun.skip_reason,
    SyncRun.pages,
    SyncRun.created,
    SyncRun.updated,
    SyncRun.deleted,
    SyncRun.unchanged,
    SyncRun.total,
    SyncRun.blocked_deletes,
    SyncRun.error_kind,
    SyncRun.error_message,
    SyncRun.zuora_request_id,
    SyncRun.started_at,
    SyncRun.finished_at,
    SyncRun.duration_ms,
    SyncRun.replay_of,
    SyncRun.definitions_fetched,
    SyncRun.definitions_changed,
    SyncRun.definitions_failed,
)

EXACT_COUNT_UP_TO = 100_000
"""Above this many runs the unfiltered list reports PostgreSQL's estimate as ``total``."""


def _run_view(row: Any) -> RunView:
    return RunView(**row._mapping)


def _runs() -> Any:
    # Any: the 26 columns' precise Select type says nothing a reader needs.
    return select(*_RUN_COLUMNS).join(Customer, Customer.id == SyncRun.customer_id)


class SqlRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, run_id: uuid.UUID) -> SyncRun | None:
        return await self._session.scalar(select(SyncRun).where(SyncRun.id == run_id))

    async def view(self, run_id: uuid.UUID) -> RunView | None:
        row = (await self._session.execute(_runs().where(SyncRun.id == run_id))).first()
        return None if row is None else _run_view(row)

    async def page(
        self,
        *,
        page: int,
        page_size: int,
        customer_id: uuid.UUID | None = None,
        statuses: Sequence[str] = (),
        reasons: Sequence[str] = (),
        where: Sequence[Any] = (),
    ) -> tuple[list[RunView], int] | None:
        session = self._session
        conditions: list[Any] = list(where)
        if customer_id is not None:
            conditions.append(SyncRun.customer_id == customer_id)
        if statuses:
            conditions.append(SyncRun.status.in_(sorted(set(statuses))))
        if reasons:
            conditions.append(SyncRun.reason.in_(sorted(set(reasons))))
        count = select(func.count(SyncRun.id)).where(*conditions)
        if customer_id is not None:
            # The customer's existence and the count in one round trip.
            head = (
                await session.execute(
                    select(Customer.id, count.scalar_subquery()).where(Customer.id == customer_id)
                )
            ).first()
            if head is None:
                return None
            total = int(head[1])
        elif not conditions and (estimate := await self._estimated_count()) is not None:
            total = estimate
        else:
            total = int(await session.scalar(count) or 0)
        items: list[RunView] = []
        offset = (page - 1) * page_size
        if total > offset:
            stmt = (
                _runs()
                .where(*conditions)
                .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
                .offset(offset)
                .limit(page_size)
            )
            items = [_run_view(row) for row in (await session.execute(stmt)).all()]
        return items, total

    async def _estimated_count(self) -> int | None:
        """The planner's row estimate for ``sync_runs`` when it is large, else None (count).

        Counting the whole table on every unfiltered request is a full index scan; with
        retention the table holds millions of rows at scale. The estimate comes from the last
        ANALYZE.
        """
        if self._session.get_bind().dialect.name != "postgresql":
            return None
        estimate = await self._session.scalar(
            text("SELECT reltuples::bigint FROM pg_class WHERE oid = 'sync_runs'::regclass")
        )
        if estimate is None or int(estimate) <= EXACT_COUNT_UP_TO:
            return None
        return int(estimate)

    async def for_commands(self, command_ids: Sequence[str]) -> list[RunView]:
        if not command_ids:
            return []
        stmt = (
            _runs()
            .where(SyncRun.command_id.in_(list(command_ids)))
            .order_by(SyncRun.started_at, SyncRun.attempt)
            .limit(100 * len(command_ids))
        )
        return [_run_view(row) for row in (await self._session.execute(stmt)).all()]


class SqlWorkflowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def for_customer(self, customer_id: uuid.UUID) -> list[WorkflowView]:
        stmt = (
            select(StoredWorkflow)
            .where(StoredWorkflow.customer_id == customer_id)
            .order_by(StoredWorkflow.name, StoredWorkflow.zuora_id)
        )
        return [
            WorkflowView(
                zuora_id=w.zuora_id,
                name=w.name,
                fields={name: getattr(w, name) for name in WORKFLOW_FIELDS},
            )
            for w in (await self._session.scalars(stmt)).all()
        ]


class SqlUnitOfWork:
    """A unit of work over one session (see the module docstring).

    ``committed_messages``: the ids of the outbox rows this unit of work has committed, in
    order (the CLI waits for them to be relayed).
    """

    def __init__(self, session: AsyncSession, on_commit: Callable[[], None] | None = None) -> None:
        self.session = session
        self.customers = SqlCustomerRepository(session)
        self.runs = SqlRunRepository(session)
        self.workflows = SqlWorkflowRepository(session)
        self.committed_messages: list[uuid.UUID] = []
        self._on_commit = on_commit
        self._queued: list[uuid.UUID] = []

    async def end_read(self) -> None:
        """End a transaction that only read (loaded objects stay usable)."""
        if self.session.in_transaction():
            await self.session.commit()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Commit on success, roll back on error."""
        await self.end_read()  # a read before may have autobegun one
        self._queued = []
        async with self.session.begin():
            yield
        self.committed_messages += self._queued
        if self._queued and self._on_commit is not None:
            self._on_commit()
        self._queued = []

    def publish(self, topic: str, message: BaseModel, *, key: str | None) -> None:
        enqueue(self.session, topic=topic, message=message, key=key)
        self._queued.append(uuid.UUID(str(getattr(message, "id", None))))  # enqueue checked it


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], on_commit: Callable[[], None] | None = None
) -> AsyncIterator[SqlUnitOfWork]:
    """A unit of work over a new session, closed on exit (the CLI's one per command)."""
    async with sessions() as session:
        yield SqlUnitOfWork(session, on_commit=on_commit)
