"""The API's workflow shape follows the store's one field list (no database needed)."""

from __future__ import annotations

from typing import Any

from application.workflow_reads import ACTIVE_VERSION_FIELDS, SUMMARY_FIELDS
from customer_api.schemas import ActiveVersion, WorkflowDetail, WorkflowSummary
from workflow_store.models import WORKFLOW_FIELDS, WORKFLOW_RECORD_COLUMNS


def _column_names(fields: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for value in fields.values():
        names.extend(_column_names(value) if isinstance(value, dict) else [value.key])
    return names


def test_the_summary_shows_every_field_of_the_workflow_in_table_order() -> None:
    assert _column_names(SUMMARY_FIELDS) == ["zuora_id", *WORKFLOW_FIELDS]


def test_the_response_models_document_exactly_the_summary() -> None:
    # A column added to the table reaches SUMMARY_FIELDS by itself (and so the listing's JSON);
    # this fails until WorkflowSummary, the documented schema, names it too.
    assert list(WorkflowSummary.model_fields) == [*SUMMARY_FIELDS, "last_synced_at"]
    assert list(ActiveVersion.model_fields) == list(ACTIVE_VERSION_FIELDS)
    detail_only = set(WorkflowDetail.model_fields) - set(WorkflowSummary.model_fields)
    assert detail_only == set(WORKFLOW_RECORD_COLUMNS) - {"content_hash"}
