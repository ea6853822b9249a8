"""Typed workflow definitions: ``GET /workflows/{id}/export`` and ``GET /workflows/{id}/versions``.

The parsers follow zuora-workflow-export.md: snake_case or camelCase keys, ``css`` positions as
``"470px"`` strings (negative too), ``linkage_type`` and ``action_type`` as free text, the entry
edge with ``source_task_id: null``, unknown keys kept in ``raw``. What identifies a node or an
edge (workflow id, task id, a linkage's target) is required; anything else that is malformed
raises InvalidResponseError naming the field, except ``css``, which is cosmetic (unparsable:
None).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ._errors import InvalidResponseError
from ._models import _FieldReader, _first, _kind


class CanvasPosition(BaseModel):
    """Where Zuora's editor draws a node: ``css {"top": "40px", "left": "-80px"}`` as pixels."""

    model_config = ConfigDict(frozen=True)

    top: int | None = None
    left: int | None = None


class ExportedWorkflow(BaseModel):
    """The ``workflow`` object of an export: one **version** (``id`` is the version id)."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str | None = None
    description: str | None = None
    type: str | None = None
    version: str | None = None
    status: str | None = None
    call_type: str | None = None
    priority: str | None = None
    ondemand_trigger: bool | None = None
    callout_trigger: bool | None = None
    scheduled_trigger: bool | None = None
    sync_trigger: bool | None = None
    event_trigger: bool | None = None
    interval: str | None = None
    timezone: str | None = None
    delete_ttl: int | None = None
    css: CanvasPosition | None = None
    parameters: dict[str, Any] = Field(default_factory=dict, repr=False)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class WorkflowTask(BaseModel):
    """One ``tasks[]`` item. ``parent_task_id`` is Zuora's ``task_id`` (informational: edges come
    from ``linkages``, never from it). ``tags`` drops empty strings (the sample has ``[""]``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str | None = None
    action_type: str | None = None
    object: str | None = None
    object_id: str | None = None
    call_type: str | None = None
    concurrent_limit: int | None = None
    priority: str | None = None
    status: str | None = None
    parent_task_id: int | None = None
    tags: list[str] = Field(default_factory=list)
    css: CanvasPosition | None = None
    parameters: dict[str, Any] = Field(default_factory=dict, repr=False)
    assignment: list[Any] = Field(default_factory=list, repr=False)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class WorkflowLinkage(BaseModel):
    """One ``linkages[]`` item: an edge to ``target_task_id``. The entry edge has no
    ``source_task_id`` (it starts at the workflow; draw it from a synthetic Start node)."""

    model_config = ConfigDict(frozen=True)

    source_workflow_id: int | None = None
    source_task_id: int | None = None
    target_task_id: int
    linkage_type: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def is_entry(self) -> bool:
        return self.source_task_id is None


class WorkflowExport(BaseModel):
    """A whole definition version. ``raw`` is the body as received (unknown top-level keys such as
    ``workflow_definition`` included); :meth:`content_hash` is the SHA-256 of its canonical JSON."""

    model_config = ConfigDict(frozen=True)

    workflow: ExportedWorkflow
    tasks: list[WorkflowTask] = Field(default_factory=list)
    linkages: list[WorkflowLinkage] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    def canonical_json(self) -> bytes:
        """``raw`` as JSON with sorted keys and no whitespace: equal definitions, equal bytes."""
        return orjson.dumps(self.raw, option=orjson.OPT_SORT_KEYS)

    def content_hash(self) -> str:
        """Hex SHA-256 of :meth:`canonical_json` (zuora-workflow-export.md §5)."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    @classmethod
    def from_api(cls, body: Any, *, where: str = "export") -> WorkflowExport:
        """Parse a ``GET /workflows/{id}/export`` body."""
        if not isinstance(body, dict):
            raise InvalidResponseError(f"{where}: expected a JSON object, got {_kind(body)}")
        workflow = body.get("workflow")
        if not isinstance(workflow, dict):
            raise InvalidResponseError(
                f"{where}: field 'workflow' is not an object (got {_kind(workflow)})"
            )
        tasks = [
            _parse_task(item, f"{where}: tasks[{index}]")
            for index, item in enumerate(_list_field(body, "tasks", where))
        ]
        seen: set[int] = set()
        for task in tasks:
            if task.id in seen:
                raise InvalidResponseError(f"{where}: task id {task.id} appears twice")
            seen.add(task.id)
        linkages = [
            _parse_linkage(item, f"{where}: linkages[{index}]")
            for index, item in enumerate(_list_field(body, "linkages", where))
        ]
        return cls(
            workflow=_parse_workflow(workflow, f"{where}: workflow"),
            tasks=tasks,
            linkages=linkages,
            raw=body,
        )


class WorkflowVersionInfo(BaseModel):
    """One item of ``GET /workflows/{id}/versions`` ``data``: ``id`` is the version id (what
    ``active_version.id`` of the listing refers to), ``version`` its label such as ``"0.0.2"``."""

    model_config = ConfigDict(frozen=True)

    id: int
    version: str | None = None
    name: str | None = None
    description: str | None = None
    type: str | None = None
    status: str | None = None
    priority: str | None = None
    callout_trigger: bool | None = None
    ondemand_trigger: bool | None = None
    scheduled_trigger: bool | None = None
    interval: str | None = None
    timezone: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, item: Any, *, where: str = "version") -> WorkflowVersionInfo:
        if not isinstance(item, dict):
            raise InvalidResponseError(f"{where}: expected a JSON object, got {_kind(item)}")
        p = _FieldReader(item, where)
        version_id = p.integer("id", required=True)
        assert version_id is not None
        interval = p.string("interval")
        return cls(
            id=version_id,
            version=_version_label(p, item),
            name=p.string("name"),
            description=p.string("description"),
            type=p.string("type"),
            status=p.string("status"),
            priority=p.string("priority"),
            callout_trigger=p.boolean("calloutTrigger", "callout_trigger"),
            ondemand_trigger=p.boolean("ondemandTrigger", "ondemand_trigger"),
            scheduled_trigger=p.boolean("scheduledTrigger", "scheduled_trigger"),
            interval=interval if interval and interval.strip() else None,
            timezone=p.string("timezone"),
            created_at=p.timestamp("createdAt", "created_at"),
            updated_at=p.timestamp("updatedAt", "updated_at"),
            raw=item,
        )


def parse_versions(body: Any, *, where: str = "versions") -> list[WorkflowVersionInfo]:
    """Parse a ``GET /workflows/{id}/versions`` body (``{"data": [...]}``), in server order."""
    if not isinstance(body, dict):
        raise InvalidResponseError(f"{where}: expected a JSON object, got {_kind(body)}")
    data = body.get("data")
    if not isinstance(data, list):
        raise InvalidResponseError(f"{where}: field 'data' is not a list (got {_kind(data)})")
    versions = [
        WorkflowVersionInfo.from_api(item, where=f"{where}: data[{index}]")
        for index, item in enumerate(data)
    ]
    seen: set[int] = set()
    for version in versions:
        if version.id in seen:
            raise InvalidResponseError(f"{where}: version id {version.id} appears twice")
        seen.add(version.id)
    return versions


# ---------------------------------------------------------------------------------- parsers


def _list_field(body: dict[str, Any], key: str, where: str) -> list[Any]:
    """A list that may be absent or null (an empty definition), but never another type."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidResponseError(f"{where}: field '{key}' is not a list (got {_kind(value)})")
    return value


def _object(p: _FieldReader, *keys: str) -> dict[str, Any]:
    key, value = _first(p.item, keys)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidResponseError(
            f"{p.where}: field '{key}' is not an object (got {_kind(value)})"
        )
    return value


_PIXELS = re.compile(r"^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*(?:px)?\s*$", re.IGNORECASE)


def _pixels(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(value)
    if isinstance(value, str):
        match = _PIXELS.match(value)
        if match:
            return round(float(match.group(1)))
    return None


def parse_css(value: Any) -> CanvasPosition | None:
    """``{"top": "40px", "left": "-80px"}`` -> CanvasPosition(top=40, left=-80); None when the
    value is not an object or neither coordinate parses (positions are cosmetic)."""
    if not isinstance(value, dict):
        return None
    top, left = _pixels(value.get("top")), _pixels(value.get("left"))
    if top is None and left is None:
        return None
    return CanvasPosition(top=top, left=left)


def _version_label(p: _FieldReader, item: dict[str, Any]) -> str | None:
    value = item.get("version")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return p.string("version")


def _id_string(p: _FieldReader, *keys: str) -> str | None:
    """A string id that Zuora may also send as a number."""
    value = _first(p.item, keys)[1]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return p.string(*keys)


def _parse_workflow(item: dict[str, Any], where: str) -> ExportedWorkflow:
    p = _FieldReader(item, where)
    workflow_id = p.integer("id", required=True)
    assert workflow_id is not None
    interval = p.string("interval")
    return ExportedWorkflow(
        id=workflow_id,
        name=p.string("name"),
        description=p.string("description"),
        type=p.string("type"),
        version=_version_label(p, item),
        status=p.string("status"),
        call_type=p.string("call_type", "callType"),
        priority=p.string("priority"),
        ondemand_trigger=p.boolean("ondemand_trigger", "ondemandTrigger"),
        callout_trigger=p.boolean("callout_trigger", "calloutTrigger"),
        scheduled_trigger=p.boolean("scheduled_trigger", "scheduledTrigger"),
        sync_trigger=p.boolean("sync_trigger", "syncTrigger"),
        event_trigger=p.boolean("event_trigger", "eventTrigger"),
        interval=interval if interval and interval.strip() else None,
        timezone=p.string("timezone"),
        delete_ttl=p.integer("delete_ttl", "deleteTtl"),
        css=parse_css(item.get("css")),
        parameters=_object(p, "parameters"),
        raw=item,
    )


def _parse_task(item: Any, where: str) -> WorkflowTask:
    if not isinstance(item, dict):
        raise InvalidResponseError(f"{where}: expected a JSON object, got {_kind(item)}")
    p = _FieldReader(item, where)
    task_id = p.integer("id", required=True)
    assert task_id is not None
    key, tags = _first(item, ("tags",))
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidResponseError(f"{where}: field '{key}' is not a list of strings")
    key, assignment = _first(item, ("assignment",))
    if assignment is None:
        assignment = []
    if not isinstance(assignment, list):
        got = _kind(assignment)
        raise InvalidResponseError(f"{where}: field '{key}' is not a list (got {got})")
    return WorkflowTask(
        id=task_id,
        name=p.string("name"),
        action_type=p.string("action_type", "actionType"),
        object=p.string("object"),
        object_id=_id_string(p, "object_id", "objectId"),
        call_type=p.string("call_type", "callType"),
        concurrent_limit=p.integer("concurrent_limit", "concurrentLimit"),
        priority=p.string("priority"),
        status=p.string("status"),
        parent_task_id=p.integer("task_id", "taskId"),
        tags=[tag for tag in tags if tag.strip()],
        css=parse_css(item.get("css")),
        parameters=_object(p, "parameters"),
        assignment=assignment,
        raw=item,
    )


def _parse_linkage(item: Any, where: str) -> WorkflowLinkage:
    if not isinstance(item, dict):
        raise InvalidResponseError(f"{where}: expected a JSON object, got {_kind(item)}")
    p = _FieldReader(item, where)
    target = p.integer("target_task_id", "targetTaskId", required=True)
    assert target is not None
    return WorkflowLinkage(
        source_workflow_id=p.integer("source_workflow_id", "sourceWorkflowId"),
        source_task_id=p.integer("source_task_id", "sourceTaskId"),
        target_task_id=target,
        linkage_type=p.string("linkage_type", "linkageType"),
        raw=item,
    )
