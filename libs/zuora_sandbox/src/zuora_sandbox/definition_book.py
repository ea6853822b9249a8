"""Per-tenant workflow definitions: versions, exports, in-place edits, activation, endpoint faults.

Nothing is generated up front. A version's tasks and linkages are regenerated from a seed on
demand (a bounded LRU keeps the serialized ones), and only what the admin API changed (edited
definitions, versions created by an activation) is stored, so a 1,000-tenant benchmark costs
nothing until its exports are requested, and little memory after.

Versions come from the listing item (``active_version`` and ``latest_inactive_verisons``, plus the
versions the generator numbered between them that the listing's cap of 10 hides) and from
activations made here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .definitions import (
    EditSummary,
    Linkage,
    Task,
    edit_definition,
    generate_definition,
    renumber,
    workflow_traits,
)
from .generator import now_iso

if TYPE_CHECKING:
    from .state import Tenant

VERSION_INPUT = re.compile(r"^(?:[0-9]+(?:\.[0-9]+){0,2}|latest)$")
ENDPOINTS = ("export", "versions")
#: Bytes of serialized definitions kept per sandbox, all tenants together (the rest are
#: regenerated when asked for again): a 1,000-tenant benchmark must not keep 100,000 of them.
CACHE_BYTES = 32 * 1024 * 1024
#: Ids of versions created by an activation start here, far above any generated id.
FIRST_NEW_VERSION_ID = 9_000_000
#: A hand-made listing item with no version at all still has one (every Zuora workflow has):
#: inactive, labelled 0.0.1, with this id plus the workflow id.
IMPLICIT_VERSION_BASE = 8_000_000
_INACTIVE_SHOWN = 10  # the listing's latest_inactive_verisons cap (zuora-workflow-export.md §2)
_VERSION_KEYS = (
    "id",
    "name",
    "description",
    "type",
    "version",
    "status",
    "priority",
    "calloutTrigger",
    "ondemandTrigger",
    "scheduledTrigger",
    "interval",
    "timezone",
    "createdAt",
    "updatedAt",
)


class UnknownWorkflow(LookupError):
    """No such workflow in the listing."""


class UnknownVersion(LookupError):
    """The workflow exists but not the version asked for (or it has no active version)."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.version = version


class InvalidVersion(ValueError):
    """``?version=`` is neither a version label nor ``latest``."""


@dataclass
class EndpointFaults:
    """Fault knobs of one definition endpoint (``export`` or ``versions``) of one tenant.

    They add to the tenant's :class:`Faults` (whose latency, 5xx and 429 knobs apply to every API
    request) and draw from the same seeded ``tenant.fault_rng``.
    """

    #: Extra delay of this endpoint's requests.
    latency_ms: float = 0
    #: Share (0..1) answered with an error from ``error_statuses``.
    error_rate: float = 0
    error_statuses: list[int] = field(default_factory=lambda: [503])
    #: Share (0..1) answered 404 as if the workflow or version did not exist.
    not_found_rate: float = 0
    #: These workflow ids always answer ``error_statuses[0]``.
    fail_workflow_ids: list[int] = field(default_factory=list)
    #: These workflow ids always answer 404.
    not_found_workflow_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> EndpointFaults:
        """Build from a JSON-like dict over the defaults; raises ``ValueError`` on bad input."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        faults = cls()
        for name, value in data.items():
            if name in ("latency_ms", "error_rate", "not_found_rate"):
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"{name} must be a number")
            elif not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise ValueError(f"{name} must be a list of integers")
            setattr(faults, name, list(value) if isinstance(value, list) else value)
        faults.validate()
        return faults

    def validate(self) -> None:
        for name in ("error_rate", "not_found_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate + self.not_found_rate > 1:
            raise ValueError("error_rate + not_found_rate must not exceed 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not self.error_statuses or any(not 400 <= s <= 599 for s in self.error_statuses):
            raise ValueError("error_statuses must be a non-empty list of 4xx/5xx statuses")


class DefinitionCache:
    """An LRU of serialized definitions bounded in bytes, shared by every tenant of a sandbox."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[int, int]) -> str | None:
        with self._lock:
            text = self._items.get(key)
            if text is not None:
                self._items.move_to_end(key)
            return text

    def put(self, key: tuple[int, int], text: str) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            self.bytes -= len(old) if old is not None else 0
            self._items[key] = text
            self.bytes += len(text)
            while self.bytes > self.max_bytes and self._items:
                self.bytes -= len(self._items.popitem(last=False)[1])

    def discard(self, key: tuple[int, int]) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            self.bytes -= len(old) if old is not None else 0


_BOOK_IDS = itertools.count(1)


@dataclass
class _Version:
    record: dict[str, Any]  # camelCase, the /versions item shape
    key: str  # seed key of the workflow the version belongs to


class DefinitionBook:
    """The definitions of one tenant (``tenant.definitions``). Thread-safe via ``tenant.lock``."""

    def __init__(self, tenant: Tenant, cache: DefinitionCache) -> None:
        self._tenant = tenant
        self.faults: dict[str, EndpointFaults] = {name: EndpointFaults() for name in ENDPOINTS}
        self._stored: dict[int, tuple[list[Task], list[Linkage]]] = {}  # by version id
        self._added: dict[int, dict[int, dict[str, Any]]] = {}  # wf id -> version id -> record
        self._cache = cache
        self._book_id = next(_BOOK_IDS)  # cache keys of this book (tenants share the cache)
        self._next_version_id = FIRST_NEW_VERSION_ID

    # ------------------------------------------------------------------ reading
    def versions(self, wf_id: int) -> list[dict[str, Any]]:
        """``GET /workflows/{id}/versions`` items, ascending by id. Raises UnknownWorkflow."""
        item = self._item(wf_id)
        return [dict(v.record) for v in self._versions_of(wf_id, item).values()]

    def export_json(self, wf_id: int, version: str | None = None) -> str:
        """The export body, serialized. Raises UnknownWorkflow, UnknownVersion, InvalidVersion."""
        item = self._item(wf_id)
        chosen = self._resolve(wf_id, item, version)
        header = self._header(wf_id, chosen)
        return '{"workflow":' + json.dumps(header, ensure_ascii=False) + "," + self._body(chosen)

    def export(self, wf_id: int, version: str | None = None) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.export_json(wf_id, version))
        return parsed

    # ------------------------------------------------------------------ changing
    def edit(
        self, wf_id: int, version: str | None = None, *, seed: int | str = 0, changes: int = 1
    ) -> EditSummary:
        """Edit a version in place (default: the active one): same version id, same listing."""
        if changes < 1:
            raise ValueError("changes must be >= 1")
        with self._tenant.lock:
            item = self._item(wf_id)
            chosen = self._resolve(wf_id, item, version)
            tasks, linkages = self._definition(chosen)
            tasks, linkages, summary = edit_definition(
                tasks, linkages, seed=f"{wf_id}:{chosen.record['id']}:{seed}", changes=changes
            )
            self._store(chosen.record["id"], tasks, linkages)
            return summary

    def replace(self, wf_id: int, body: dict[str, Any], version: str | None = None) -> None:
        """Replace a version's ``tasks`` and ``linkages`` with the given ones, in place."""
        tasks, linkages = body.get("tasks"), body.get("linkages")
        if not isinstance(tasks, list) or not isinstance(linkages, list):
            raise ValueError("a definition needs 'tasks' and 'linkages' lists")
        if not all(isinstance(x, dict) for x in [*tasks, *linkages]):
            raise ValueError("tasks and linkages must be JSON objects")
        with self._tenant.lock:
            chosen = self._resolve(wf_id, self._item(wf_id), version)
            self._store(chosen.record["id"], tasks, linkages)

    def activate(self, wf_id: int, version: str | None = None) -> dict[str, Any]:
        """Make ``version`` (a label of an existing version) the active one, or, when None, a new
        version: a copy of the active definition (new task ids) with one edit. The listing's
        ``active_version`` and ``latest_inactive_verisons`` follow and ``updatedAt`` moves.
        Returns the new ``active_version`` object."""
        with self._tenant.lock:
            item = self._item(wf_id)
            known = self._versions_of(wf_id, item)
            if version is not None:
                chosen = self._resolve(wf_id, item, version)
            else:
                chosen = self._new_version(wf_id, item, known)
                known[chosen.record["id"]] = chosen
            active = {
                "id": chosen.record["id"],
                "version": chosen.record["version"],
                "status": "Active",
                "type": "Workflow::Setup",
                "description": chosen.record.get("description") or "",
            }
            inactive = [
                _inactive(v.record) for vid, v in known.items() if vid != chosen.record["id"]
            ]
            inactive.sort(key=lambda r: r["id"], reverse=True)
            self._tenant.update_workflow(
                wf_id,
                active_version=active,
                status="Active",
                latest_inactive_verisons=inactive[:_INACTIVE_SHOWN],
            )
            return active

    # ------------------------------------------------------------------ internals
    def _item(self, wf_id: int) -> dict[str, Any]:
        item = self._tenant.workflows.get(wf_id)
        if item is None:
            raise UnknownWorkflow(wf_id)
        return item

    def _versions_of(self, wf_id: int, item: dict[str, Any]) -> dict[int, _Version]:
        key = f"{self._tenant.seed}:{wf_id}"
        active = item.get("active_version")
        active_id = active.get("id") if isinstance(active, dict) else None
        records: dict[int, dict[str, Any]] = {}
        for raw in item.get("latest_inactive_verisons") or []:
            if isinstance(raw, dict) and isinstance(raw.get("id"), int):
                records[raw["id"]] = {k: raw[k] for k in _VERSION_KEYS if k in raw}
        if isinstance(active_id, int):
            assert isinstance(active, dict)
            records[active_id] = self._active_record(wf_id, item, active)
        for vid, label in _hidden_versions(wf_id, records).items():
            records[vid] = {**self._active_record(wf_id, item, {}), "id": vid, "version": label}
        records.update(self._added.get(wf_id, {}))
        if not records:
            implicit = IMPLICIT_VERSION_BASE + wf_id
            records[implicit] = {**self._active_record(wf_id, item, {}), "id": implicit}
        for vid, record in records.items():
            record["status"] = "Active" if vid == active_id else "Inactive"
        return {vid: _Version(records[vid], key) for vid in sorted(records)}

    def _active_record(
        self, wf_id: int, item: dict[str, Any], active: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": active.get("id"),
            "name": item.get("name") or "",
            "description": active.get("description") or "",
            "type": active.get("type") or "Workflow::Setup",
            "version": active.get("version") or "0.0.1",
            "status": "Active",
            "priority": self._tenant.priorities.get(wf_id, "Medium"),
            "calloutTrigger": bool(item.get("calloutTrigger")),
            "ondemandTrigger": bool(item.get("ondemandTrigger")),
            "scheduledTrigger": bool(item.get("scheduledTrigger")),
            "interval": item.get("interval"),
            "timezone": item.get("timezone"),
            "createdAt": item.get("createdAt"),
            "updatedAt": item.get("updatedAt"),
        }

    def _resolve(self, wf_id: int, item: dict[str, Any], version: str | None) -> _Version:
        known = self._versions_of(wf_id, item)
        if version is None:
            active = item.get("active_version")
            active_id = active.get("id") if isinstance(active, dict) else None
            if active_id not in known:
                raise UnknownVersion("active")
            return known[active_id]
        if not VERSION_INPUT.match(version):
            raise InvalidVersion(version)
        if version == "latest":
            if not known:
                raise UnknownVersion(version)
            return known[max(known)]
        matches = [vid for vid, v in known.items() if v.record.get("version") == version]
        if not matches:
            raise UnknownVersion(version)
        return known[max(matches)]

    def _header(self, wf_id: int, chosen: _Version) -> dict[str, Any]:
        """The export's ``workflow`` object: snake_case, as in the spec's example."""
        record = chosen.record
        traits = workflow_traits(chosen.key)
        return {
            "call_type": traits.call_type,
            "callout_trigger": bool(record.get("calloutTrigger")),
            "css": {"left": "30px", "top": "40px"},
            "data": {},
            "delete_ttl": traits.delete_ttl,
            "description": record.get("description") or "",
            "finished_at": None,
            "id": record["id"],
            "interval": record.get("interval"),
            "name": record.get("name") or "",
            "notifications": {},
            "ondemand_trigger": bool(record.get("ondemandTrigger")),
            "original_workflow_id": None,
            "parameters": {"event_triggers": [traits.event]} if traits.event else {},
            "priority": record.get("priority") or self._tenant.priorities.get(wf_id, "Medium"),
            "scheduled_trigger": bool(record.get("scheduledTrigger")),
            "started_at": None,
            "status": None,
            "sync_trigger": False,
            "task_summary": {},
            "timezone": record.get("timezone"),
            "type": "Workflow::Setup",
            "version": record.get("version"),
        }

    def _definition(self, chosen: _Version) -> tuple[list[Task], list[Linkage]]:
        stored = self._stored.get(chosen.record["id"])
        if stored is not None:
            return stored
        return generate_definition(chosen.key, chosen.record["id"])

    def _body(self, chosen: _Version) -> str:
        """``"tasks":[...],"linkages":[...]}``, from the LRU or freshly generated."""
        key = (self._book_id, chosen.record["id"])
        text = self._cache.get(key)
        if text is not None:
            return text
        tasks, linkages = self._definition(chosen)
        text = (
            '"tasks":'
            + json.dumps(tasks, ensure_ascii=False)
            + ',"linkages":'
            + json.dumps(linkages, ensure_ascii=False)
            + "}"
        )
        self._cache.put(key, text)
        return text

    def _store(self, vid: int, tasks: list[Task], linkages: list[Linkage]) -> None:
        self._stored[vid] = (tasks, linkages)
        self._cache.discard((self._book_id, vid))

    def _new_version(
        self, wf_id: int, item: dict[str, Any], known: dict[int, _Version]
    ) -> _Version:
        vid = self._next_version_id
        self._next_version_id += 1
        key = f"{self._tenant.seed}:{wf_id}"
        active = item.get("active_version")
        active_id = active.get("id") if isinstance(active, dict) else None
        base = known.get(active_id) if isinstance(active_id, int) else None
        if base is None and known:
            base = known[max(known)]
        now = now_iso()
        source = base.record if base is not None else self._active_record(wf_id, item, {})
        record = {**source, "id": vid, "version": _next_label(known), "description": ""}
        record.update(createdAt=now, updatedAt=now)
        if base is not None:
            tasks, linkages = renumber(*self._definition(base), vid)
            tasks, linkages, _ = edit_definition(tasks, linkages, seed=f"new:{vid}")
        else:
            tasks, linkages = generate_definition(key, vid)
        self._store(vid, tasks, linkages)
        self._added.setdefault(wf_id, {})[vid] = record
        return _Version(record, key)


def _inactive(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "status": "Inactive"}


def _generated_label(index: int) -> str:
    """The generator's label of the version at ``index`` (see generator.WorkflowGenerator)."""
    return f"0.{index // 10}.{index % 10 + 1}"


def _hidden_versions(wf_id: int, records: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Generated versions the listing does not show (only 10 inactive ones are listed): when every
    known version has the generator's id and label, the ids between them exist too."""
    generated = {vid: r for vid, r in records.items() if vid < FIRST_NEW_VERSION_ID}
    if not generated:
        return {}
    for vid, record in generated.items():
        index = vid - wf_id - 1
        if not 0 <= index < 20 or record.get("version") != _generated_label(index):
            return {}
    return {
        vid: _generated_label(vid - wf_id - 1)
        for vid in range(wf_id + 1, max(generated) + 1)
        if vid not in records
    }


def _next_label(known: dict[int, _Version]) -> str:
    """One more than the highest ``a.b.c`` label (last part + 1)."""
    best: tuple[int, ...] = (0, 0, 0)
    for version in known.values():
        label = str(version.record.get("version") or "")
        if VERSION_INPUT.match(label) and label != "latest":
            parts = tuple(int(p) for p in label.split("."))
            parts = parts + (0,) * (3 - len(parts))
            best = max(best, parts)
    return f"{best[0]}.{best[1]}.{best[2] + 1}"
