"""Mapping a Zuora workflow to a `workflows` row (typed columns + raw item + hash).

Values from Zuora are made storable here, never refused: PostgreSQL rejects NUL characters in
text and JSONB, and bounded columns reject longer strings, and either would fail the whole
customer's write. So NULs are stripped, strings are cut to their column's length (the raw item
keeps everything but the NULs), and a version id outside BIGINT is left out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String
from workflow_store.models import WORKFLOW_KEY_COLUMNS, StoredWorkflow
from zuora_client import MAX_WORKFLOW_ID, Workflow

_COLUMNS = StoredWorkflow.__table__.columns
_NUL = "\x00"


def _length_of(name: str) -> int | None:
    column_type = _COLUMNS[name].type
    return column_type.length if isinstance(column_type, String) else None


# Read once: looked up for every text column of every row written.
_LENGTHS: dict[str, int | None] = {column.name: _length_of(column.name) for column in _COLUMNS}
# How a NUL character shows in JSON (orjson writes it escaped, never raw).
_NUL_IN_JSON = b"\\u0000"


def without_nul(value: Any) -> Any:
    """``value`` (JSON-like) with NUL characters removed from every string and key.

    A dict or list holding no NUL at all (nearly always) is returned as it is, after one
    serialisation to look for one, instead of being rebuilt value by value."""
    if isinstance(value, dict | list):
        try:
            if _NUL_IN_JSON not in orjson.dumps(value):
                return value
        except TypeError:  # not JSON-serialisable as a whole (non-str keys, ...): walk it
            pass
        return _strip_nul(value)
    return _strip_nul(value)


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(_NUL, "") if _NUL in value else value
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if _NUL in value:
        value = value.replace(_NUL, "")
    limit = _LENGTHS[name]
    return value[:limit] if limit is not None else value


def _bigint(value: int | None) -> int | None:
    return value if value is not None and -MAX_WORKFLOW_ID - 1 <= value <= MAX_WORKFLOW_ID else None


def stored_request_id(request_id: str | None) -> str | None:
    """A Zuora-Request-Id fit for ``sync_runs.zuora_request_id`` (64 characters)."""
    return request_id[:64] if request_id else request_id


def workflow_row(
    customer_id: uuid.UUID, workflow: Workflow, content_hash: str, now: datetime
) -> dict[str, Any]:
    version = workflow.active_version
    return {
        "customer_id": customer_id,
        "zuora_id": workflow.id,
        "name": _text("name", workflow.name),
        "description": _text("description", workflow.description),
        "status": _text("status", workflow.status),
        "active_version_id": _bigint(version.id) if version else None,
        "active_version": _text("active_version", version.version) if version else None,
        "active_version_status": _text("active_version_status", version.status)
        if version
        else None,
        "active_version_type": _text("active_version_type", version.type) if version else None,
        "callout_trigger": workflow.callout_trigger,
        "ondemand_trigger": workflow.ondemand_trigger,
        "scheduled_trigger": workflow.scheduled_trigger,
        "interval": _text("interval", workflow.interval),
        "timezone": _text("timezone", workflow.timezone),
        "priority": _text("priority", workflow.priority),
        "zuora_created_at": workflow.created_at,
        "zuora_updated_at": workflow.updated_at,
        "raw": without_nul(workflow.raw),
        "content_hash": content_hash,
        "first_seen_at": now,
        "last_changed_at": now,
    }


UPDATABLE_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in _COLUMNS if c.name not in (*WORKFLOW_KEY_COLUMNS, "first_seen_at")
)
"""Columns an update rewrites: everything but the identity and the first-seen time (derived from
the table, so a new column is rewritten too; ``workflow_row`` must give it a value)."""
