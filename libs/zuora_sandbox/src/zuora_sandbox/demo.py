"""Fixed demo tenants (``zuora-sandbox --seed demo``): credentials are documented and stable."""

from __future__ import annotations

from typing import NamedTuple

from .state import SandboxState, Tenant


class DemoTenant(NamedTuple):
    name: str
    client_id: str
    client_secret: str
    workflow_count: int
    seed: int


DEMO_TENANTS: tuple[DemoTenant, ...] = (
    DemoTenant("acme-demo", "00000000-0000-4000-8000-00000000acme", "demo-secret-acme", 12, 1),
    DemoTenant("globex-demo", "00000000-0000-4000-8000-000000globex", "demo-secret-globex", 57, 2),
    DemoTenant(
        "initech-demo", "00000000-0000-4000-8000-00000initech", "demo-secret-initech", 130, 3
    ),
)


def add_demo_tenants(state: SandboxState) -> list[Tenant]:
    """Add the three demo tenants (12, 57 and 130 workflows) to ``state``."""
    return [
        state.add_tenant(
            d.name,
            workflow_count=d.workflow_count,
            seed=d.seed,
            client_id=d.client_id,
            client_secret=d.client_secret,
        )
        for d in DEMO_TENANTS
    ]
