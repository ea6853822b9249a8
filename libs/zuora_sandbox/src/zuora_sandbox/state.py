"""In-memory state of the sandbox: tenants, their workflows, tokens, faults and counters.

The state is shared between the test thread (Python API) and the server thread (HTTP); mutations and
cache rebuilds happen under a per-tenant lock.
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .definition_book import DefinitionBook, DefinitionCache
from .faults import Faults
from .generator import WorkflowGenerator, now_iso, uuid_from

if TYPE_CHECKING:
    from .fast import FastPath, FastStats

_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/="
#: Stand-in quota sent in ``RateLimit-Limit`` (Production tenant, per zuora-api.md §6).
RATE_LIMIT_PER_MINUTE = 50_000
RATE_LIMIT_HEADER = "50000, 50000;w=60, 2250000;w=3600, 27000000;w=86400"


@dataclass
class Stats:
    """Per-tenant request counters (injected errors are counted too)."""

    token_requests: int = 0
    list_requests: int = 0
    get_requests: int = 0
    export_requests: int = 0  # GET /workflows/{id}/export
    versions_requests: int = 0  # GET /workflows/{id}/versions
    injected_errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.token_requests = 0
        self.list_requests = 0
        self.get_requests = 0
        self.export_requests = 0
        self.versions_requests = 0
        self.injected_errors = 0
        self.by_status = {}

    def count_status(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_requests": self.token_requests,
            "list_requests": self.list_requests,
            "get_requests": self.get_requests,
            "export_requests": self.export_requests,
            "versions_requests": self.versions_requests,
            "injected_errors": self.injected_errors,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


@dataclass
class Token:
    tenant: Tenant
    expires_at: float
    entity_ids: tuple[str, ...]


class Tenant:
    """One Zuora tenant: credentials, workflows (raw Zuora-shaped dicts), faults and stats.

    Change workflows through :meth:`put_workflow`, :meth:`update_workflow`, :meth:`delete_workflow`
    and :meth:`churn` (they keep the sorted-id and JSON caches right). If you mutate
    ``tenant.workflows`` or a nested item directly, call :meth:`invalidate` afterwards.
    """

    def __init__(
        self,
        state: SandboxState,
        name: str,
        *,
        workflow_count: int = 0,
        seed: int | str = 0,
        client_id: str | None = None,
        client_secret: str | None = None,
        entity_ids: list[str] | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("tenant name must be a non-empty string")
        if workflow_count < 0:
            raise ValueError("workflow_count must be >= 0")
        cred_rng = random.Random(f"{name}:{seed}")  # noqa: S311 - fake credentials
        self._state = state
        self.name = name
        self.seed = seed
        self.client_id = client_id if client_id is not None else uuid_from(cred_rng)
        self.client_secret = (
            client_secret
            if client_secret is not None
            else "".join(cred_rng.choice(_SECRET_ALPHABET) for _ in range(40))
        )
        if len(self.client_id) != 36:
            raise ValueError("client_id must be exactly 36 characters (Zuora's format)")
        if not 1 <= len(self.client_secret) <= 42:
            raise ValueError("client_secret must be 1..42 characters (Zuora's format)")
        self.entity_ids: list[str] = list(entity_ids) if entity_ids else [uuid_from(cred_rng)]
        self.multi_entity = len(self.entity_ids) >= 2
        self.user_id = f"{cred_rng.getrandbits(128):032x}"
        self.tenant_number = cred_rng.randint(10, 99_999)
        self._faults = Faults()
        self._fault_rng = random.Random(None)  # noqa: S311
        self._fault_rng_seed: int | None = None
        self.stats = Stats()
        self.priorities: dict[int, str] = {}
        #: Export / versions data, generated on demand (definition_book.py).
        self.definitions = DefinitionBook(self, state.definition_cache)
        self.lock = threading.RLock()
        self._tokens: dict[str, Token] = {}
        self._workflows: dict[int, dict[str, Any]] = {}
        self._pending: tuple[int, int | str] | None = (
            (workflow_count, seed) if workflow_count else None
        )
        self._sorted_ids: list[int] | None = None
        self._json: dict[int, str] = {}
        #: Bumped by every change of the workflows (their list pages' content): caches of
        #: rendered pages (``fast.FastPath``) are valid while it is unchanged.
        self.revision = 0
        self._minute_window = 0
        self._minute_count = 0

    # -- workflows ---------------------------------------------------------------------------
    @property
    def workflows(self) -> dict[int, dict[str, Any]]:
        """Raw workflow items keyed by id (generated lazily on first access)."""
        if self._pending is not None:
            self._materialize()
        return self._workflows

    def _materialize(self) -> None:
        with self.lock:
            if self._pending is None:
                return
            count, seed = self._pending
            gen = WorkflowGenerator(seed)
            for item, priority in gen.many(count):
                self._workflows[item["id"]] = item
                self.priorities[item["id"]] = priority
            self._pending = None
            self._sorted_ids = None

    def invalidate(self) -> None:
        """Forget cached ids and serialized items (after mutating ``workflows`` directly)."""
        with self.lock:
            self._sorted_ids = None
            self._json = {}
            self.revision += 1

    def drop_item_json(self) -> None:
        """Forget the serialized items (memory: the fast path keeps whole pages); they are
        serialized again when needed. The content is unchanged: the revision stays."""
        with self.lock:
            self._json = {}

    def sorted_ids(self) -> list[int]:
        """Ids in ascending order (a snapshot: never mutated after it is returned)."""
        ids = self._sorted_ids
        if ids is None:
            with self.lock:
                ids = sorted(self.workflows)
                self._sorted_ids = ids
        return ids

    def item_json(self, wf_id: int) -> str | None:
        """The list item of ``wf_id`` serialized (cached), or None if it does not exist."""
        text = self._json.get(wf_id)
        if text is None:
            item = self.workflows.get(wf_id)
            if item is None:
                return None
            text = json.dumps(item, ensure_ascii=False)
            self._json[wf_id] = text
        return text

    def detail(self, wf_id: int) -> dict[str, Any] | None:
        """``GET /workflows/{id}`` shape: no ``latest_inactive_verisons``, top-level priority."""
        item = self.workflows.get(wf_id)
        if item is None:
            return None
        out: dict[str, Any] = {}
        for key, value in item.items():
            if key == "latest_inactive_verisons":
                continue
            out[key] = value
            if key == "status" and "priority" not in item:
                out["priority"] = self.priorities.get(wf_id, "Medium")
        if "priority" not in out:
            out["priority"] = self.priorities.get(wf_id, "Medium")
        return out

    def put_workflow(self, item: dict[str, Any]) -> None:
        """Create or replace a raw item (must carry an integer ``id``)."""
        if not isinstance(item, dict):
            raise ValueError("a workflow item must be a dict")
        wf_id = item.get("id")
        if not isinstance(wf_id, int) or isinstance(wf_id, bool):
            raise ValueError("a workflow item needs an integer 'id'")
        with self.lock:
            existed = wf_id in self.workflows
            self._workflows[wf_id] = item
            self._json.pop(wf_id, None)
            self.revision += 1
            if not existed:
                self._sorted_ids = None

    def update_workflow(self, wf_id: int, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the item (top level) and bump ``updatedAt`` unless given."""
        with self.lock:
            item = self.workflows.get(wf_id)
            if item is None:
                raise KeyError(wf_id)
            if "id" in changes and changes["id"] != wf_id:
                raise ValueError("update_workflow cannot change the id")
            new = {**item, **changes}
            if "updatedAt" not in changes:
                new["updatedAt"] = now_iso()
            self._workflows[wf_id] = new
            self._json.pop(wf_id, None)
            self.revision += 1
            return new

    def delete_workflow(self, wf_id: int) -> None:
        with self.lock:
            if self.workflows.pop(wf_id, None) is None:
                raise KeyError(wf_id)
            self._json.pop(wf_id, None)
            self.priorities.pop(wf_id, None)
            self._sorted_ids = None
            self.revision += 1

    def churn(
        self, change: int = 0, add: int = 0, delete: int = 0, seed: int | str = 0
    ) -> dict[str, list[int]]:
        """Delete, change and add workflows at random (deterministic for a seed).

        Changed ids are picked among the ones that survive the deletions; added ones get ids above
        the current maximum. Returns ``{"changed": [...], "added": [...], "deleted": [...]}``.
        """
        if min(change, add, delete) < 0:
            raise ValueError("churn counts must be >= 0")
        rng = random.Random(f"churn:{seed}")  # noqa: S311
        with self.lock:
            ids = self.sorted_ids()
            if delete + change > len(ids):
                raise ValueError(
                    f"cannot delete {delete} and change {change} of {len(ids)} workflows"
                )
            picked = rng.sample(ids, delete + change)
            deleted = sorted(picked[:delete])
            changed = sorted(picked[delete:])
            for wf_id in deleted:
                self.delete_workflow(wf_id)
            for wf_id in changed:
                item = self.workflows[wf_id]
                roll = rng.random()
                updates: dict[str, Any] = {}
                if roll < 0.4:
                    updates["name"] = f"{item.get('name', 'Workflow')} (edited)"
                elif roll < 0.7:
                    updates["description"] = rng.choice(
                        ("Changed by ops", "Tweaked schedule", "Updated mapping", "")
                    )
                else:
                    updates["status"] = "Inactive" if item.get("status") == "Active" else "Active"
                self.update_workflow(wf_id, **updates)
            start = (max(self.workflows) if self.workflows else 10_000) + 50
            gen = WorkflowGenerator(f"churn-add:{seed}", first_id=start)
            added: list[int] = []
            for item, priority in gen.many(add):
                self.put_workflow(item)
                self.priorities[item["id"]] = priority
                added.append(item["id"])
        return {"changed": changed, "added": added, "deleted": deleted}

    # -- faults ------------------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        value.validate()
        self._faults = value
        self.reset_fault_rng()

    def reset_fault_rng(self) -> None:
        """Restart the fault sequence from ``faults.fault_seed``."""
        self._fault_rng_seed = self._faults.fault_seed
        self._fault_rng = random.Random(self._fault_rng_seed)  # noqa: S311

    @property
    def fault_rng(self) -> random.Random:
        if self._faults.fault_seed != self._fault_rng_seed:
            self.reset_fault_rng()
        return self._fault_rng

    # -- tokens ------------------------------------------------------------------------------
    def issue_token(self, entity_ids: tuple[str, ...]) -> tuple[str, Token]:
        now = self._state.clock()
        token_value = uuid.uuid4().hex
        token = Token(self, now + self._faults.token_ttl_s, entity_ids)
        with self.lock:
            if len(self._tokens) > 10_000:
                self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[token_value] = token
        self._state._token_index[token_value] = self
        return token_value, token

    def expire_tokens(self) -> None:
        """Make every token issued so far for this tenant expired."""
        with self.lock:
            for token in self._tokens.values():
                token.expires_at = float("-inf")

    def lookup_token(self, value: str) -> Token | None:
        return self._tokens.get(value)

    # -- rate-limit headers -------------------------------------------------------------------
    def rate_limit_headers(self) -> tuple[str, str]:
        """(remaining, reset) of a per-minute window; purely informational."""
        now = time.time()
        window = int(now // 60)
        if window != self._minute_window:
            self._minute_window = window
            self._minute_count = 0
        self._minute_count += 1
        remaining = max(0, RATE_LIMIT_PER_MINUTE - self._minute_count)
        reset = 60 - int(now % 60)
        return str(remaining), str(reset)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "entity_ids": self.entity_ids if self.multi_entity else [],
            "workflow_count": self.workflow_count,
        }

    @property
    def workflow_count(self) -> int:
        """Number of workflows (without generating pending ones)."""
        if self._pending is not None:
            return self._pending[0]
        return len(self._workflows)

    def __repr__(self) -> str:
        return f"Tenant(name={self.name!r}, client_id={self.client_id!r})"


class SandboxState:
    """All tenants of one sandbox.

    ``base_url_hint``: base URL used to build ``pagination.next_page``; ``None`` → taken from the
    request (scheme and Host header). ``clock``: monotonic seconds used for token expiry (tests may
    replace it). ``latency_ms``: extra delay added to every Zuora API request of every tenant.
    """

    def __init__(
        self,
        base_url_hint: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        latency_ms: float = 0,
    ) -> None:
        self.base_url_hint = base_url_hint.rstrip("/") if base_url_hint else None
        self.clock = clock
        self.latency_ms = latency_ms
        self.tenants: dict[str, Tenant] = {}
        #: Serialized export bodies of every tenant, bounded in bytes (definition_book.py).
        self.definition_cache = DefinitionCache()
        self._by_client_id: dict[str, Tenant] = {}
        self._token_index: dict[str, Tenant] = {}
        self._lock = threading.RLock()
        #: The fast path's counters when the app is served in fast mode (``fast.FastPath``).
        self.fast_stats: FastStats | None = None
        self.fast_path: FastPath | None = None

    def add_tenant(
        self,
        name: str,
        workflow_count: int = 0,
        seed: int | str = 0,
        client_id: str | None = None,
        client_secret: str | None = None,
        entity_ids: list[str] | None = None,
    ) -> Tenant:
        """Create a tenant; credentials are derived from (name, seed) when not given."""
        tenant = Tenant(
            self,
            name,
            workflow_count=workflow_count,
            seed=seed,
            client_id=client_id,
            client_secret=client_secret,
            entity_ids=entity_ids,
        )
        with self._lock:
            if name in self.tenants:
                raise ValueError(f"tenant {name!r} already exists")
            if tenant.client_id in self._by_client_id:
                raise ValueError(f"client_id {tenant.client_id!r} is already used")
            self.tenants[name] = tenant
            self._by_client_id[tenant.client_id] = tenant
        return tenant

    def get_tenant(self, name: str) -> Tenant:
        return self.tenants[name]

    def remove_tenant(self, name: str) -> None:
        with self._lock:
            tenant = self.tenants.pop(name)
            self._by_client_id.pop(tenant.client_id, None)
            for token_value in list(tenant._tokens):
                self._token_index.pop(token_value, None)

    def reset(self) -> None:
        """Remove every tenant and token."""
        with self._lock:
            self.tenants.clear()
            self._by_client_id.clear()
            self._token_index.clear()

    def tenant_by_client_id(self, client_id: str) -> Tenant | None:
        return self._by_client_id.get(client_id)

    def resolve_token(self, value: str) -> Token | None:
        """The token record (expired or not) of a known token of a live tenant, else None."""
        tenant = self._token_index.get(value)
        if tenant is None or self.tenants.get(tenant.name) is not tenant:
            return None
        return tenant.lookup_token(value)
