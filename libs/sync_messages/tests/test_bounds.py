"""A1: message fields are bounded, so a hostile or broken message fails validation (and is
dead-lettered) instead of failing deep in a handler on every delivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sync_messages import (
    MAX_ID_LENGTH,
    RetrySync,
    SyncCustomerWorkflows,
    customer_event_adapter,
)


def command_json(**fields: object) -> dict[str, object]:
    return {
        "type": "SyncCustomerWorkflows",
        "customer_id": str(uuid.uuid4()),
        "reason": "manual",
        **fields,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"requested_at": "2026-11-29T02:00:00"},  # naive: cannot be compared with stored times
        {"occurred_at": "2026-11-29T02:00:00"},
        {"id": "x" * (MAX_ID_LENGTH + 1)},  # longer than sync_runs.command_id
        {"id": ""},
        {"reason": "whatever"},
    ],
)
def test_command_fields_out_of_bounds_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SyncCustomerWorkflows.model_validate(command_json(**fields))


def test_a_bounded_command_is_accepted() -> None:
    command = SyncCustomerWorkflows.model_validate(
        command_json(id="x" * MAX_ID_LENGTH, requested_at="2026-11-29T02:00:00+01:00")
    )
    assert command.requested_at.utcoffset() == timedelta(hours=1)


def retry_json(**fields: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "command": command_json(),
        "attempt": 2,
        "not_before": now.isoformat(),
        **fields,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"attempt": 2**31},  # overflows the attempt column
        {"attempt": 0},
        {"not_before": "2026-11-29T02:00:00"},  # naive
        {"not_before": (datetime.now(UTC) + timedelta(days=2)).isoformat()},  # past the window
        {"deferrals": -1},
    ],
)
def test_retry_fields_out_of_bounds_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetrySync.model_validate(retry_json(**fields))


def test_retry_ids_are_deterministic() -> None:
    assert RetrySync.retry_id("c", 2) == RetrySync.retry_id("c", 2)
    assert len({RetrySync.retry_id("c", 2), RetrySync.retry_id("c", 3)}) == 2
    assert RetrySync.retry_id("c", 2, 1) != RetrySync.retry_id("c", 2)


def test_customer_event_ids_fit_the_ledger() -> None:
    with pytest.raises(ValidationError):
        customer_event_adapter.validate_python(
            {
                "type": "CustomerCreated",
                "customer_id": str(uuid.uuid4()),
                "name": "a",
                "id": "x" * 101,
            }
        )
