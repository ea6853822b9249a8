"""Credentials and the Workflow model, with a tolerant but never-silent parser."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ._errors import InvalidResponseError

# Zuora ids are signed 64-bit integers; anything larger cannot be a real id (nor be stored).
MAX_WORKFLOW_ID = 2**63 - 1


class ZuoraCredentials(BaseModel):
    """One tenant's OAuth client. ``client_secret`` is a SecretStr (a plain str is accepted);
    read it with ``creds.client_secret.get_secret_value()``. ``repr()`` hides it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(min_length=1)
    entity_id: str | None = None


class WorkflowVersion(BaseModel):
    """The ``active_version`` object of a workflow definition."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    version: str | None = None
    status: str | None = None
    type: str | None = None
    description: str | None = None


class Workflow(BaseModel):
    """A Zuora workflow definition. Build it with :meth:`Workflow.from_api`."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    description: str | None = None
    status: str | None = None
    active_version: WorkflowVersion | None = None
    callout_trigger: bool | None = None
    ondemand_trigger: bool | None = None
    scheduled_trigger: bool | None = None
    interval: str | None = None
    timezone: str | None = None
    priority: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, item: Any, *, where: str = "workflow") -> Workflow:
        """Parse one item of ``GET /workflows`` ``data`` (or a ``GET /workflows/{id}`` body).

        Tolerates camelCase or snake_case keys, unknown keys, ``active_version`` absent or null,
        ``interval`` ``""``, ids as numeric strings and several timestamp formats. Anything
        malformed raises InvalidResponseError naming ``where`` and the field.
        """
        if not isinstance(item, dict):
            raise InvalidResponseError(f"{where}: expected a JSON object, got {_kind(item)}")
        p = _FieldReader(item, where)
        workflow_id = p.integer("id", required=True)
        assert workflow_id is not None
        if not 0 <= workflow_id <= MAX_WORKFLOW_ID:
            raise InvalidResponseError(f"{where}: field 'id' is out of range ({workflow_id})")
        name = p.string("name", required=True)
        assert name is not None
        interval = p.string("interval")
        return cls(
            id=workflow_id,
            name=name,
            description=p.string("description"),
            status=p.string("status"),
            active_version=_parse_version(item, where),
            callout_trigger=p.boolean("calloutTrigger", "callout_trigger"),
            ondemand_trigger=p.boolean("ondemandTrigger", "ondemand_trigger"),
            scheduled_trigger=p.boolean("scheduledTrigger", "scheduled_trigger"),
            interval=interval if interval and interval.strip() else None,
            timezone=p.string("timezone"),
            priority=p.string("priority"),
            created_at=p.timestamp("createdAt", "created_at"),
            updated_at=p.timestamp("updatedAt", "updated_at"),
            raw=item,
        )


def listing_fingerprint(item: Any) -> tuple[int | None, str | None, datetime | None]:
    """``(active_version.id, active_version.version, updated_at)`` of a listing item, read as
    :meth:`Workflow.from_api` reads them, without building the Workflow (for an item that was
    not parsed). Raises InvalidResponseError where ``from_api`` would for these fields."""
    if not isinstance(item, dict):
        raise InvalidResponseError(f"workflow: expected a JSON object, got {_kind(item)}")
    version = _parse_version(item, "workflow")
    updated_at = _FieldReader(item, "workflow").timestamp("updatedAt", "updated_at")
    if version is None:
        return None, None, updated_at
    return version.id, version.version, updated_at


@dataclass(frozen=True)
class RejectedItem:
    """One item of a page that could not be parsed. ``workflow_id`` is its id when that much
    was readable as an integer (any size), else None; ``reason`` names the item and the field."""

    workflow_id: int | None
    reason: str


@dataclass(frozen=True)
class WorkflowPage:
    """One page of a listing: ``number`` (from 1), the workflows whose id is new in this
    listing, ``item_count``, the number of items the page carried (duplicates included), and
    ``rejected``, the items that could not be parsed (the listing goes on without them), and
    ``unchanged``, id -> raw item of the items the caller said it already holds (not parsed;
    ``ZuoraClient.iter_pages(unchanged=...)``)."""

    number: int
    workflows: list[Workflow] = field(default_factory=list)
    item_count: int = 0
    rejected: list[RejectedItem] = field(default_factory=list)
    unchanged: dict[int, dict[str, Any]] = field(default_factory=dict)


def _parse_version(item: dict[str, Any], where: str) -> WorkflowVersion | None:
    key, value = _first(item, ("active_version", "activeVersion"))
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidResponseError(f"{where}: field '{key}' is not an object (got {_kind(value)})")
    p = _FieldReader(value, where, prefix=f"{key}.")
    version = value.get("version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        version = str(version)
    else:
        version = p.string("version")
    return WorkflowVersion(
        id=p.integer("id"),
        version=version,
        status=p.string("status"),
        type=p.string("type"),
        description=p.string("description"),
    )


_MISSING = object()
_DIGITS = re.compile(r"^[0-9]+$")


def _first(item: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    """The first key whose value is not null (else the first key and None)."""
    for key in keys:
        value = item.get(key, _MISSING)
        if value is not _MISSING and value is not None:
            return key, value
    return keys[0], None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "an object"})
    return names.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


class _FieldReader:
    def __init__(self, item: dict[str, Any], where: str, prefix: str = "") -> None:
        self.item = item
        self.where = where
        self.prefix = prefix

    def _error(self, key: str, problem: str) -> InvalidResponseError:
        return InvalidResponseError(f"{self.where}: field '{self.prefix}{key}' {problem}")

    def _get(self, keys: tuple[str, ...], required: bool) -> tuple[str, Any]:
        key, value = _first(self.item, keys)
        if value is None and required:
            raise self._error(key, "is missing")
        return key, value

    def integer(self, *keys: str, required: bool = False) -> int | None:
        key, value = self._get(keys, required)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _DIGITS.match(value):
            return int(value)
        raise self._error(key, f"is not an integer (got {_kind(value)} {_show(value)})")

    def string(self, *keys: str, required: bool = False) -> str | None:
        key, value = self._get(keys, required)
        if value is None or isinstance(value, str):
            return value
        raise self._error(key, f"is not a string (got {_kind(value)} {_show(value)})")

    def boolean(self, *keys: str) -> bool | None:
        key, value = self._get(keys, False)
        if value is None or isinstance(value, bool):
            return value
        raise self._error(key, f"is not a boolean (got {_kind(value)} {_show(value)})")

    def timestamp(self, *keys: str) -> datetime | None:
        key, value = self._get(keys, False)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._error(key, f"is not a timestamp string (got {_kind(value)})")
        if not value.strip():
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            raise self._error(key, f"is not a parsable timestamp (got {_show(value)})")
        return parsed


_UTC_SUFFIX = re.compile(r"\s*(UTC|GMT)$", re.IGNORECASE)


def parse_timestamp(text: str) -> datetime | None:
    """Parse Zuora's timestamp formats into an aware datetime (naive values are UTC).

    Accepts ISO-8601 with ``Z`` / an offset / fractional seconds, ``YYYY-MM-DD HH:MM:SS`` and
    ``YYYY-MM-DD HH:MM:SS UTC``. Returns None when the text is not a timestamp.
    """
    text = text.strip()
    assume_utc = False
    match = _UTC_SUFFIX.search(text)
    if match:
        text = text[: match.start()]
        assume_utc = True
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if assume_utc:  # "…+08:00 UTC" is contradictory
        return None
    return parsed
