"""pytest plugin: the ``zuora_sandbox`` fixture (loaded by the root conftest).

def test_something(zuora_sandbox):
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=237, seed=1)
    url = zuora_sandbox.base_url
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import SandboxServer, run_sandbox
from .state import SandboxState


@pytest.fixture
def zuora_sandbox() -> Iterator[SandboxServer]:
    """A sandbox served over real HTTP on a free loopback port, empty (no tenants)."""
    with run_sandbox(SandboxState()) as server:
        yield server
