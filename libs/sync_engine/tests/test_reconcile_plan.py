"""The reconciliation plan and the deletion guard, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sync_engine.hashing import content_hash
from sync_engine.reconcile import DeletionGuard, plan_reconciliation

GUARD = DeletionGuard(max_share=0.5)


@pytest.mark.parametrize(
    ("stored", "to_delete", "listed", "blocked"),
    [
        (0, 0, 0, False),
        (10, 0, 10, False),
        (10, 5, 5, False),  # exactly the share is allowed
        (10, 6, 4, True),
        (40, 40, 0, True),  # an empty listing is always refused
        (1, 1, 0, True),
        # the floor (audit M1): small customers may always delete up to 3 ...
        (1, 1, 1, False),  # ... their only workflow, replaced by a new one
        (2, 2, 1, False),
        (3, 2, 1, False),
        (3, 3, 2, False),
        (4, 3, 1, False),
        (5, 3, 2, False),
        (5, 4, 1, True),  # 4 > max(3, 2.5)
        (8, 4, 4, False),
        (8, 5, 3, True),
    ],
)
def test_deletion_guard(stored: int, to_delete: int, listed: int, blocked: bool) -> None:
    assert GUARD.blocks(stored=stored, to_delete=to_delete, listed=listed) is blocked


def test_guard_share_and_floor_are_configurable() -> None:
    assert DeletionGuard(max_share=0.1, floor=0).blocks(stored=10, to_delete=2, listed=8)
    assert not DeletionGuard(max_share=0.1).blocks(stored=10, to_delete=2, listed=8)
    assert not DeletionGuard(max_share=0.9).blocks(stored=10, to_delete=9, listed=1)


def test_plan_classifies_insert_update_delete_unchanged() -> None:
    stored = {1: "a", 2: "b", 3: "c", 4: "d"}
    listed = {1: "a", 2: "B", 3: "c", 5: "e"}
    plan = plan_reconciliation(stored, listed, guard=GUARD)
    assert plan.to_insert == [5]
    assert plan.to_update == [2]
    assert plan.to_delete == [4]
    assert plan.unchanged == 2
    assert not plan.deletes_blocked


def test_empty_listing_is_blocked_until_allow_deletes_covers_every_pending_deletion() -> None:
    stored = {i: "h" for i in range(40)}
    plan = plan_reconciliation(stored, {}, guard=GUARD)
    assert plan.deletes_blocked and plan.to_delete == [] and plan.pending_deletes == 40
    short = plan_reconciliation(stored, {}, guard=GUARD, allow_deletes=5)
    assert short.deletes_blocked and short.to_delete == [] and short.pending_deletes == 40
    applied = plan_reconciliation(stored, {}, guard=GUARD, allow_deletes=40)
    assert not applied.deletes_blocked and len(applied.to_delete) == 40


def test_allow_deletes_bounds_a_run_the_guard_would_allow() -> None:
    stored = {i: "h" for i in range(100)}
    listed = {i: "h" for i in range(10, 100)}  # 10 missing: the guard allows it
    assert len(plan_reconciliation(stored, listed, guard=GUARD).to_delete) == 10
    bounded = plan_reconciliation(stored, listed, guard=GUARD, allow_deletes=5)
    assert bounded.deletes_blocked and bounded.to_delete == []


def test_skipped_items_are_never_deleted_and_an_unreadable_id_holds_every_deletion() -> None:
    stored = {1: "a", 2: "b", 3: "c"}
    plan = plan_reconciliation(stored, {1: "a"}, guard=GUARD, keep={2})
    assert plan.to_delete == [3] and plan.pending_deletes == 1
    held = plan_reconciliation(stored, {1: "a"}, guard=GUARD, deletes_possible=False)
    assert held.to_delete == [] and not held.deletes_blocked and held.pending_deletes == 2


def test_content_hash_ignores_key_order_but_not_values() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert content_hash({"interval": None}) != content_hash({"interval": ""})


hashes = st.dictionaries(st.integers(1, 60), st.sampled_from("abc"), max_size=40)


@given(stored=hashes, listed=hashes, allow=st.none() | st.integers(0, 45))
def test_plan_properties(stored: dict[int, str], listed: dict[int, str], allow: int | None) -> None:
    plan = plan_reconciliation(stored, listed, guard=GUARD, allow_deletes=allow)
    after = {k: v for k, v in stored.items() if k not in set(plan.to_delete)}
    after.update({k: listed[k] for k in (*plan.to_insert, *plan.to_update)})
    if not plan.deletes_blocked:
        assert after == listed  # applying the plan makes local == source
    else:
        assert plan.to_delete == []
        assert {k: v for k, v in after.items() if k in listed} == listed
    # deletions never exceed the operator's bound, or the guard when there is none
    if allow is not None:
        assert len(plan.to_delete) <= allow
    else:
        assert not GUARD.blocks(
            stored=len(stored), to_delete=len(plan.to_delete), listed=len(listed)
        )
    # idempotence: planning again against the result changes nothing
    if not plan.deletes_blocked:
        assert plan_reconciliation(after, listed, guard=GUARD).writes == 0
