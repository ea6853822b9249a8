"""The run card: what became of one sync request (a command), until its last attempt ends.

A request is queued until a worker records its first attempt; an attempt that failed with a
transient error is retried by the workers (up to ``WORKER_MAX_ATTEMPTS``), so the card keeps
polling through retries and stops at the first final outcome. A card also stops polling when
no worker picked the request up within :data:`PICKUP_LIMIT` (then it says so).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from workflow_store.models import COMPLETED_RUN_STATUSES, FailureKind, RunStatus, utcnow

from customer_api.schemas import SyncRunPublic
from customer_api.ui.templating import format_duration

__all__ = ["PICKUP_LIMIT_SECONDS", "RunCard", "outcome_sentence"]

PICKUP_LIMIT_SECONDS = 15 * 60
POLL_SECONDS = 2


def outcome_sentence(run: SyncRunPublic) -> str:
    """One sentence for a finished attempt, e.g. "finished in 4.2 s: 3 created, ..."."""
    took = format_duration(run.duration_ms)
    if run.status == RunStatus.SUCCEEDED:
        return (
            f"finished in {took}: {run.created} created, {run.updated} updated, "
            f"{run.deleted} deleted ({run.unchanged} unchanged, {run.total} in Zuora)"
        )
    if run.status == RunStatus.DELETES_BLOCKED:
        blocked = run.blocked_deletes if run.blocked_deletes is not None else 0
        return (
            f"deletions blocked after {took}: this sync would delete {blocked} of the stored "
            f"workflows, more than the deletion guard allows; nothing was deleted "
            f"({run.created} created, {run.updated} updated)"
        )
    if run.status == RunStatus.SKIPPED:
        return f"skipped: {run.skip_reason or 'already covered by a newer sync'}"
    if run.status == RunStatus.FAILED:
        kind = run.error_kind or "error"
        return f"failed after {took} ({kind}): {run.error_message or 'no message'}"
    return f"{run.status} for {took}"


@dataclass(frozen=True)
class RunCard:
    command_id: str
    customer_id: uuid.UUID | None
    requested_at: int  # epoch seconds, from the card's URL
    attempts: list[SyncRunPublic]
    max_attempts: int

    @property
    def latest(self) -> SyncRunPublic | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def state(self) -> str:
        """queued, running, retrying, finished or lost."""
        latest = self.latest
        if latest is None:
            return "lost" if self.waited_too_long else "queued"
        if latest.status == RunStatus.RUNNING:
            return "running"
        if latest.status in COMPLETED_RUN_STATUSES:
            return "finished"
        if latest.error_kind == FailureKind.TRANSIENT and latest.attempt < self.max_attempts:
            return "retrying"
        return "finished"

    @property
    def waited_too_long(self) -> bool:
        return time.time() - self.requested_at > PICKUP_LIMIT_SECONDS

    @property
    def polling(self) -> bool:
        return self.state in ("queued", "running", "retrying")

    @property
    def poll_seconds(self) -> int:
        return POLL_SECONDS

    @property
    def sentence(self) -> str:
        latest = self.latest
        if self.state == "queued":
            return "queued: waiting for a sync worker to pick it up"
        if self.state == "lost":
            return (
                "no sync worker picked this request up within 15 minutes: check that the "
                "workers are running (the request stays queued)"
            )
        assert latest is not None
        if self.state == "running":
            elapsed = max(0, int((utcnow() - latest.started_at).total_seconds()))
            return (
                f"running for {elapsed} s (attempt {latest.attempt}, "
                f"{latest.pages} pages read so far)"
            )
        if self.state == "retrying":
            return (
                f"attempt {latest.attempt} of {self.max_attempts} failed "
                f"({latest.error_message or latest.error_kind}); the workers retry it"
            )
        return outcome_sentence(latest)
