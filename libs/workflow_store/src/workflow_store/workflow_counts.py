"""Per-customer workflow counts on the customer row (``workflow_count``, ``active_workflow_count``).

The dashboard and the unfiltered workflows list show totals over every customer; counting
100,000 workflow rows per page view was most of those pages' server time. The counts live on
the customer row instead and are *recounted* (not incremented) from the workflows table in the
transaction that wrote the workflows, under the customer's sync lock: whatever the writes were
(inserts, updates that change a status, deletes), the committed count is the table's count, and
a count that was ever wrong (a row written by hand) is right again after the customer's next
sync. A customer's deletion takes its rows and its counts together.

"Active" is the workflow list's own filter (``lower(status) = 'active'``), so the dashboard's
figure and the list it links to agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Customer, StoredWorkflow

__all__ = ["is_active_workflow", "refresh_workflow_counts"]


def is_active_workflow() -> ColumnElement[bool]:
    """SQL: the stored workflow counts as active (the list's ``state=active`` filter)."""
    return func.lower(StoredWorkflow.status) == "active"


async def refresh_workflow_counts(session: AsyncSession, customer_ids: Iterable[uuid.UUID]) -> None:
    """Recount the customers' stored workflows onto their rows, in the caller's transaction.

    One customer costs an index range scan over its own workflows, whatever the table's size.
    """
    for customer_id in dict.fromkeys(customer_ids):
        of_customer = StoredWorkflow.customer_id == customer_id
        total = select(func.count()).select_from(StoredWorkflow).where(of_customer)
        active = total.where(is_active_workflow())
        await session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(
                workflow_count=total.scalar_subquery(),
                active_workflow_count=active.scalar_subquery(),
                # A recount is no edit of the customer: keep its updated_at.
                updated_at=Customer.updated_at,
            )
            .execution_options(synchronize_session=False)
        )
