"""Workflow reads for the JSON API: the queries are :mod:`application.workflow_reads`; this
module shapes the detail as the API's model (the list is served as plain data)."""

from __future__ import annotations

import uuid

from application import workflow_reads
from application.workflow_reads import TRIGGER_COLUMNS, list_workflows
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.schemas import WorkflowDetail

__all__ = ["TRIGGER_COLUMNS", "get_workflow", "list_workflows"]


async def get_workflow(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int
) -> WorkflowDetail:
    return WorkflowDetail(**await workflow_reads.get_workflow(session, customer_id, zuora_id))
