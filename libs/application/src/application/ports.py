"""The ports the use cases depend on: a unit of work with its repositories, and a credentials
check. :mod:`application.uow` has the SQLAlchemy adapters; unit tests use in-memory fakes.

Repositories hand out ORM objects (``workflow_store.models``) for writes and ready views for
reads; the use cases never see a session or a query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from pydantic import BaseModel
from workflow_store.models import Customer, SyncRun
from zuora_client import ZuoraCredentials

from application.views import CustomerView, RunView, WorkflowView

__all__ = [
    "CredentialsChecker",
    "CustomerRepository",
    "RunRepository",
    "UnitOfWork",
    "WorkflowRepository",
]


class CredentialsChecker(Protocol):
    """Raises ``CredentialsRejected`` / ``ZuoraUnavailable`` / ``BaseUrlNotAllowed``, else
    returns: the credentials obtained a token."""

    async def __call__(self, credentials: ZuoraCredentials) -> None: ...


class CustomerRepository(Protocol):
    async def get(self, customer_id: uuid.UUID, *, for_update: bool = False) -> Customer | None:
        """The customer; ``for_update`` locks its row and reloads it (inside a transaction)."""
        ...

    async def find(self, ref: str | uuid.UUID) -> Customer | None:
        """By id (a UUID or its text), else by name."""
        ...

    async def exists(self, customer_id: uuid.UUID) -> bool: ...

    async def name_exists(self, name: str, *, other_than: uuid.UUID | None = None) -> bool: ...

    async def add(self, customer: Customer) -> None:
        """Store a new customer; raises ``CustomerNameTaken`` if the name is taken (a lost race
        included), leaving the transaction usable."""
        ...

    async def save(self, customer: Customer) -> None:
        """Write the changes made to ``customer``; a rename that lost a race raises
        ``CustomerNameTaken`` and leaves the transaction usable."""
        ...

    async def delete(self, customer: Customer) -> None:
        """Delete it with its workflows and runs."""
        ...

    async def view(self, customer_id: uuid.UUID) -> CustomerView | None: ...

    async def page(
        self, *, page: int, page_size: int, active_only: bool = False, where: Sequence[Any] = ()
    ) -> tuple[list[CustomerView], int]:
        """One page by name and the total. ``where``: extra conditions in the adapter's own
        terms (SQL expressions on ``Customer`` for the SQLAlchemy one: the UI's filters)."""
        ...


class RunRepository(Protocol):
    async def get(self, run_id: uuid.UUID) -> SyncRun | None: ...

    async def view(self, run_id: uuid.UUID) -> RunView | None: ...

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
        """Newest first, and the total; None when ``customer_id`` names no customer.
        ``where``: extra conditions in the adapter's own terms (as for customers)."""
        ...

    async def for_commands(self, command_ids: Sequence[str]) -> list[RunView]:
        """The attempts of these commands, oldest first (at most 100 per command)."""
        ...


class WorkflowRepository(Protocol):
    async def for_customer(self, customer_id: uuid.UUID) -> list[WorkflowView]:
        """A customer's stored workflows by name."""
        ...


class UnitOfWork(Protocol):
    """One database transaction at a time, whose commit also writes the queued messages
    (transactional outbox): a message leaves if and only if its change is stored."""

    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def runs(self) -> RunRepository: ...

    @property
    def workflows(self) -> WorkflowRepository: ...

    async def end_read(self) -> None:
        """End a transaction that only read (so no connection is held while Zuora is asked)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Commit on success, roll back on error."""
        ...

    def publish(self, topic: str, message: BaseModel, *, key: str | None) -> None:
        """Queue ``message`` in the outbox, inside the current transaction."""
        ...
