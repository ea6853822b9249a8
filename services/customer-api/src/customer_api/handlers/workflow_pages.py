"""The read pool of the list route's fast path: a psycopg pool handed to
:func:`application.workflow_pages.page_json`, which owns the SQL."""

from __future__ import annotations

import uuid

from application import workflow_pages
from application.workflow_pages import conninfo_for
from application.workflow_reads import WorkflowSort, WorkflowTrigger
from psycopg_pool import AsyncConnectionPool

__all__ = ["WorkflowPages", "conninfo_for"]


class WorkflowPages:
    """Pages of a customer's workflows as JSON bytes, straight from PostgreSQL."""

    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 5) -> None:
        # prepare_threshold=0: the statement is prepared on first use per connection, so each
        # request is one Bind/Execute round trip.
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0},
        )

    async def open(self) -> None:
        await self._pool.open()

    async def close(self) -> None:
        await self._pool.close()

    async def page_json(
        self,
        customer_id: uuid.UUID,
        *,
        page: int,
        page_size: int,
        q: str | None = None,
        status: str | None = None,
        trigger: WorkflowTrigger | None = None,
        sort: WorkflowSort = "name",
    ) -> bytes | None:
        """See :func:`application.workflow_pages.page_json`."""
        return await workflow_pages.page_json(
            self._pool,
            customer_id,
            page=page,
            page_size=page_size,
            q=q,
            status=status,
            trigger=trigger,
            sort=sort,
        )
