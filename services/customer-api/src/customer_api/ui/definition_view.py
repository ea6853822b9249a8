"""What the workflow page shows of a stored definition: tasks (filterable), linkages with task
names, the pretty JSON, the graph (or why there is none), the history and a diff.

Reads go through ``workflow_store.definitions`` (the same functions as the JSON API and the CLI).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.definition_diff import DefinitionDiff
from workflow_store.definitions import (
    AmbiguousDefinitionHashError,
    DefinitionNotFoundError,
    DefinitionVersion,
    StoredDefinition,
    definition_history,
    diff_stored_definitions,
    load_definition,
)

from customer_api.ui.graph import EdgeStyle, GraphDefinition, GraphRenderer, legend

__all__ = [
    "DefinitionView",
    "definition_view",
    "graph_renderer",
    "pretty_json",
]


def graph_renderer(request: Request) -> GraphRenderer:
    """One renderer (and so one cache) per app, made on first use inside its event loop."""
    state = request.app.state
    renderer: GraphRenderer | None = getattr(state, "ui_graph_renderer", None)
    if renderer is None:
        renderer = GraphRenderer()
        state.ui_graph_renderer = renderer
    return renderer


def pretty_json(document: Mapping[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


@dataclass(frozen=True)
class TaskRow:
    id: Any
    name: str
    action_type: str
    object: str | None
    call_type: str | None
    tags: list[str]


@dataclass(frozen=True)
class LinkageRow:
    source: str
    source_task_id: Any
    target: str
    target_task_id: Any
    linkage_type: str


@dataclass
class DiffView:
    from_version: DefinitionVersion
    to_version: DefinitionVersion
    diff: DefinitionDiff


@dataclass
class DefinitionView:
    current: StoredDefinition | None
    history: list[DefinitionVersion] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    action_types: list[str] = field(default_factory=list)
    linkages: list[LinkageRow] = field(default_factory=list)
    graph_svg: str | None = None
    graph_legend: list[tuple[str, EdgeStyle]] = field(default_factory=list)
    json_text: str = ""
    diff: DiffView | None = None
    diff_error: str | None = None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _tasks(document: Mapping[str, Any]) -> list[TaskRow]:
    raw = document.get("tasks")
    rows = []
    for task in raw if isinstance(raw, list) else []:
        if not isinstance(task, Mapping):
            continue
        tags = task.get("tags")
        rows.append(
            TaskRow(
                id=task.get("id"),
                name=str(task.get("name") or ""),
                action_type=str(task.get("action_type") or task.get("actionType") or ""),
                object=_text(task.get("object")),
                call_type=_text(task.get("call_type") or task.get("callType")),
                tags=[str(t) for t in tags] if isinstance(tags, list) else [],
            )
        )
    return rows


def _linkages(graph: GraphDefinition, tasks: Sequence[TaskRow]) -> list[LinkageRow]:
    names = {task.id: task.name or f"task {task.id}" for task in tasks}

    def label(task_id: Any) -> str:
        return names.get(task_id, f"unknown task {task_id}")

    return [
        LinkageRow(
            source="Start" if link.source_task_id is None else label(link.source_task_id),
            source_task_id=link.source_task_id,
            target=label(link.target_task_id),
            target_task_id=link.target_task_id,
            linkage_type=link.linkage_type,
        )
        for link in graph.linkages
    ]


async def definition_view(
    request: Request,
    session: AsyncSession,
    customer_id: uuid.UUID,
    zuora_id: int,
    *,
    action_type: str | None,
    diff_from: str | None,
    diff_to: str | None,
) -> DefinitionView:
    try:
        current = await load_definition(session, customer_id, zuora_id)
    except DefinitionNotFoundError:
        return DefinitionView(current=None)
    view = DefinitionView(current=current)
    view.history = await definition_history(session, customer_id, zuora_id)
    all_tasks = _tasks(current.document)
    view.action_types = sorted({task.action_type for task in all_tasks if task.action_type})
    view.tasks = [t for t in all_tasks if not action_type or t.action_type == action_type]
    graph = GraphDefinition.from_export(current.document)
    view.linkages = _linkages(graph, all_tasks)
    view.graph_svg = await graph_renderer(request).render(graph)
    view.graph_legend = legend(graph)
    view.json_text = pretty_json(current.document)
    if diff_from or diff_to:
        try:
            from_version, to_version, diff = await diff_stored_definitions(
                session, customer_id, zuora_id, from_hash=diff_from, to_hash=diff_to
            )
            view.diff = DiffView(from_version, to_version, diff)
        except (DefinitionNotFoundError, AmbiguousDefinitionHashError) as error:
            view.diff_error = str(error)
    return view
