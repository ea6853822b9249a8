"""Workflow definitions for the JSON API, from the database only: the current one, a download,
the history and a diff. The reads are ``application.definitions`` (the store's reads, raising
domain errors); this module shapes their results as JSON."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import asdict
from typing import Any

from application import definitions
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.definition_diff import DefinitionDiff
from workflow_store.definitions import DefinitionVersion, StoredDefinition

__all__ = [
    "definition_download",
    "definition_history_view",
    "definition_view",
    "diff_view",
    "download_file_name",
]


def _version(info: DefinitionVersion) -> dict[str, Any]:
    return {
        "content_hash": info.content_hash,
        "version": info.version,
        "version_id": info.version_id,
        "task_count": info.task_count,
        "linkage_count": info.linkage_count,
        "fetched_at": info.fetched_at,
        "checked_at": info.checked_at,
        "current": info.is_current,
    }


def _definition(stored: StoredDefinition) -> dict[str, Any]:
    document = stored.document
    return {
        "zuora_id": stored.zuora_id,
        "workflow": document.get("workflow"),
        "tasks": document.get("tasks") or [],
        "linkages": document.get("linkages") or [],
        "version": stored.info.version,
        "version_id": stored.info.version_id,
        "content_hash": stored.info.content_hash,
        "fetched_at": stored.info.fetched_at,
        "checked_at": stored.info.checked_at,
        "current": stored.info.is_current,
    }


async def definition_view(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int, content_hash: str | None = None
) -> dict[str, Any]:
    return _definition(
        await definitions.load_definition(session, customer_id, zuora_id, content_hash)
    )


def download_file_name(workflow_name: str, zuora_id: int, content_hash: str) -> str:
    """A file name safe on every system and in a header: ASCII letters, digits, '-' and '_'."""
    ascii_name = unicodedata.normalize("NFKD", workflow_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-").lower()[:80] or "workflow"
    return f"{slug}-{zuora_id}-{content_hash[:12]}.json"


async def definition_download(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int
) -> tuple[dict[str, Any], str]:
    """The export document as stored, and the file name to offer it under."""
    stored = await definitions.load_definition(session, customer_id, zuora_id)
    name = download_file_name(stored.workflow_name, zuora_id, stored.info.content_hash)
    return stored.document, name


async def definition_history_view(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int
) -> dict[str, Any]:
    history = await definitions.definition_history(session, customer_id, zuora_id)
    return {"zuora_id": zuora_id, "items": [_version(v) for v in history]}


def _diff(diff: DefinitionDiff) -> dict[str, Any]:
    return {
        "tasks_added": diff.tasks_added,
        "tasks_removed": diff.tasks_removed,
        "tasks_changed": [
            {"task_id": c.task_id, "name": c.name, "changes": [asdict(f) for f in c.changes]}
            for c in diff.tasks_changed
        ],
        "linkages_added": diff.linkages_added,
        "linkages_removed": diff.linkages_removed,
        "workflow_changes": [asdict(f) for f in diff.workflow_changes],
    }


async def diff_view(
    session: AsyncSession,
    customer_id: uuid.UUID,
    zuora_id: int,
    *,
    from_hash: str | None = None,
    to_hash: str | None = None,
) -> dict[str, Any]:
    before, after, diff = await definitions.definition_diff(
        session, customer_id, zuora_id, from_hash=from_hash, to_hash=to_hash
    )
    return {"zuora_id": zuora_id, "from": _version(before), "to": _version(after), **_diff(diff)}
