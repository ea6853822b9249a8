"""Request and response schemas: ``XCreate`` / ``XUpdate`` in, ``XPublic`` out.

Inputs forbid unknown fields, bound every string and refuse control characters (PostgreSQL
cannot store NUL). Outputs never have a secret field: the client secret is write-only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from application import rules

# The read queries' own vocabulary, re-exported for the routes.
from application.workflow_reads import WorkflowSort, WorkflowTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)
from sync_messages.messages import MAX_ALLOW_DELETES
from workflow_store.models import CredentialStatus, FailureKind, RunStatus, SyncReason

__all__ = [
    "ActiveVersion",
    "CommandAccepted",
    "CustomerCreate",
    "CustomerPublic",
    "CustomerUpdate",
    "Page",
    "ReplayRequest",
    "SyncRequest",
    "SyncRunPublic",
    "WorkflowDetail",
    "WorkflowSort",
    "WorkflowSummary",
    "WorkflowTrigger",
]

# One set of rules for every entrypoint: the constants come from the application layer, whose
# use cases check the same rules again for the CLI and the UI.
PLAIN_TEXT_PATTERN = rules.PLAIN_TEXT_PATTERN


def _encodable(value: str) -> str:
    # Lone surrogates can arrive through JSON escapes; they cannot be stored as UTF-8.
    return rules.unicode_text(value)


def _secret_valid(value: SecretStr) -> SecretStr:
    rules.client_secret(value.get_secret_value())  # never echoed: the rules name no value
    return value


CustomerName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=rules.NAME_MAX, pattern=rules.NAME_PATTERN),
    AfterValidator(_encodable),
]
BaseUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=rules.BASE_URL_MAX, pattern=PLAIN_TEXT_PATTERN),
    AfterValidator(_encodable),
]
ClientId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=rules.CLIENT_ID_MAX, pattern=rules.TOKEN_PATTERN),
    AfterValidator(_encodable),
]
EntityId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=rules.ENTITY_ID_MAX, pattern=rules.TOKEN_PATTERN),
    AfterValidator(_encodable),
]
ClientSecret = Annotated[
    SecretStr,
    Field(min_length=1, max_length=rules.CLIENT_SECRET_MAX),
    AfterValidator(_secret_valid),
]
SearchText = Annotated[
    str,
    StringConstraints(max_length=200, pattern=PLAIN_TEXT_PATTERN),
    AfterValidator(_encodable),
]
StatusText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=PLAIN_TEXT_PATTERN),
    AfterValidator(_encodable),
]


_INPUT = ConfigDict(extra="forbid", str_strip_whitespace=False, hide_input_in_errors=True)

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int = Field(description="Number of items matching the query, all pages together.")
    page: int = Field(description="This page's number (from 1).")
    page_size: int = Field(description="Maximum number of items per page.")


# -- customers -------------------------------------------------------------------------------


class CustomerCreate(BaseModel):
    """A new customer: one Zuora tenant and its OAuth client credentials."""

    model_config = _INPUT

    name: CustomerName = Field(description="Unique customer name.", examples=["Acme Corp"])
    base_url: BaseUrl = Field(
        description="Zuora REST base URL (an official host, or one in ZUORA_ALLOWED_BASE_URLS).",
        examples=["https://rest.apisandbox.zuora.com"],
    )
    client_id: ClientId = Field(description="OAuth client id.")
    client_secret: ClientSecret = Field(description="OAuth client secret (write-only).")
    entity_id: EntityId | None = Field(default=None, description="Zuora entity id (optional).")
    validate_credentials: bool = Field(
        default=True,
        description="Check the credentials with a real token request before saving "
        "(set false for offline setups).",
    )


class CustomerUpdate(BaseModel):
    """Changes to a customer; absent fields stay as they are. ``entity_id: null`` clears it."""

    model_config = _INPUT

    name: CustomerName | None = None
    base_url: BaseUrl | None = None
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None
    entity_id: EntityId | None = None
    active: bool | None = None
    validate_credentials: bool = Field(
        default=True, description="Check changed credentials with a real token request."
    )


class CustomerPublic(BaseModel):
    """A customer as the API shows it (never the client secret)."""

    id: uuid.UUID
    name: str
    base_url: str
    client_id: str
    entity_id: str | None
    active: bool
    credential_status: CredentialStatus = Field(description="The last check of the credentials.")
    last_sync_status: RunStatus | None
    last_sync_at: datetime | None
    last_successful_sync_at: datetime | None
    last_sync_error: str | None
    workflow_count: int
    created_at: datetime
    updated_at: datetime


# -- workflows -------------------------------------------------------------------------------


class ActiveVersion(BaseModel):
    id: int | None
    version: str | None
    status: str | None
    type: str | None


class WorkflowSummary(BaseModel):
    """A workflow in a listing (no raw item)."""

    zuora_id: int
    name: str
    description: str | None
    status: str | None
    active_version: ActiveVersion | None
    callout_trigger: bool | None
    ondemand_trigger: bool | None
    scheduled_trigger: bool | None
    interval: str | None
    timezone: str | None
    priority: str | None
    zuora_created_at: datetime | None
    zuora_updated_at: datetime | None
    last_synced_at: datetime | None = Field(
        description="The customer's last successful sync (rows are not rewritten when unchanged)."
    )


class WorkflowDetail(WorkflowSummary):
    """One workflow with the raw Zuora item."""

    first_seen_at: datetime
    last_changed_at: datetime
    raw: dict[str, Any]


# -- sync ------------------------------------------------------------------------------------


def _force_field() -> Any:
    return Field(
        default=False,
        description="Sync even if a recent successful sync covers the request (skip "
        "coalescing). Never lifts the deletion guard.",
    )


class SyncAllRequest(BaseModel):
    model_config = _INPUT

    force: bool = _force_field()
    allow_deletes: int | None = Field(
        default=None, description="Refused here: allow_deletes applies to one customer only."
    )

    @model_validator(mode="after")
    def _no_allow_deletes(self) -> SyncAllRequest:
        if self.allow_deletes is not None:
            raise ValueError(
                "allow_deletes applies to one customer only (POST /customers/{id}/sync or a "
                "replay); it is refused on a sync of all customers"
            )
        return self


class SyncRequest(BaseModel):
    model_config = _INPUT

    force: bool = _force_field()
    allow_deletes: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ALLOW_DELETES,
        description="A run the deletion guard blocks may delete at most this many rows (more "
        "pending keeps it blocked). Expires: honoured only shortly after the request.",
    )


class ReplayRequest(SyncRequest):
    """Replay options; ``allow_deletes`` only on the replay of a deletes_blocked run."""


class CommandAccepted(BaseModel):
    command_id: str = Field(description="Id of the queued command (its idempotency key).")


class SyncRunPublic(BaseModel):
    """One attempt to sync one customer."""

    id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    command_id: str | None
    reason: SyncReason
    attempt: int
    forced: bool
    status: RunStatus
    skip_reason: str | None
    pages: int
    created: int
    updated: int
    deleted: int
    unchanged: int
    total: int
    blocked_deletes: int | None
    error_kind: FailureKind | None
    error_message: str | None
    zuora_request_id: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    replay_of: uuid.UUID | None
    definitions_fetched: int = Field(0, description="Workflow exports fetched from Zuora.")
    definitions_changed: int = Field(0, description="Definitions stored as new or different.")
    definitions_failed: int = Field(
        0, description="Exports that failed; those workflows keep their stored definition."
    )
