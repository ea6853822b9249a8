"""The vocabulary's values are the wire format (database, JSON, messages, metric labels)."""

from __future__ import annotations

import uuid

from sync_messages import (
    SyncCustomerWorkflows,
    SyncStatsPayload,
    WorkflowSyncCompleted,
    WorkflowSyncFailed,
)
from sync_messages.vocabulary import (
    COMPLETED_RUN_STATUSES,
    FAILED_RUN_STATUSES,
    REPLAYABLE_RUN_STATUSES,
    SUCCESSFUL_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    CredentialStatus,
    FailureKind,
    RunStatus,
    SyncReason,
)


def test_the_stored_strings_never_change() -> None:
    # Rows, messages and dashboards hold these: renaming one is a data migration, not a refactor.
    assert [s.value for s in RunStatus] == [
        "running",
        "succeeded",
        "failed",
        "skipped",
        "deletes_blocked",
        "retry_scheduled",
    ]
    assert [s.value for s in CredentialStatus] == ["unknown", "valid", "invalid"]
    assert [s.value for s in FailureKind] == ["transient", "permanent"]
    assert [s.value for s in SyncReason] == [
        "created",
        "credentials_changed",
        "reactivated",
        "manual",
        "hourly",
        "nightly",
        "cli",
        "replay",
    ]


def test_the_derived_groups() -> None:
    assert set(TERMINAL_RUN_STATUSES) == set(RunStatus) - {
        RunStatus.RUNNING,
        RunStatus.RETRY_SCHEDULED,
    }
    assert set(COMPLETED_RUN_STATUSES) == set(TERMINAL_RUN_STATUSES) - {RunStatus.FAILED}
    assert set(FAILED_RUN_STATUSES) == {RunStatus.FAILED, RunStatus.DELETES_BLOCKED}
    assert REPLAYABLE_RUN_STATUSES == FAILED_RUN_STATUSES
    assert set(SUCCESSFUL_RUN_STATUSES) <= set(COMPLETED_RUN_STATUSES)
    assert RunStatus.DELETES_BLOCKED not in SUCCESSFUL_RUN_STATUSES


def test_messages_carry_the_plain_strings() -> None:
    customer_id = uuid.uuid4()
    command = SyncCustomerWorkflows.model_validate_json(
        f'{{"customer_id": "{customer_id}", "reason": "replay"}}'
    )
    assert command.reason is SyncReason.REPLAY
    assert '"reason":"replay"' in command.model_dump_json()
    for status in COMPLETED_RUN_STATUSES:
        event = WorkflowSyncCompleted(
            customer_id=customer_id,
            run_id=uuid.uuid4(),
            command_id=None,
            status=status.value,
            stats=SyncStatsPayload(),
        )
        assert f'"status":"{status.value}"' in event.model_dump_json()
    failed = WorkflowSyncFailed(
        customer_id=customer_id,
        run_id=None,
        command_id=None,
        error_kind="transient",
        error="HTTP 503",
        attempt=1,
        will_retry=True,
    )
    assert '"error_kind":"transient"' in failed.model_dump_json()
