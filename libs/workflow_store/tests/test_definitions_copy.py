"""On PostgreSQL, store_definitions writes its rows with COPY; SQLite (and, before, PostgreSQL)
with an executemany. Both paths must leave exactly the same rows: the same sequence of stores is
run for two customers, one through each path, and every row of the definitions, tasks and
linkages tables is compared (surrogate ids by their order, workflows by their Zuora id)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store import definitions
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.definitions import DefinitionChange, store_definitions
from workflow_store.migrate import upgrade_async
from workflow_store.models import (
    StoredWorkflow,
    WorkflowDefinition,
    WorkflowLinkage,
    WorkflowTask,
)

from .definition_docs import NOW, add_workflows, document, fetched, link, task


@pytest.fixture
async def pg_session(postgres_url: str) -> AsyncIterator[AsyncSession]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


def _steps() -> list[tuple[list[tuple[int, dict[str, Any]]], int]]:
    """(exports stored at once, history limit) in order: first definitions, a change, an
    idempotent re-store, a reactivation, pruning, NUL characters, odd values, camelCase keys."""
    camel = {
        "workflow": {"id": 30, "version": 3, "name": "camel"},
        "tasks": [
            {"id": 1, "name": "A", "actionType": "Email", "callType": "REST", "tags": ["x"]},
            {"id": 2, "name": "B", "action_type": None, "actionType": "If"},
        ],
        "linkages": [
            {"sourceWorkflowId": 30, "sourceTaskId": None, "targetTaskId": 1, "linkageType": "S"},
            {"sourceTaskId": 1, "targetTaskId": 2, "linkageType": "True"},
        ],
    }
    odd = document(
        tasks=[
            {"id": 2**63 + 5, "name": 5, "action_type": {"x": 1}, "tags": ["t", 3]},
            "not a task",
            {"id": "17", "name": "tab\there\nnewline \\ back", "object": "Invoice"},
        ],
        linkages=[{"target_task_id": "12"}, 4, {"target_task_id": 2, "linkage_type": "é ✓"}],
    )
    many = [task(i, f"T{i}", tags=[f"g{i % 3}"]) for i in range(1, 61)]
    big = document(tasks=many, linkages=[link(i, i + 1, "Success") for i in range(1, 60)])
    v2 = document(
        version_id=8,
        version="0.0.2",
        tasks=[task(1, "Fetch renamed"), task(3, "Query", "Query")],
        linkages=[link(None, 1, "Start", 8), link(1, 3, "Success")],
    )
    return [
        ([(10, document()), (11, big), (12, document(name="other"))], 20),
        ([(10, v2), (11, big)], 20),  # 10 changes, 11 re-stored unchanged
        ([(10, v2), (11, big), (12, document(name="other"))], 20),  # idempotent
        ([(10, document())], 20),  # the first version is current again (reactivated)
        ([(12, document(version_id=100, version="0.1.0"))], 2),
        ([(12, document(version_id=200, version="0.2.0"))], 2),  # prunes 12's history to 2
        ([(13, document(tasks=[task(1, "bad\x00name")], linkages=[]))], 20),
        ([(14, odd), (15, camel), (16, document(tasks=[], linkages=[]))], 20),
        ([(15, camel), (14, big)], 20),
    ]


async def _rows(session: AsyncSession, customer_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    zuora = dict(
        (
            await session.execute(
                select(StoredWorkflow.id, StoredWorkflow.zuora_id).where(
                    StoredWorkflow.customer_id == customer_id
                )
            )
        ).all()
    )
    out: dict[str, list[tuple[Any, ...]]] = {}
    for model in (WorkflowDefinition, WorkflowTask, WorkflowLinkage):
        table: Any = model.__table__
        rows = (
            await session.execute(
                select(table).where(table.c.workflow_id.in_(zuora)).order_by(table.c.id)
            )
        ).mappings()
        out[model.__tablename__] = [
            tuple(
                (key, zuora[value] if key == "workflow_id" else value)
                for key, value in row.items()
                if key not in ("id", "customer_id")
            )
            for row in rows
        ]
    tasks: Any = WorkflowTask.__table__
    owners = await session.scalars(
        select(tasks.c.customer_id).where(tasks.c.workflow_id.in_(zuora)).distinct()
    )
    assert set(owners) == {customer_id}  # the one column left out of the comparison
    return out


async def test_copy_path_writes_what_the_executemany_path_wrote(
    pg_session: AsyncSession, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = pg_session
    assert definitions._copy_supported(session)  # the path under test is the COPY one
    ids = (10, 11, 12, 13, 14, 15, 16)
    via_copy = await add_workflows(session, box, *ids, name="copy")
    via_executemany = await add_workflows(session, box, *ids, name="executemany")
    changes: dict[uuid.UUID, list[list[DefinitionChange]]] = {
        via_copy: [],
        via_executemany: [],
    }
    snapshots: list[dict[str, list[tuple[Any, ...]]]] = []
    for index, (exports, limit) in enumerate(_steps()):
        now = NOW + timedelta(minutes=index)
        for customer_id, copy in ((via_copy, True), (via_executemany, False)):
            with monkeypatch.context() as patch:
                if not copy:
                    patch.setattr(definitions, "_copy_supported", lambda _session: False)
                items = [fetched(zuora_id, doc, updated_at=now) for zuora_id, doc in exports]
                changes[customer_id].append(
                    await store_definitions(
                        session, customer_id, items, now=now, history_limit=limit
                    )
                )
        copied, reference = await _rows(session, via_copy), await _rows(session, via_executemany)
        assert copied == reference, f"step {index}"
        snapshots.append(copied)
    assert changes[via_copy] == changes[via_executemany]

    # The sequence did exercise what it says: reactivation, pruning, NUL stripped, odd rows.
    def rows(step: int, table: str, zuora_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in snapshots[step][table] if dict(r)["workflow_id"] == zuora_id]

    assert [r["is_current"] for r in rows(3, "workflow_definitions", 10)] == [True, False]
    assert len(rows(5, "workflow_definitions", 12)) == 2
    assert [r["name"] for r in rows(6, "workflow_tasks", 13)] == ["badname"]
    odd = rows(7, "workflow_tasks", 14)
    assert [(r["task_id"], r["name"], r["tags"]) for r in odd] == [
        (None, "5", ["t", "3"]),
        (17, "tab\there\nnewline \\ back", []),
    ]
    assert [r["linkage_type"] for r in rows(7, "workflow_linkages", 14)] == [None, "é ✓"]
    assert len(rows(8, "workflow_tasks", 14)) == 60
    assert sum(len(step) for step in changes[via_copy]) > 0
