"""The reconciliation plan: a pure function from (local state, complete listing) to changes.

No I/O here, so the rules - including the deletion guard - can be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeletionGuard:
    """Refuses a run that would delete too much of a customer's copy.

    A listing that suddenly lacks most workflows is far more often a Zuora-side glitch (wrong
    entity, permission change, a broken page) than a real mass deletion; losing the local copy
    is what our users pay us to prevent. So such a run deletes nothing until an operator forces it.
    """

    max_share: float = 0.5

    def blocks(self, *, stored: int, to_delete: int) -> bool:
        if to_delete == 0 or stored == 0:
            return False
        if to_delete >= stored:  # everything would go: never without force
            return True
        return to_delete / stored > self.max_share


@dataclass(frozen=True)
class ReconcilePlan:
    to_insert: list[int] = field(default_factory=list)
    to_update: list[int] = field(default_factory=list)
    to_delete: list[int] = field(default_factory=list)
    unchanged: int = 0
    deletes_blocked: bool = False

    @property
    def writes(self) -> int:
        return len(self.to_insert) + len(self.to_update) + len(self.to_delete)


def plan_reconciliation(
    stored_hashes: Mapping[int, str],
    listed_hashes: Mapping[int, str],
    *,
    guard: DeletionGuard,
    force: bool = False,
) -> ReconcilePlan:
    """Decide what to write so that the stored copy equals the (complete) listing.

    `stored_hashes` / `listed_hashes` map Zuora workflow id -> content hash.
    """
    to_insert = sorted(i for i in listed_hashes if i not in stored_hashes)
    to_update = sorted(
        i for i, h in listed_hashes.items() if i in stored_hashes and stored_hashes[i] != h
    )
    unchanged = len(listed_hashes) - len(to_insert) - len(to_update)
    missing = sorted(i for i in stored_hashes if i not in listed_hashes)
    blocked = not force and guard.blocks(stored=len(stored_hashes), to_delete=len(missing))
    return ReconcilePlan(
        to_insert=to_insert,
        to_update=to_update,
        to_delete=[] if blocked else missing,
        unchanged=unchanged,
        deletes_blocked=blocked,
    )
