"""Reading a customer's stored workflows (the CLI's listing; the API's paged list and detail,
with filters and sorting, and the CLI's ``workflows show`` are ``application.workflow_reads``,
the PostgreSQL-rendered page ``application.workflow_pages``, definitions
``application.definitions``)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from application.errors import NotFound
from application.ports import UnitOfWork
from application.views import WorkflowView

__all__ = ["list_customer_workflows"]


async def list_customer_workflows(uow: UnitOfWork, customer: str | uuid.UUID) -> list[WorkflowView]:
    """A customer's (id, else name) stored workflows by name."""
    found = await uow.customers.find(customer)
    if found is None:
        raise NotFound(f"Customer {customer} not found")
    synced = found.last_successful_sync_at
    return [replace(w, last_synced_at=synced) for w in await uow.workflows.for_customer(found.id)]
