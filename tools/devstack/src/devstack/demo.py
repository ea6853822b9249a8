"""The demo customers: one per demo tenant of the sandbox, created through the API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from zuora_sandbox.demo import DEMO_TENANTS

from devstack.procs import StartupError, WaitTimeout, wait_until

__all__ = [
    "DemoCustomer",
    "DemoResult",
    "DemoTarget",
    "create_demo_customers",
    "wait_for_demo_workflows",
]


@dataclass(frozen=True)
class DemoTarget:
    """What the demo needs of the running stack (plain values: no reference back to it)."""

    api_url: str
    api_key: str | None
    sandbox_url: str
    say: Callable[[str], None]
    check_alive: Callable[[], None]
    """Raises StartupError if a piece of the stack died, Interrupted on a stop request."""
    cancel: threading.Event


@dataclass
class DemoCustomer:
    name: str
    id: str
    expected_workflows: int
    outcome: str  # created / existed / repointed
    workflow_count: int = 0


@dataclass
class DemoResult:
    customers: list[DemoCustomer] = field(default_factory=list)

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "id": c.id,
                "expected_workflows": c.expected_workflows,
                "workflow_count": c.workflow_count,
            }
            for c in self.customers
        ]


def _client(target: DemoTarget) -> httpx.Client:
    key = target.api_key or ""
    return httpx.Client(
        base_url=target.api_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30.0,
    )


def _find_by_name(client: httpx.Client, name: str) -> dict[str, Any] | None:
    page = 1
    while True:
        r = client.get("/customers", params={"page": page, "page_size": 100})
        r.raise_for_status()
        body = r.json()
        for item in body["items"]:
            if item["name"] == name:
                found: dict[str, Any] = item
                return found
        if page * body["page_size"] >= body["total"]:
            return None
        page += 1


def create_demo_customers(target: DemoTarget) -> DemoResult:
    """POST each demo tenant as a customer; a 409 (second run) is fine.

    The sandbox gets a new port on every run, so an existing demo customer whose base URL points
    at an old sandbox is re-pointed (PATCH; the worker then syncs it again).
    """
    if target.api_key is None:  # pragma: no cover - API_KEYS unset outside development
        target.say("no API key known (API_KEYS unset, APP_ENV not development): no demo customers")
        return DemoResult()
    result = DemoResult()
    with _client(target) as client:
        for tenant in DEMO_TENANTS:
            body = {
                "name": tenant.name,
                "base_url": target.sandbox_url,
                "client_id": tenant.client_id,
                "client_secret": tenant.client_secret,
                "validate_credentials": True,
            }
            try:
                r = client.post("/customers", json=body)
                if r.status_code == 201:
                    customer = r.json()
                    outcome = "created"
                elif r.status_code == 409:
                    existing = _find_by_name(client, tenant.name)
                    if existing is None:
                        raise StartupError(f"409 for demo customer {tenant.name} but not listed")
                    customer, outcome = existing, "existed"
                    if existing["base_url"] != target.sandbox_url:
                        patch = {k: body[k] for k in ("base_url", "client_id", "client_secret")}
                        p = client.patch(f"/customers/{existing['id']}", json=patch)
                        if p.status_code != 200:
                            raise StartupError(
                                f"re-pointing demo customer {tenant.name} at the sandbox failed: "
                                f"HTTP {p.status_code} {p.text[:300]}"
                            )
                        customer, outcome = p.json(), "repointed"
                else:
                    raise StartupError(
                        f"creating demo customer {tenant.name} failed: "
                        f"HTTP {r.status_code} {r.text[:300]}"
                    )
            except httpx.HTTPError as exc:
                target.check_alive()  # a dead API says more than its connection error
                raise StartupError(f"creating demo customer {tenant.name}: {exc!r}") from None
            result.customers.append(
                DemoCustomer(
                    name=tenant.name,
                    id=str(customer["id"]),
                    expected_workflows=tenant.workflow_count,
                    outcome=outcome,
                    workflow_count=int(customer.get("workflow_count") or 0),
                )
            )
            target.say(f"demo customer {tenant.name}: {outcome} (id {customer['id']})")
    return result


def wait_for_demo_workflows(target: DemoTarget, demo: DemoResult, *, timeout: float) -> None:
    """Wait until every demo customer's workflows are readable through the API (a warning,
    not a failure, when that takes longer than ``timeout``)."""
    if not demo.customers:
        return
    pending: list[str] = []
    with _client(target) as client:

        def all_synced() -> bool:
            target.check_alive()
            pending.clear()
            for customer in demo.customers:
                if customer.workflow_count >= customer.expected_workflows:
                    continue
                try:
                    r = client.get(f"/customers/{customer.id}/workflows", params={"page_size": 1})
                    if r.status_code == 200:
                        customer.workflow_count = int(r.json()["total"])
                except httpx.HTTPError:
                    pass
                if customer.workflow_count < customer.expected_workflows:
                    pending.append(customer.name)
            return not pending

        try:
            wait_until(
                "the demo workflows",
                all_synced,
                timeout=timeout,
                interval=0.25,
                cancel=target.cancel,
            )
        except WaitTimeout:
            target.say(
                f"WARNING: workflows of {', '.join(pending)} not synced after {timeout:.0f}s; "
                "see the [worker] lines"
            )
            return
    counts = ", ".join(f"{c.name} {c.workflow_count}" for c in demo.customers)
    target.say(f"demo workflows synced: {counts}")
