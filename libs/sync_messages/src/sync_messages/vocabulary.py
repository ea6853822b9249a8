"""The product's vocabulary: the values of the status, reason and kind columns, defined once.

The same strings are stored in the database (``sync_runs.status``, ``customers.credential_status``,
...), carried in messages, accepted by the API's and the CLI's filters and used as metric labels;
every one of those imports them from here. The values are the wire format: never rename one.

Why here and not in ``workflow_store.models`` (next to the columns, which use them): the message
contracts and the metrics library need them too, and neither may depend on the database layer
(SQLAlchemy). This module imports nothing but ``enum``; ``workflow_store.models`` re-exports it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

__all__ = [
    "COMPLETED_RUN_STATUSES",
    "FAILED_RUN_STATUSES",
    "REPLAYABLE_RUN_STATUSES",
    "SUCCESSFUL_RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "CompletedRunStatus",
    "CredentialStatus",
    "FailureKind",
    "RunStatus",
    "SyncReason",
]


class RunStatus(StrEnum):
    """The status of a sync run (and a customer's last sync status)."""

    # Stored in sync_runs.status and customers.last_sync_status.

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    DELETES_BLOCKED = "deletes_blocked"
    # Written by the worker over a transient failure it will retry (the retry is another run).
    RETRY_SCHEDULED = "retry_scheduled"


CompletedRunStatus = Literal[RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.DELETES_BLOCKED]
"""The statuses a ``WorkflowSyncCompleted`` event carries (a type, for the message field)."""

# The derived groups are tuples in the enum's order: menus and metric labels show them as listed.
COMPLETED_RUN_STATUSES: tuple[RunStatus, ...] = get_args(CompletedRunStatus)

TERMINAL_RUN_STATUSES: tuple[RunStatus, ...] = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.SKIPPED,
    RunStatus.DELETES_BLOCKED,
)
"""How an attempt ends (the metric labels; the CLI waits for one). ``retry_scheduled`` is not one:
the worker writes it over ``failed`` when another attempt follows."""

FAILED_RUN_STATUSES: tuple[RunStatus, ...] = (RunStatus.FAILED, RunStatus.DELETES_BLOCKED)
"""The failed list: runs an operator looks at (kept longer by the retention job)."""

REPLAYABLE_RUN_STATUSES = FAILED_RUN_STATUSES
"""A run on the failed list is the one that can be replayed."""

SUCCESSFUL_RUN_STATUSES: tuple[RunStatus, ...] = (RunStatus.SUCCEEDED, RunStatus.SKIPPED)
"""A command whose runs all ended in one of these succeeded (the CLI's exit code 0)."""


class CredentialStatus(StrEnum):
    """The result of the last check of a customer's OAuth client credentials."""

    # Stored in customers.credential_status.

    UNKNOWN = "unknown"
    VALID = "valid"
    INVALID = "invalid"


class SyncReason(StrEnum):
    """Why a sync was requested."""

    # Stored in sync_runs.reason; carried by the sync commands.

    CREATED = "created"
    CREDENTIALS_CHANGED = "credentials_changed"
    REACTIVATED = "reactivated"
    MANUAL = "manual"
    HOURLY = "hourly"
    NIGHTLY = "nightly"
    CLI = "cli"
    REPLAY = "replay"


class FailureKind(StrEnum):
    """Whether a failed sync is worth retrying (transient) or needs a person (permanent)."""

    # Stored in sync_runs.error_kind; carried by the failure events.

    TRANSIENT = "transient"
    PERMANENT = "permanent"
