"""A workflow row has a value for every column of the table (no database needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sync_engine.rows import UPDATABLE_COLUMNS, without_nul, workflow_row
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


def test_nul_characters_are_stripped_at_any_depth_and_a_clean_item_is_kept_as_it_is() -> None:
    clean = {"id": 1, "name": "a", "active_version": {"tags": ["x", {"k": "v"}]}, "n": None}
    assert without_nul(clean) is clean  # no copy when there is nothing to strip
    dirty = {"id": 1, "na\x00me": "a\x00b", "v": [{"k": ["\x00", 3]}], "n": 2**70}
    assert without_nul(dirty) == {"id": 1, "name": "ab", "v": [{"k": ["", 3]}], "n": 2**70}
    assert without_nul({1: "a\x00"}) == {1: "a"}  # not JSON as a whole: walked all the same
    assert without_nul("\x00x") == "x"
