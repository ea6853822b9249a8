"""Export documents and stored workflows for the definition tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer
from workflow_store.definitions import FetchedDefinition, canonical_document
from workflow_store.models import StoredWorkflow

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def task(task_id: int, name: str, action_type: str = "Callout", **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": name,
        "action_type": action_type,
        "object": extra.pop("object", None),
        "call_type": extra.pop("call_type", "SOAP"),
        "tags": extra.pop("tags", []),
        "css": extra.pop("css", {"top": "40px", "left": f"{task_id}px"}),
        "parameters": extra.pop("parameters", {}),
        **extra,
    }


def link(source: int | None, target: int, linkage_type: str, version_id: int = 7) -> dict[str, Any]:
    return {
        "source_workflow_id": version_id if source is None else None,
        "source_task_id": source,
        "target_task_id": target,
        "linkage_type": linkage_type,
    }


def document(
    version_id: int = 7,
    version: str = "0.0.1",
    tasks: list[Any] | None = None,  # Any: tests hand in malformed entries on purpose
    linkages: list[Any] | None = None,
    **workflow: Any,
) -> dict[str, Any]:
    tasks = tasks if tasks is not None else [task(1, "Fetch"), task(2, "Mail", "Email")]
    if linkages is None:
        linkages = [link(None, 1, "Start", version_id), link(1, 2, "Success")]
    return {
        "workflow": {
            "id": version_id,
            "name": workflow.pop("name", "Invoice run"),
            "version": version,
            "type": "Workflow::Setup",
            **workflow,
        },
        "tasks": tasks,
        "linkages": linkages,
    }


def fetched(zuora_id: int, doc: dict[str, Any], **listed: Any) -> FetchedDefinition:
    canonical, content_hash = canonical_document(doc)
    return FetchedDefinition(
        zuora_id=zuora_id,
        canonical=canonical,
        content_hash=content_hash,
        listed_version_id=listed.get("version_id", doc["workflow"]["id"]),
        listed_version=listed.get("version", doc["workflow"]["version"]),
        listed_updated_at=listed.get("updated_at", NOW),
    )


async def add_workflows(
    session: AsyncSession, box: SecretBox, *zuora_ids: int, name: str = "acme"
) -> uuid.UUID:
    customer = await add_customer(
        session, box, name=name, base_url="https://x", client_id="c", client_secret="s"
    )
    for zuora_id in zuora_ids:
        session.add(
            StoredWorkflow(
                customer_id=customer.id,
                zuora_id=zuora_id,
                name=f"Workflow {zuora_id}",
                raw={"id": zuora_id},
                content_hash="0" * 64,
            )
        )
    await session.flush()
    return customer.id
