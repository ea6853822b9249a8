"""A workflow row has a value for every column of the table (no database needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sync_engine.rows import UPDATABLE_COLUMNS, workflow_row
from workflow_store.models import WORKFLOW_FIELDS, WORKFLOW_KEY_COLUMNS, StoredWorkflow
from zuora_client import Workflow

_TABLE_COLUMNS = [c.name for c in StoredWorkflow.__table__.columns]


def test_a_row_has_a_value_for_every_column_but_the_generated_id() -> None:
    workflow = Workflow.from_api(
        {"id": 7, "name": "Invoice run", "priority": "High", "active_version": {"id": 3}}
    )
    row = workflow_row(uuid.uuid4(), workflow, "0" * 64, datetime.now(UTC))
    assert sorted(row) == sorted(set(_TABLE_COLUMNS) - {"id"})
    assert row["priority"] == "High" and row["active_version_id"] == 3


def test_an_update_rewrites_every_field_and_the_record_never_the_identity() -> None:
    assert list(UPDATABLE_COLUMNS) == [
        *WORKFLOW_FIELDS,
        "raw",
        "content_hash",
        "last_changed_at",
    ]
    assert not set(UPDATABLE_COLUMNS) & {*WORKFLOW_KEY_COLUMNS, "first_seen_at"}
