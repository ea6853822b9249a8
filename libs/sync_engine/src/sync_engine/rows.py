"""Mapping a Zuora workflow to a `workflows` row (typed columns + raw item + hash)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from zuora_client import Workflow


def workflow_row(
    customer_id: uuid.UUID, workflow: Workflow, content_hash: str, now: datetime
) -> dict[str, Any]:
    version = workflow.active_version
    return {
        "customer_id": customer_id,
        "zuora_id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "status": workflow.status,
        "active_version_id": version.id if version else None,
        "active_version": version.version if version else None,
        "active_version_status": version.status if version else None,
        "active_version_type": version.type if version else None,
        "callout_trigger": workflow.callout_trigger,
        "ondemand_trigger": workflow.ondemand_trigger,
        "scheduled_trigger": workflow.scheduled_trigger,
        "interval": workflow.interval,
        "timezone": workflow.timezone,
        "priority": workflow.priority,
        "zuora_created_at": workflow.created_at,
        "zuora_updated_at": workflow.updated_at,
        "raw": workflow.raw,
        "content_hash": content_hash,
        "first_seen_at": now,
        "last_changed_at": now,
    }


# Columns an update rewrites: everything but the identity and the first-seen time.
UPDATABLE_COLUMNS = (
    "name",
    "description",
    "status",
    "active_version_id",
    "active_version",
    "active_version_status",
    "active_version_type",
    "callout_trigger",
    "ondemand_trigger",
    "scheduled_trigger",
    "interval",
    "timezone",
    "priority",
    "zuora_created_at",
    "zuora_updated_at",
    "raw",
    "content_hash",
    "last_changed_at",
)
