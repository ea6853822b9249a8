"""Reading a workflow's stored definitions (the current one or one by hash, the history, a diff):
the store's reads (``workflow_store.definitions``) with their errors as domain errors. The API
reads through here; the CLI's export and diff still call the store's functions themselves (their
one-line messages keep the store's wording, which the CLI tests pin)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store import definitions as store
from workflow_store.definition_diff import DefinitionDiff
from workflow_store.definitions import DefinitionVersion, StoredDefinition
from workflow_store.errors import CustomerNotFoundError

from application.errors import DefinitionHashAmbiguous, NotFound

__all__ = ["definition_diff", "definition_history", "load_definition"]

T = TypeVar("T")


async def _mapped(call: Awaitable[T]) -> T:
    try:
        return await call
    except (
        CustomerNotFoundError,
        store.WorkflowNotFoundError,
        store.DefinitionNotFoundError,
    ) as exc:
        raise NotFound(str(exc).capitalize()) from None
    except store.AmbiguousDefinitionHashError as exc:
        raise DefinitionHashAmbiguous(str(exc)) from None


async def load_definition(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int, content_hash: str | None = None
) -> StoredDefinition:
    """The current definition, or the one whose hash starts with ``content_hash``."""
    return await _mapped(store.load_definition(session, customer_id, zuora_id, content_hash))


async def definition_history(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int
) -> list[DefinitionVersion]:
    return list(await _mapped(store.definition_history(session, customer_id, zuora_id)))


async def definition_diff(
    session: AsyncSession,
    customer_id: uuid.UUID,
    zuora_id: int,
    *,
    from_hash: str | None = None,
    to_hash: str | None = None,
) -> tuple[DefinitionVersion, DefinitionVersion, DefinitionDiff]:
    """Two stored definitions (default: the one before the current, and the current) and what
    changed between them."""
    return await _mapped(
        store.diff_stored_definitions(
            session, customer_id, zuora_id, from_hash=from_hash, to_hash=to_hash
        )
    )
