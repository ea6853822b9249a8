"""The reconciliation plan and the deletion guard, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sync_engine.hashing import content_hash
from sync_engine.reconcile import DeletionGuard, plan_reconciliation

GUARD = DeletionGuard(max_share=0.5)


@pytest.mark.parametrize(
    ("stored", "to_delete", "blocked"),
    [
        (0, 0, False),
        (10, 0, False),
        (10, 5, False),  # exactly the share is allowed
        (10, 6, True),
        (1, 1, True),  # "all of them" is always refused
        (40, 40, True),
        (3, 1, False),
    ],
)
def test_deletion_guard(stored: int, to_delete: int, blocked: bool) -> None:
    assert GUARD.blocks(stored=stored, to_delete=to_delete) is blocked


def test_guard_share_is_configurable() -> None:
    assert DeletionGuard(max_share=0.1).blocks(stored=10, to_delete=2)
    assert not DeletionGuard(max_share=0.9).blocks(stored=10, to_delete=9)


def test_plan_classifies_insert_update_delete_unchanged() -> None:
    stored = {1: "a", 2: "b", 3: "c", 4: "d"}
    listed = {1: "a", 2: "B", 3: "c", 5: "e"}
    plan = plan_reconciliation(stored, listed, guard=GUARD)
    assert plan.to_insert == [5]
    assert plan.to_update == [2]
    assert plan.to_delete == [4]
    assert plan.unchanged == 2
    assert not plan.deletes_blocked


def test_empty_listing_blocks_deletes_unless_forced() -> None:
    stored = {i: "h" for i in range(40)}
    plan = plan_reconciliation(stored, {}, guard=GUARD)
    assert plan.deletes_blocked and plan.to_delete == []
    forced = plan_reconciliation(stored, {}, guard=GUARD, force=True)
    assert not forced.deletes_blocked and len(forced.to_delete) == 40


def test_content_hash_ignores_key_order_but_not_values() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert content_hash({"interval": None}) != content_hash({"interval": ""})


hashes = st.dictionaries(st.integers(1, 60), st.sampled_from("abc"), max_size=40)


@given(stored=hashes, listed=hashes, force=st.booleans())
def test_plan_properties(stored: dict[int, str], listed: dict[int, str], force: bool) -> None:
    plan = plan_reconciliation(stored, listed, guard=GUARD, force=force)
    after = {k: v for k, v in stored.items() if k not in set(plan.to_delete)}
    after.update({k: listed[k] for k in (*plan.to_insert, *plan.to_update)})
    if not plan.deletes_blocked:
        assert after == listed  # applying the plan makes local == source
    else:
        assert plan.to_delete == [] and not force
        assert {k: v for k, v in after.items() if k in listed} == listed
    # deletions never exceed the guard unless forced
    if not force:
        assert not GUARD.blocks(stored=len(stored), to_delete=len(plan.to_delete))
    # idempotence: planning again against the result changes nothing
    if not plan.deletes_blocked:
        assert plan_reconciliation(after, listed, guard=GUARD).writes == 0
