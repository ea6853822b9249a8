"""The workflow's one field list, against the table it is derived from."""

from __future__ import annotations

from workflow_store.models import (
    WORKFLOW_FIELDS,
    WORKFLOW_KEY_COLUMNS,
    WORKFLOW_RECORD_COLUMNS,
    StoredWorkflow,
)


def test_every_column_is_a_key_a_field_or_part_of_the_record() -> None:
    columns = [c.name for c in StoredWorkflow.__table__.columns]
    # A misspelt name in the key or record lists would turn that column into a "field".
    assert set(WORKFLOW_KEY_COLUMNS) <= set(columns)
    assert set(WORKFLOW_RECORD_COLUMNS) <= set(columns)
    assert sorted([*WORKFLOW_KEY_COLUMNS, *WORKFLOW_FIELDS, *WORKFLOW_RECORD_COLUMNS]) == sorted(
        columns
    )
    assert "priority" in WORKFLOW_FIELDS and "raw" not in WORKFLOW_FIELDS
