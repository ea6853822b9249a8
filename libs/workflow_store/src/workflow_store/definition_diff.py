"""What changed between two workflow definitions (export documents): a pure function.

Tasks are matched by their Zuora ``id``; a task present in both with any field different is
*changed*, with each differing field listed. Linkages have no id: one is identified by
(source task, target task, linkage type), the entry edge by ``source_task_id`` null - its
``source_workflow_id`` is the version's own id, which differs on every version, so comparing it
would report every entry edge as replaced. Linkages are compared as multisets (a duplicated edge
counts twice).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DefinitionDiff",
    "FieldChange",
    "LinkageKey",
    "TaskChange",
    "diff_documents",
    "linkage_key",
    "task_key",
]

TaskKey = int | str | tuple[str, int]
LinkageKey = tuple[Any, Any, Any]
"""(source_task_id, target_task_id, linkage_type); source_task_id None is the entry edge."""


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class TaskChange:
    task_id: Any
    name: Any
    changes: list[FieldChange]


@dataclass
class DefinitionDiff:
    tasks_added: list[dict[str, Any]] = field(default_factory=list)
    tasks_removed: list[dict[str, Any]] = field(default_factory=list)
    tasks_changed: list[TaskChange] = field(default_factory=list)
    linkages_added: list[dict[str, Any]] = field(default_factory=list)
    linkages_removed: list[dict[str, Any]] = field(default_factory=list)
    workflow_changes: list[FieldChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.tasks_added
            or self.tasks_removed
            or self.tasks_changed
            or self.linkages_added
            or self.linkages_removed
            or self.workflow_changes
        )


def _first(item: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = item.get(key)
        if value is not None:
            return value
    return None


def task_key(task: Mapping[str, Any], position: int) -> TaskKey:
    """A task's identity: its ``id`` (a task without one is known by its position only)."""
    task_id = task.get("id")
    if isinstance(task_id, int | str) and not isinstance(task_id, bool):
        return task_id
    return ("#", position)


def linkage_key(linkage: Mapping[str, Any]) -> LinkageKey:
    return (
        _first(linkage, "source_task_id", "sourceTaskId"),
        _first(linkage, "target_task_id", "targetTaskId"),
        _first(linkage, "linkage_type", "linkageType"),
    )


def _objects(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _tasks_by_key(document: Mapping[str, Any]) -> dict[TaskKey, Mapping[str, Any]]:
    return {task_key(t, i): t for i, t in enumerate(_objects(document.get("tasks")))}


def _field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], *, skip: Iterable[str] = ()
) -> list[FieldChange]:
    skipped = set(skip)
    keys = sorted((set(before) | set(after)) - skipped)
    return [
        FieldChange(key, before.get(key), after.get(key))
        for key in keys
        if before.get(key) != after.get(key) or (key in before) != (key in after)
    ]


def _linkage_view(key: LinkageKey) -> dict[str, Any]:
    source, target, linkage_type = key
    return {"source_task_id": source, "target_task_id": target, "linkage_type": linkage_type}


def _multiset_difference(left: Counter[LinkageKey], right: Counter[LinkageKey]) -> list[Any]:
    return [
        _linkage_view(key)
        for key in sorted(left, key=repr)
        for _ in range(left[key] - right.get(key, 0))
    ]


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> DefinitionDiff:
    """The tasks added / removed / changed (field by field) and linkages added / removed from
    ``old`` to ``new``, plus the changed fields of the ``workflow`` object."""
    old_tasks, new_tasks = _tasks_by_key(old), _tasks_by_key(new)
    diff = DefinitionDiff()
    for key, task in new_tasks.items():
        before = old_tasks.get(key)
        if before is None:
            diff.tasks_added.append(dict(task))
            continue
        changes = _field_changes(before, task)
        if changes:
            diff.tasks_changed.append(TaskChange(task.get("id"), task.get("name"), changes))
    diff.tasks_removed = [dict(t) for k, t in old_tasks.items() if k not in new_tasks]
    old_links = Counter(linkage_key(x) for x in _objects(old.get("linkages")))
    new_links = Counter(linkage_key(x) for x in _objects(new.get("linkages")))
    diff.linkages_added = _multiset_difference(new_links, old_links)
    diff.linkages_removed = _multiset_difference(old_links, new_links)
    old_workflow, new_workflow = old.get("workflow"), new.get("workflow")
    diff.workflow_changes = _field_changes(
        old_workflow if isinstance(old_workflow, Mapping) else {},
        new_workflow if isinstance(new_workflow, Mapping) else {},
    )
    return diff
