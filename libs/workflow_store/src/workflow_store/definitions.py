"""Workflow definitions: each distinct export of a workflow kept as history, the current one's
tasks and linkages in their own tables for search.

Write side (:func:`store_definitions`) runs inside the sync's write transaction; read side
(:func:`load_definition`, :func:`definition_history`, :func:`diff_stored_definitions`) serves the
API, the CLI and the UI. Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .definition_diff import DefinitionDiff, diff_documents, task_key
from .errors import CustomerNotFoundError, StoreError
from .models import (
    Customer,
    StoredWorkflow,
    UTCDateTime,
    WorkflowDefinition,
    WorkflowLinkage,
    WorkflowTask,
)

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "AmbiguousDefinitionHashError",
    "DefinitionChange",
    "DefinitionFingerprint",
    "DefinitionNotFoundError",
    "DefinitionVersion",
    "FetchedDefinition",
    "StoredDefinition",
    "WorkflowNotFoundError",
    "canonical_document",
    "current_fingerprints",
    "definition_history",
    "diff_stored_definitions",
    "load_definition",
    "store_definitions",
]

DEFAULT_HISTORY_LIMIT = 20
_CHUNK = 500
_INT64 = range(-(2**63), 2**63)

D = WorkflowDefinition
# The Tables, for Core executemany (the ORM bulk paths cost several times the CPU per row).
_DEFINITIONS = D.metadata.tables[D.__tablename__]
_TASKS = D.metadata.tables[WorkflowTask.__tablename__]
_LINKAGES = D.metadata.tables[WorkflowLinkage.__tablename__]


class WorkflowNotFoundError(StoreError):
    def __init__(self, customer_id: uuid.UUID, zuora_id: int) -> None:
        super().__init__(f"workflow {zuora_id} of customer {customer_id} not found")


class DefinitionNotFoundError(StoreError):
    """The workflow has no stored definition (yet), or none with the given hash."""


class AmbiguousDefinitionHashError(StoreError):
    """A hash prefix matches more than one stored definition of the workflow."""


# -- documents -------------------------------------------------------------------------------


def canonical_document(document: Mapping[str, Any]) -> tuple[bytes, str]:
    """The canonical JSON of an export body (sorted keys, compact) and its SHA-256."""
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return canonical, hashlib.sha256(canonical).hexdigest()


def _without_nul(value: Any) -> Any:
    # PostgreSQL text and jsonb cannot hold NUL; the hash was taken over the original.
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _first(item: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = item.get(key)
        if value is not None:
            return value
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and value in _INT64 else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [t if isinstance(t, str) else orjson.dumps(t).decode() for t in value]


# Column order of the rows below: COPY writes tuples in this order; the executemany path
# (SQLite) zips them into dicts.
_TASK_COLUMNS = ("workflow_id", "customer_id", "task_id", "name", "action_type", "object",
                 "call_type", "tags")  # fmt: skip
_LINKAGE_COLUMNS = ("workflow_id", "source_workflow_id", "source_task_id", "target_task_id",
                    "linkage_type")  # fmt: skip
_DEFINITION_COLUMNS = ("workflow_id", "content_hash", "version_id", "version", "document",
                       "task_count", "linkage_count", "is_current", "fetched_at", "checked_at",
                       "listed_version_id", "listed_version", "listed_updated_at")  # fmt: skip


def _task_rows(
    document: Mapping[str, Any], workflow_id: int, customer_id: uuid.UUID
) -> list[tuple[Any, ...]]:
    return [
        (
            workflow_id,
            customer_id,
            _int(task.get("id")),
            _text(task.get("name")),
            _text(_first(task, "action_type", "actionType")),
            _text(task.get("object")),
            _text(_first(task, "call_type", "callType")),
            _tags(task.get("tags")),
        )
        for task in _objects(document.get("tasks"))
    ]


def _linkage_rows(document: Mapping[str, Any], workflow_id: int) -> list[tuple[Any, ...]]:
    return [
        (
            workflow_id,
            _int(_first(link, "source_workflow_id", "sourceWorkflowId")),
            _int(_first(link, "source_task_id", "sourceTaskId")),
            _int(_first(link, "target_task_id", "targetTaskId")),
            _text(_first(link, "linkage_type", "linkageType")),
        )
        for link in _objects(document.get("linkages"))
    ]


def _version_of(document: Mapping[str, Any]) -> tuple[int | None, str | None]:
    workflow = document.get("workflow")
    if not isinstance(workflow, Mapping):
        return None, None
    version = workflow.get("version")
    return _int(workflow.get("id")), None if version is None else _text(version)


# -- write side (the sync) -------------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionFingerprint:
    """What decides whether a workflow's export is fetched again."""

    listed_version_id: int | None
    listed_version: str | None
    listed_updated_at: datetime | None
    checked_at: datetime
    content_hash: str


@dataclass(frozen=True)
class FetchedDefinition:
    """One export fetched from Zuora, kept as canonical bytes (compact) until it is written."""

    zuora_id: int
    canonical: bytes
    content_hash: str
    listed_version_id: int | None
    listed_version: str | None
    listed_updated_at: datetime | None


@dataclass(frozen=True)
class DefinitionChange:
    """A workflow whose current definition is new or different after this write."""

    zuora_id: int
    old_hash: str | None
    new_hash: str
    tasks_added: int
    tasks_removed: int
    tasks_changed: int


async def current_fingerprints(
    session: AsyncSession, customer_id: uuid.UUID
) -> dict[int, DefinitionFingerprint]:
    """Zuora id -> the fingerprint of its current definition, for the customer's workflows."""
    rows = await session.execute(
        select(
            StoredWorkflow.zuora_id,
            D.listed_version_id,
            D.listed_version,
            D.listed_updated_at,
            D.checked_at,
            D.content_hash,
        )
        .join(D, D.workflow_id == StoredWorkflow.id)
        .where(StoredWorkflow.customer_id == customer_id, D.is_current.is_(True))
    )
    return {int(row[0]): DefinitionFingerprint(*row[1:]) for row in rows.all()}


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _listed(fetched: FetchedDefinition, now: datetime) -> dict[str, Any]:
    return {
        "checked_at": now,
        "listed_version_id": fetched.listed_version_id,
        "listed_version": fetched.listed_version,
        "listed_updated_at": fetched.listed_updated_at,
    }


@dataclass
class _Current:
    id: int
    content_hash: str


async def store_definitions(
    session: AsyncSession,
    customer_id: uuid.UUID,
    fetched: Sequence[FetchedDefinition],
    *,
    now: datetime,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
) -> list[DefinitionChange]:
    """Write fetched exports: an unchanged one only records the check; a new or different one
    becomes current (a definition seen before is reactivated, not duplicated), its tasks and
    linkages replace the old ones, and history beyond ``history_limit`` is dropped (oldest first,
    never the current one). Exports of workflows not stored (gone from the listing) are ignored.
    Runs in the caller's transaction, so each definition is replaced atomically."""
    if not fetched:
        return []
    workflow_ids: dict[int, int] = {}
    for chunk in _chunks([f.zuora_id for f in fetched]):
        rows = await session.execute(
            select(StoredWorkflow.zuora_id, StoredWorkflow.id).where(
                StoredWorkflow.customer_id == customer_id, StoredWorkflow.zuora_id.in_(chunk)
            )
        )
        workflow_ids.update({int(z): int(i) for z, i in rows.all()})
    current: dict[int, _Current] = {}
    for chunk in _chunks(list(workflow_ids.values())):
        current_rows = await session.execute(
            select(D.workflow_id, D.id, D.content_hash).where(
                D.workflow_id.in_(chunk), D.is_current.is_(True)
            )
        )
        current.update({int(w): _Current(int(i), h) for w, i, h in current_rows.all()})

    checked: list[dict[str, Any]] = []
    changed: list[tuple[int, FetchedDefinition]] = []
    for item in fetched:
        workflow_id = workflow_ids.get(item.zuora_id)
        if workflow_id is None:
            continue
        cur = current.get(workflow_id)
        if cur is not None and cur.content_hash == item.content_hash:
            checked.append({"b_id": cur.id, **_listed(item, now)})
        else:
            changed.append((workflow_id, item))
    table = _DEFINITIONS
    if checked:
        await session.execute(
            update(table).where(table.c.id == bindparam("b_id")),
            checked,
            execution_options={"synchronize_session": False},
        )
    if not changed:
        return []
    return await _replace_current(
        session, customer_id, changed, current, now=now, history_limit=history_limit
    )


async def _replace_current(
    session: AsyncSession,
    customer_id: uuid.UUID,
    changed: list[tuple[int, FetchedDefinition]],
    current: dict[int, _Current],
    *,
    now: datetime,
    history_limit: int,
) -> list[DefinitionChange]:
    table = _DEFINITIONS
    changed_ids = [workflow_id for workflow_id, _ in changed]
    history: dict[int, list[tuple[int, str, datetime]]] = {w: [] for w in changed_ids}
    old_documents: dict[int, Any] = {}
    for chunk in _chunks(changed_ids):
        history_rows = await session.execute(
            select(D.workflow_id, D.id, D.content_hash, D.fetched_at).where(
                D.workflow_id.in_(chunk)
            )
        )
        for workflow_id, def_id, content_hash, fetched_at in history_rows.all():
            history[int(workflow_id)].append((int(def_id), content_hash, fetched_at))
    old_ids = [current[w].id for w in changed_ids if w in current]
    for chunk in _chunks(old_ids):
        doc_rows = await session.execute(select(D.id, D.document).where(D.id.in_(chunk)))
        old_documents.update({int(i): doc for i, doc in doc_rows.all()})
        await session.execute(update(table).where(table.c.id.in_(chunk)).values(is_current=False))
    for chunk in _chunks(changed_ids):
        await session.execute(delete(WorkflowTask).where(WorkflowTask.workflow_id.in_(chunk)))
        await session.execute(delete(WorkflowLinkage).where(WorkflowLinkage.workflow_id.in_(chunk)))

    inserts: list[tuple[Any, ...]] = []
    reactivations: list[dict[str, Any]] = []
    tasks: list[tuple[Any, ...]] = []
    linkages: list[tuple[Any, ...]] = []
    changes: list[DefinitionChange] = []
    doomed: list[int] = []
    for workflow_id, item in changed:
        document = orjson.loads(item.canonical)
        stored_json = item.canonical
        if b"\\u0000" in item.canonical:
            document = _without_nul(document)
            stored_json = orjson.dumps(document)
        task_rows = _task_rows(document, workflow_id, customer_id)
        link_rows = _linkage_rows(document, workflow_id)
        tasks.extend(task_rows)
        linkages.extend(link_rows)
        earlier = {h: def_id for def_id, h, _ in history[workflow_id]}
        if item.content_hash in earlier:  # an earlier version is current again
            reactivations.append(
                {"b_id": earlier[item.content_hash], "is_current": True, "fetched_at": now}
                | _listed(item, now)
            )
        else:
            version_id, version = _version_of(document)
            inserts.append(
                (
                    workflow_id,
                    item.content_hash,
                    version_id,
                    version,
                    _StoredJSON(stored_json, document),
                    len(task_rows),
                    len(link_rows),
                    True,
                    now,
                    now,
                    item.listed_version_id,
                    item.listed_version,
                    item.listed_updated_at,
                )
            )
        kept = sorted(
            (
                (fetched_at, def_id)
                for def_id, h, fetched_at in history[workflow_id]
                if h != item.content_hash
            ),
            reverse=True,
        )
        doomed.extend(def_id for _, def_id in kept[max(0, history_limit - 1) :])
        cur = current.get(workflow_id)
        old_document = old_documents.get(cur.id) if cur is not None else None
        changes.append(_change(item, cur, old_document, document))
    for chunk in _chunks(doomed):
        await session.execute(delete(table).where(table.c.id.in_(chunk)))
    if reactivations:
        await session.execute(
            update(table).where(table.c.id == bindparam("b_id")),
            reactivations,
            execution_options={"synchronize_session": False},
        )
    await _insert(session, table, _DEFINITION_COLUMNS, inserts)
    await _insert(session, _TASKS, _TASK_COLUMNS, tasks)
    await _insert(session, _LINKAGES, _LINKAGE_COLUMNS, linkages)
    return changes


def _change(
    item: FetchedDefinition, cur: _Current | None, old: Any, document: Mapping[str, Any]
) -> DefinitionChange:
    if not old:  # a first definition: every task is added (the diff's count, without the diff)
        added = len({task_key(t, i) for i, t in enumerate(_objects(document.get("tasks")))})
        counts = (added, 0, 0)
    else:
        diff = diff_documents(old, document)
        counts = (len(diff.tasks_added), len(diff.tasks_removed), len(diff.tasks_changed))
    return DefinitionChange(
        zuora_id=item.zuora_id,
        old_hash=cur.content_hash if cur is not None else None,
        new_hash=item.content_hash,
        tasks_added=counts[0],
        tasks_removed=counts[1],
        tasks_changed=counts[2],
    )


@dataclass(frozen=True)
class _StoredJSON:
    """A document to store: its JSON text (for COPY) and the object (for executemany)."""

    text: bytes
    value: Any


def _utc(value: datetime | None) -> datetime | None:
    # What UTCDateTime's bind processing does on PostgreSQL (COPY bypasses the type).
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _copy_supported(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _insert(
    session: AsyncSession, table: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order): COPY on PostgreSQL, on the session's own
    connection, so in the caller's transaction; an executemany elsewhere (SQLite). The tasks
    and linkages of a first sync are tens of rows per workflow: COPY costs a fraction of the
    client CPU of an executemany (no per-row bind processing, one stream)."""
    if not rows:
        return
    if not _copy_supported(session):
        await session.execute(table.insert(), [_as_params(columns, row) for row in rows])
        return
    # COPY's text format: the server parses each value as its column's type, so JSON columns
    # get JSON text, and timestamps are normalised as UTCDateTime's bind processing would.
    jsons = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    times = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, UTCDateTime)]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = list(row)
            for i in jsons:
                value = values[i]
                values[i] = (
                    value.text.decode()
                    if isinstance(value, _StoredJSON)
                    else orjson.dumps(value).decode()
                )
            for i in times:
                values[i] = _utc(values[i])
            await copy.write_row(values)


def _as_params(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        c: (v.value if isinstance(v, _StoredJSON) else v) for c, v in zip(columns, row, strict=True)
    }


# -- read side (API, CLI, UI) ----------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionVersion:
    """One stored definition, without its document (a history entry)."""

    content_hash: str
    version_id: int | None
    version: str | None
    task_count: int
    linkage_count: int
    fetched_at: datetime
    checked_at: datetime
    is_current: bool


@dataclass(frozen=True)
class StoredDefinition:
    """One stored definition with its document and the workflow it belongs to."""

    zuora_id: int
    workflow_name: str
    info: DefinitionVersion
    document: dict[str, Any]


_VERSION_COLUMNS = (
    D.content_hash,
    D.version_id,
    D.version,
    D.task_count,
    D.linkage_count,
    D.fetched_at,
    D.checked_at,
    D.is_current,
)


async def _workflow(session: AsyncSession, customer_id: uuid.UUID, zuora_id: int) -> Any:
    row = (
        await session.execute(
            select(Customer.id, StoredWorkflow.id, StoredWorkflow.name)
            .select_from(Customer)
            .outerjoin(
                StoredWorkflow,
                (StoredWorkflow.customer_id == Customer.id) & (StoredWorkflow.zuora_id == zuora_id),
            )
            .where(Customer.id == customer_id)
        )
    ).first()
    if row is None:
        raise CustomerNotFoundError(customer_id)
    if row[1] is None:
        raise WorkflowNotFoundError(customer_id, zuora_id)
    return row


async def definition_history(
    session: AsyncSession, customer_id: uuid.UUID, zuora_id: int
) -> list[DefinitionVersion]:
    """The workflow's stored definitions, newest first (empty before the first fetch)."""
    workflow = await _workflow(session, customer_id, zuora_id)
    rows = await session.execute(
        select(*_VERSION_COLUMNS)
        .where(D.workflow_id == workflow[1])
        .order_by(D.fetched_at.desc(), D.id.desc())
    )
    return [DefinitionVersion(*row) for row in rows.all()]


def _match(history: Sequence[DefinitionVersion], prefix: str, zuora_id: int) -> DefinitionVersion:
    wanted = prefix.lower()
    matches = [v for v in history if v.content_hash.startswith(wanted)]
    if not matches:
        raise DefinitionNotFoundError(f"workflow {zuora_id} has no stored definition {prefix!r}")
    if len(matches) > 1:
        raise AmbiguousDefinitionHashError(
            f"{prefix!r} matches {len(matches)} stored definitions of workflow {zuora_id}"
        )
    return matches[0]


async def load_definition(
    session: AsyncSession,
    customer_id: uuid.UUID,
    zuora_id: int,
    content_hash: str | None = None,
) -> StoredDefinition:
    """The current definition, or the stored one whose hash starts with ``content_hash``."""
    workflow = await _workflow(session, customer_id, zuora_id)
    condition = (
        D.is_current.is_(True)
        if content_hash is None
        else D.content_hash.startswith(content_hash.lower(), autoescape=True)
    )
    rows = (
        await session.execute(
            select(*_VERSION_COLUMNS, D.document).where(D.workflow_id == workflow[1], condition)
        )
    ).all()
    if not rows:
        what = "no definition fetched yet" if content_hash is None else "no such definition"
        raise DefinitionNotFoundError(f"workflow {zuora_id}: {what}")
    if len(rows) > 1:
        raise AmbiguousDefinitionHashError(
            f"{content_hash!r} matches {len(rows)} stored definitions of workflow {zuora_id}"
        )
    row = rows[0]
    return StoredDefinition(
        zuora_id=zuora_id,
        workflow_name=workflow[2],
        info=DefinitionVersion(*row[:-1]),
        document=row[-1],
    )


async def diff_stored_definitions(
    session: AsyncSession,
    customer_id: uuid.UUID,
    zuora_id: int,
    *,
    from_hash: str | None = None,
    to_hash: str | None = None,
) -> tuple[DefinitionVersion, DefinitionVersion, DefinitionDiff]:
    """Diff two stored definitions (hashes or unique prefixes). ``to`` defaults to the current
    one, ``from`` to the one stored just before ``to``."""
    history = await definition_history(session, customer_id, zuora_id)
    if not history:
        raise DefinitionNotFoundError(f"workflow {zuora_id}: no definition fetched yet")
    if to_hash is None:
        to_version = next((v for v in history if v.is_current), history[0])
    else:
        to_version = _match(history, to_hash, zuora_id)
    if from_hash is None:
        older = history[history.index(to_version) + 1 :]
        if not older:
            raise DefinitionNotFoundError(
                f"workflow {zuora_id} has no definition stored before {to_version.content_hash}"
            )
        from_version = older[0]
    else:
        from_version = _match(history, from_hash, zuora_id)
    rows = await session.execute(
        select(D.content_hash, D.document)
        .join(StoredWorkflow, StoredWorkflow.id == D.workflow_id)
        .where(
            StoredWorkflow.customer_id == customer_id,
            StoredWorkflow.zuora_id == zuora_id,
            D.content_hash.in_({from_version.content_hash, to_version.content_hash}),
        )
    )
    documents = {content_hash: document for content_hash, document in rows.all()}
    diff = diff_documents(documents[from_version.content_hash], documents[to_version.content_hash])
    return from_version, to_version, diff
