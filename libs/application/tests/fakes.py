"""In-memory fakes of the application's ports: a unit of work with dict-backed repositories,
and a scriptable credentials checker. No database, no network (cosmicpython's fakes)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from application.errors import CustomerNameTaken
from application.views import CustomerView, RunView, WorkflowView
from pydantic import BaseModel
from workflow_store.models import Customer, SyncRun
from zuora_client import ZuoraCredentials


class FakeCustomers:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Customer] = {}
        self.workflow_counts: dict[uuid.UUID, int] = {}
        self.on_get_for_update: list[Any] = []  # callables run before a locked read (races)

    async def get(self, customer_id: uuid.UUID, *, for_update: bool = False) -> Customer | None:
        if for_update:
            for hook in self.on_get_for_update:
                hook()
        return self.rows.get(customer_id)

    async def find(self, ref: str | uuid.UUID) -> Customer | None:
        try:
            by_id = self.rows.get(ref if isinstance(ref, uuid.UUID) else uuid.UUID(ref))
        except ValueError:
            by_id = None
        if by_id is not None:
            return by_id
        return next((c for c in self.rows.values() if c.name == str(ref)), None)

    async def exists(self, customer_id: uuid.UUID) -> bool:
        return customer_id in self.rows

    async def name_exists(self, name: str, *, other_than: uuid.UUID | None = None) -> bool:
        return any(c.name == name and c.id != other_than for c in self.rows.values())

    async def add(self, customer: Customer) -> None:
        if await self.name_exists(customer.name):
            raise CustomerNameTaken(customer.name)
        now = datetime.now(UTC)
        customer.created_at = customer.created_at or now
        customer.updated_at = customer.updated_at or now
        self.rows[customer.id] = customer

    async def save(self, customer: Customer) -> None:
        if await self.name_exists(customer.name, other_than=customer.id):
            raise CustomerNameTaken(customer.name)
        customer.updated_at = datetime.now(UTC)

    async def delete(self, customer: Customer) -> None:
        del self.rows[customer.id]

    async def view(self, customer_id: uuid.UUID) -> CustomerView | None:
        customer = self.rows.get(customer_id)
        if customer is None:
            return None
        return CustomerView.of(customer, self.workflow_counts.get(customer_id, 0))

    async def page(
        self, *, page: int, page_size: int, active_only: bool = False, where: Sequence[Any] = ()
    ) -> tuple[list[CustomerView], int]:
        assert not where, "the fake has no SQL filters"
        rows = sorted(
            (c for c in self.rows.values() if c.active or not active_only),
            key=lambda c: (c.name, c.id),
        )
        chosen = rows[(page - 1) * page_size : page * page_size]
        return [CustomerView.of(c, self.workflow_counts.get(c.id, 0)) for c in chosen], len(rows)


class FakeRuns:
    def __init__(self, customers: FakeCustomers) -> None:
        self._customers = customers
        self.rows: dict[uuid.UUID, SyncRun] = {}

    def _view(self, run: SyncRun) -> RunView:
        customer = self._customers.rows[run.customer_id]
        return RunView(
            id=run.id,
            customer_id=run.customer_id,
            customer_name=customer.name,
            command_id=run.command_id,
            reason=run.reason,
            attempt=run.attempt,
            forced=bool(run.forced),
            status=run.status,
            skip_reason=run.skip_reason,
            pages=run.pages or 0,
            created=run.created or 0,
            updated=run.updated or 0,
            deleted=run.deleted or 0,
            unchanged=run.unchanged or 0,
            total=run.total or 0,
            blocked_deletes=run.blocked_deletes,
            error_kind=run.error_kind,
            error_message=run.error_message,
            zuora_request_id=run.zuora_request_id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_ms=run.duration_ms,
            replay_of=run.replay_of,
        )

    async def get(self, run_id: uuid.UUID) -> SyncRun | None:
        return self.rows.get(run_id)

    async def view(self, run_id: uuid.UUID) -> RunView | None:
        run = self.rows.get(run_id)
        return None if run is None else self._view(run)

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
        assert not where, "the fake has no SQL filters"
        if customer_id is not None and customer_id not in self._customers.rows:
            return None
        rows = [
            r
            for r in self.rows.values()
            if (customer_id is None or r.customer_id == customer_id)
            and (not statuses or r.status in statuses)
            and (not reasons or r.reason in reasons)
        ]
        rows.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        chosen = rows[(page - 1) * page_size : page * page_size]
        return [self._view(r) for r in chosen], len(rows)

    async def for_commands(self, command_ids: Sequence[str]) -> list[RunView]:
        rows = [r for r in self.rows.values() if r.command_id in command_ids]
        return [self._view(r) for r in sorted(rows, key=lambda r: (r.started_at, r.attempt))]


class FakeWorkflows:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, list[WorkflowView]] = {}

    async def for_customer(self, customer_id: uuid.UUID) -> list[WorkflowView]:
        return sorted(self.rows.get(customer_id, []), key=lambda w: (w.name, w.zuora_id))


@dataclass
class Published:
    topic: str
    message: BaseModel
    key: str | None


class FakeUnitOfWork:
    """Records what a real one would commit; a failed transaction publishes nothing and puts
    back the customers it added or deleted."""

    def __init__(self) -> None:
        self.customers = FakeCustomers()
        self.runs = FakeRuns(self.customers)
        self.workflows = FakeWorkflows()
        self.published: list[Published] = []
        self.commits = 0
        self.rollbacks = 0
        self.reads_ended = 0
        self._queued: list[Published] = []
        self._in_transaction = False

    async def end_read(self) -> None:
        self.reads_ended += 1

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        assert not self._in_transaction, "transactions do not nest"
        self._in_transaction = True
        snapshot = dict(self.customers.rows)
        self._queued = []
        try:
            yield
        except BaseException:
            self.customers.rows = snapshot
            self.rollbacks += 1
            raise
        else:
            self.commits += 1
            self.published += self._queued
        finally:
            self._queued = []
            self._in_transaction = False

    def publish(self, topic: str, message: BaseModel, *, key: str | None) -> None:
        assert self._in_transaction, "messages are queued inside a transaction"
        self._queued.append(Published(topic, message, key))


@dataclass
class FakeChecker:
    """Records the credentials it was asked about; raises ``error`` when given."""

    error: Exception | None = None
    calls: list[ZuoraCredentials] = field(default_factory=list)
    during: Any = None  # a callable run while "Zuora is asked" (races)

    async def __call__(self, credentials: ZuoraCredentials) -> None:
        self.calls.append(credentials)
        if self.during is not None:
            self.during()
        if self.error is not None:
            raise self.error
