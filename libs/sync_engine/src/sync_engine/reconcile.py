"""The reconciliation plan: a pure function from (local state, complete listing) to changes.

No I/O here, so the rules - including the deletion guard - can be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeletionGuard:
    """Refuses a run that would delete too much of a customer's copy.

    A listing that suddenly lacks most workflows is far more often a Zuora-side glitch (wrong
    entity, permission change, a broken page) than a real mass deletion; losing the local copy
    is what our users pay us to prevent. So such a run deletes nothing until an operator applies
    it with an explicit bound (``allow_deletes``).

    ``floor`` keeps small customers workable: up to ``floor`` deletions are always allowed
    (a share of 50 % of 1-5 rows would otherwise block a customer deleting one or two
    workflows on every run for ever) - except when the listing is empty, which is refused for
    any customer that has rows.
    """

    max_share: float = 0.5
    floor: int = 3

    def blocks(self, *, stored: int, to_delete: int, listed: int) -> bool:
        if to_delete == 0 or stored == 0:
            return False
        if listed == 0:  # an empty listing against a non-empty copy: never without a bound
            return True
        return to_delete > max(self.floor, self.max_share * stored)


@dataclass(frozen=True)
class ReconcilePlan:
    """What a run would write. ``to_delete`` are the rows missing from the listing that the run
    may delete once Zuora confirms each absence; ``pending_deletes`` counts every row missing
    from the listing (also when the guard blocked them, or the listing could not tell)."""

    to_insert: list[int] = field(default_factory=list)
    to_update: list[int] = field(default_factory=list)
    to_delete: list[int] = field(default_factory=list)
    unchanged: int = 0
    deletes_blocked: bool = False
    pending_deletes: int = 0

    @property
    def writes(self) -> int:
        return len(self.to_insert) + len(self.to_update) + len(self.to_delete)


def plan_reconciliation(
    stored_hashes: Mapping[int, str],
    listed_hashes: Mapping[int, str],
    *,
    guard: DeletionGuard,
    allow_deletes: int | None = None,
    keep: Collection[int] = (),
    deletes_possible: bool = True,
) -> ReconcilePlan:
    """Decide what to write so that the stored copy equals the (complete) listing.

    `stored_hashes` / `listed_hashes` map Zuora workflow id -> content hash.
    `allow_deletes`: the operator's bound - at most that many deletions, else the run stays
    blocked; it replaces the guard's share (never adds to it). `keep`: ids Zuora listed but we
    could not read (a malformed item): never deleted because of that. `deletes_possible=False`:
    the listing held an item whose id was unreadable, so no absence can be trusted this run.
    """
    to_insert = sorted(i for i in listed_hashes if i not in stored_hashes)
    to_update = sorted(
        i for i, h in listed_hashes.items() if i in stored_hashes and stored_hashes[i] != h
    )
    unchanged = len(listed_hashes) - len(to_insert) - len(to_update)
    kept = set(keep)
    missing = sorted(i for i in stored_hashes if i not in listed_hashes and i not in kept)
    if allow_deletes is not None:
        blocked = len(missing) > allow_deletes
    else:
        blocked = guard.blocks(
            stored=len(stored_hashes), to_delete=len(missing), listed=len(listed_hashes)
        )
    return ReconcilePlan(
        to_insert=to_insert,
        to_update=to_update,
        to_delete=missing if deletes_possible and not blocked else [],
        unchanged=unchanged,
        deletes_blocked=blocked,
        pending_deletes=len(missing),
    )
