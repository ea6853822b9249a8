"""The demo customers: one per demo tenant of the sandbox, created through the API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from zuora_sandbox.demo import DEMO_TENANTS

from devstack.procs import Child, Interrupted, StartupError

if TYPE_CHECKING:
    from devstack.stack import Stack

__all__ = ["DemoCustomer", "DemoResult", "create_demo_customers", "wait_for_demo_workflows"]


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


def _client(stack: Stack) -> httpx.Client:
    key = stack.config.api_key or ""
    return httpx.Client(
        base_url=stack.config.api_url,
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


def create_demo_customers(stack: Stack, api: Child) -> DemoResult:
    """POST each demo tenant as a customer; a 409 (second run) is fine.

    The sandbox gets a new port on every run, so an existing demo customer whose base URL points
    at an old sandbox is re-pointed (PATCH; the worker then syncs it again).
    """
    if stack.config.api_key is None:  # pragma: no cover - API_KEYS unset outside development
        stack.say("no API key known (API_KEYS unset, APP_ENV not development): no demo customers")
        return DemoResult()
    result = DemoResult()
    with _client(stack) as client:
        for tenant in DEMO_TENANTS:
            body = {
                "name": tenant.name,
                "base_url": stack.sandbox_url,
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
                    if existing["base_url"] != stack.sandbox_url:
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
                if not api.alive:
                    raise StartupError(f"the API exited (code {api.returncode})") from None
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
            stack.say(f"demo customer {tenant.name}: {outcome} (id {customer['id']})")
    return result


def wait_for_demo_workflows(stack: Stack, demo: DemoResult, *, timeout: float) -> None:
    """Wait until every demo customer's workflows are readable through the API (a warning,
    not a failure, when that takes longer than ``timeout``)."""
    if not demo.customers:
        return
    deadline = time.monotonic() + timeout
    with _client(stack) as client:
        while True:
            pending = []
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
            if not pending:
                counts = ", ".join(f"{c.name} {c.workflow_count}" for c in demo.customers)
                stack.say(f"demo workflows synced: {counts}")
                return
            if time.monotonic() >= deadline:
                stack.say(
                    f"WARNING: workflows of {', '.join(pending)} not synced after {timeout:.0f}s; "
                    "see the [worker] lines"
                )
                return
            dead = stack.first_dead_child()
            if dead is not None:
                raise StartupError(f"{dead.name} exited with code {dead.returncode}")
            if stack.stop_requested.wait(0.25):
                raise Interrupted
