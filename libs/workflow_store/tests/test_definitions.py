"""Stored definitions on PostgreSQL and SQLite: current + history, tasks and linkages replaced
atomically, history pruned, reactivation, cascade with the workflow, reads and diffs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.crypto import SecretBox
from workflow_store.definitions import (
    AmbiguousDefinitionHashError,
    DefinitionNotFoundError,
    WorkflowNotFoundError,
    current_fingerprints,
    definition_history,
    diff_stored_definitions,
    load_definition,
    store_definitions,
)
from workflow_store.errors import CustomerNotFoundError
from workflow_store.models import (
    StoredWorkflow,
    WorkflowDefinition,
    WorkflowLinkage,
    WorkflowTask,
)

from .definition_docs import NOW, add_workflows, document, fetched, link, task


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_first_definitions_become_current_with_tasks_and_linkages(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10, 11)
    doc = document(tasks=[task(1, "Fetch", object="Invoice", tags=["a", "b"]), task(2, "Mail")])
    changes = await store_definitions(
        session, cid, [fetched(10, doc), fetched(11, document())], now=NOW
    )
    assert [(c.zuora_id, c.old_hash, c.tasks_added) for c in changes] == [
        (10, None, 2),
        (11, None, 2),
    ]
    stored = await load_definition(session, cid, 10)
    assert stored.document == doc and stored.info.is_current
    assert stored.info.version == "0.0.1" and stored.info.version_id == 7
    assert (stored.info.task_count, stored.info.linkage_count) == (2, 2)
    tasks = (await session.scalars(select(WorkflowTask).order_by(WorkflowTask.id))).all()
    assert [(t.task_id, t.name, t.object, t.tags) for t in tasks[:2]] == [
        (1, "Fetch", "Invoice", ["a", "b"]),
        (2, "Mail", None, []),
    ]
    assert all(t.customer_id == cid for t in tasks)
    links = (await session.scalars(select(WorkflowLinkage).order_by(WorkflowLinkage.id))).all()
    assert [
        (x.source_workflow_id, x.source_task_id, x.target_task_id, x.linkage_type)
        for x in links[:2]
    ] == [
        (7, None, 1, "Start"),
        (None, 1, 2, "Success"),
    ]
    prints = await current_fingerprints(session, cid)
    assert set(prints) == {10, 11}
    assert prints[10].listed_version_id == 7 and prints[10].checked_at == NOW


async def test_unchanged_export_only_records_the_check(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10)
    await store_definitions(session, cid, [fetched(10, document())], now=NOW)
    later = NOW + timedelta(days=1)
    again = fetched(10, document(), updated_at=later)
    assert await store_definitions(session, cid, [again], now=later) == []
    assert await _count(session, WorkflowDefinition) == 1
    print_ = (await current_fingerprints(session, cid))[10]
    assert print_.checked_at == later and print_.listed_updated_at == later
    assert (await load_definition(session, cid, 10)).info.fetched_at == NOW


async def test_changed_definition_replaces_tasks_and_keeps_history(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10)
    old = document()
    new = document(
        version_id=8,
        version="0.0.2",
        tasks=[task(1, "Fetch renamed"), task(3, "Query", "Query")],
        linkages=[link(None, 1, "Start", 8), link(1, 3, "Success")],
    )
    await store_definitions(session, cid, [fetched(10, old)], now=NOW)
    later = NOW + timedelta(hours=1)
    [change] = await store_definitions(session, cid, [fetched(10, new)], now=later)
    assert (change.tasks_added, change.tasks_removed, change.tasks_changed) == (1, 1, 1)
    assert change.old_hash != change.new_hash and change.old_hash is not None
    history = await definition_history(session, cid, 10)
    assert [(v.version, v.is_current) for v in history] == [("0.0.2", True), ("0.0.1", False)]
    names = set(await session.scalars(select(WorkflowTask.name)))
    assert names == {"Fetch renamed", "Query"}
    assert await _count(session, WorkflowLinkage) == 2

    before, after, diff = await diff_stored_definitions(session, cid, 10)
    assert (before.version, after.version) == ("0.0.1", "0.0.2")
    assert [t["id"] for t in diff.tasks_added] == [3]
    assert [t["id"] for t in diff.tasks_removed] == [2]
    assert [(c.task_id, [f.field for f in c.changes]) for c in diff.tasks_changed] == [
        (1, ["name"])
    ]
    assert diff.linkages_added == [
        {"source_task_id": 1, "target_task_id": 3, "linkage_type": "Success"}
    ]
    assert diff.linkages_removed == [
        {"source_task_id": 1, "target_task_id": 2, "linkage_type": "Success"}
    ]
    # The entry edge's source_workflow_id is the version id: a new version does not "change" it.
    assert {f.field for f in diff.workflow_changes} == {"id", "version"}


async def test_earlier_definition_reactivated_not_duplicated(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10)
    one, two = document(), document(version_id=8, version="0.0.2")
    await store_definitions(session, cid, [fetched(10, one)], now=NOW)
    await store_definitions(session, cid, [fetched(10, two)], now=NOW + timedelta(hours=1))
    [change] = await store_definitions(
        session, cid, [fetched(10, one)], now=NOW + timedelta(hours=2)
    )
    assert change.new_hash == fetched(10, one).content_hash
    history = await definition_history(session, cid, 10)
    assert [(v.version, v.is_current) for v in history] == [("0.0.1", True), ("0.0.2", False)]
    assert (await load_definition(session, cid, 10)).document == one


async def test_history_keeps_newest_n_and_never_the_current_out(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10)
    for i in range(6):
        doc = document(version_id=100 + i, version=f"0.0.{i}")
        await store_definitions(
            session, cid, [fetched(10, doc)], now=NOW + timedelta(minutes=i), history_limit=3
        )
    history = await definition_history(session, cid, 10)
    assert [v.version for v in history] == ["0.0.5", "0.0.4", "0.0.3"]
    assert history[0].is_current and sum(v.is_current for v in history) == 1


async def test_definitions_go_with_their_workflow(session: AsyncSession, box: SecretBox) -> None:
    cid = await add_workflows(session, box, 10, 11)
    await store_definitions(
        session, cid, [fetched(10, document()), fetched(11, document())], now=NOW
    )
    await session.execute(delete(StoredWorkflow).where(StoredWorkflow.zuora_id == 10))
    await session.flush()
    left = set(await session.scalars(select(WorkflowDefinition.workflow_id).distinct()))
    assert len(left) == 1
    assert await _count(session, WorkflowTask) == 2 and await _count(session, WorkflowLinkage) == 2


async def test_exports_of_unknown_workflows_are_ignored(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10)
    assert await store_definitions(session, cid, [fetched(99, document())], now=NOW) == []
    assert await _count(session, WorkflowDefinition) == 0


async def test_nul_characters_are_stripped_but_hash_is_of_the_original(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10)
    doc = document(tasks=[task(1, "bad\x00name")], linkages=[])
    item = fetched(10, doc)
    await store_definitions(session, cid, [item], now=NOW)
    stored = await load_definition(session, cid, 10)
    assert stored.document["tasks"][0]["name"] == "badname"
    assert stored.info.content_hash == item.content_hash
    assert await session.scalar(select(WorkflowTask.name)) == "badname"


async def test_odd_values_are_stored_safely(session: AsyncSession, box: SecretBox) -> None:
    cid = await add_workflows(session, box, 10)
    odd = {"id": 2**63 + 5, "name": 5, "action_type": {"x": 1}, "tags": ["t", 3]}
    doc = document(tasks=[odd, "not a task"], linkages=[{"target_task_id": "12"}, 4])
    await store_definitions(session, cid, [fetched(10, doc)], now=NOW)
    row = await session.scalar(select(WorkflowTask))
    assert row is not None
    assert (row.task_id, row.name, row.action_type, row.tags) == (None, "5", '{"x":1}', ["t", "3"])
    assert await session.scalar(select(WorkflowLinkage.target_task_id)) == 12


async def test_reads_name_what_is_missing(session: AsyncSession, box: SecretBox) -> None:
    import uuid

    cid = await add_workflows(session, box, 10)
    with pytest.raises(CustomerNotFoundError):
        await load_definition(session, uuid.uuid4(), 10)
    with pytest.raises(WorkflowNotFoundError):
        await load_definition(session, cid, 11)
    with pytest.raises(DefinitionNotFoundError, match="no definition fetched yet"):
        await load_definition(session, cid, 10)
    assert await definition_history(session, cid, 10) == []
    await store_definitions(session, cid, [fetched(10, document())], now=NOW)
    with pytest.raises(DefinitionNotFoundError, match="no definition stored before"):
        await diff_stored_definitions(session, cid, 10)
    with pytest.raises(DefinitionNotFoundError):
        await diff_stored_definitions(session, cid, 10, from_hash="ffffffff")


async def test_hash_prefixes_select_and_ambiguity_is_refused(
    session: AsyncSession, box: SecretBox
) -> None:
    cid = await add_workflows(session, box, 10)
    docs = [document(version_id=100 + i, version=f"0.{i}") for i in range(17)]
    for i, doc in enumerate(docs):
        await store_definitions(session, cid, [fetched(10, doc)], now=NOW + timedelta(minutes=i))
    hashes = [fetched(10, d).content_hash for d in docs]
    first, last = hashes[0], hashes[-1]
    stored = await load_definition(session, cid, 10, first[:10])
    assert stored.document == docs[0] and not stored.info.is_current
    before, after, diff = await diff_stored_definitions(
        session, cid, 10, from_hash=first[:12].upper(), to_hash=last
    )
    assert (before.content_hash, after.content_hash) == (first, last) and diff
    # 17 hashes over 16 possible first characters: some first character is shared.
    shared = next(c for c in "0123456789abcdef" if sum(h.startswith(c) for h in hashes) > 1)
    with pytest.raises(AmbiguousDefinitionHashError):
        await load_definition(session, cid, 10, shared)
    with pytest.raises(AmbiguousDefinitionHashError):
        await diff_stored_definitions(session, cid, 10, from_hash=shared)
