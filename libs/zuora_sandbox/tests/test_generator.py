from __future__ import annotations

import re

from zuora_sandbox import SandboxState, generate_workflows

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
VERSION_KEYS = {
    "id",
    "name",
    "description",
    "version",
    "type",
    "status",
    "priority",
    "calloutTrigger",
    "ondemandTrigger",
    "scheduledTrigger",
    "interval",
    "timezone",
    "createdAt",
    "updatedAt",
}


def test_same_seed_same_data_different_seed_different_data() -> None:
    assert generate_workflows(80, seed=5) == generate_workflows(80, seed=5)
    assert generate_workflows(80, seed=5) != generate_workflows(80, seed=6)


def test_items_are_zuora_shaped() -> None:
    items = list(generate_workflows(400, seed=1).values())
    assert len(items) == 400
    modes = {"present": 0, "null": 0, "absent": 0}
    intervals: set[object] = set()
    for item in items:
        assert isinstance(item["id"], int)
        assert item["id"] >= 10_000
        assert item["name"]
        assert item["status"] in ("Active", "Inactive")
        for key in ("calloutTrigger", "ondemandTrigger", "scheduledTrigger"):
            assert isinstance(item[key], bool)
        assert ISO_MS.match(item["createdAt"])
        assert ISO_MS.match(item["updatedAt"])
        assert item["updatedAt"] >= item["createdAt"]
        if item["scheduledTrigger"]:
            assert item["interval"]
            assert item["timezone"]
        else:
            assert item["interval"] in (None, "")
            assert item["timezone"] is None
        intervals.add(item["interval"])
        if "active_version" not in item:
            modes["absent"] += 1
        elif item["active_version"] is None:
            modes["null"] += 1
        else:
            modes["present"] += 1
            active = item["active_version"]
            assert set(active) == {"id", "version", "status", "type", "description"}
            assert active["type"] == "Workflow::Setup"
            assert active["status"] == "Active"
        versions = item["latest_inactive_verisons"]
        assert len(versions) <= 10
        for version in versions:
            assert set(version) == VERSION_KEYS
            assert version["status"] == "Inactive"
            assert ISO_MS.match(version["createdAt"])
        assert "latest_inactive_versions" not in item  # the real key is misspelled
    assert all(count > 0 for count in modes.values()), modes
    assert None in intervals
    assert "" in intervals
    assert any(len(i["latest_inactive_verisons"]) == 10 for i in items)
    assert any("\u2013" in i["name"] for i in items)  # en dash


def test_ids_ascending_unique_and_shared_between_tenants_with_same_seed() -> None:
    state = SandboxState()
    a = state.add_tenant("a", workflow_count=50, seed=3)
    b = state.add_tenant("b", workflow_count=50, seed=3)
    c = state.add_tenant("c", workflow_count=50, seed=4)
    assert set(a.workflows) == set(b.workflows)
    assert a.client_id != b.client_id
    assert set(a.workflows) != set(c.workflows)
    assert a.sorted_ids() == sorted(a.workflows)


def test_credentials_are_deterministic_and_well_formed() -> None:
    one = SandboxState().add_tenant("acme", workflow_count=1, seed=9)
    two = SandboxState().add_tenant("acme", workflow_count=1, seed=9)
    assert (one.client_id, one.client_secret) == (two.client_id, two.client_secret)
    assert len(one.client_id) == 36
    assert 1 <= len(one.client_secret) <= 42


def test_many_tenants_are_cheap_to_create() -> None:
    state = SandboxState()
    for i in range(1000):
        state.add_tenant(f"t{i}", workflow_count=100, seed=i)
    assert state.tenants["t999"].workflow_count == 100
    assert len(state.tenants["t999"].workflows) == 100
