"""Tuning of the sync engine, from the environment (documented in .env.example)."""

from __future__ import annotations

from observability.settings import EnvSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class SyncSettings(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="SYNC_", extra="ignore")

    delete_guard_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Largest share of a customer's workflows one run may delete.",
    )
    delete_guard_floor: int = Field(
        3,
        ge=0,
        description="Deletions one run may always make, whatever the share (small customers).",
    )
    allow_deletes_valid_seconds: float = Field(
        900.0,
        gt=0,
        description=(
            "How long after its requested_at a command's allow_deletes is honoured; an older "
            "(redelivered, replayed) command syncs under the normal deletion guard."
        ),
    )
    confirm_concurrency: int = Field(
        8, ge=1, le=32, description="GET /workflows/{id} calls in flight to confirm absences."
    )
    page_length: int = Field(50, ge=1, le=50, description="Zuora page size (Zuora caps it at 50).")
    lock_wait_seconds: float = Field(
        10.0, ge=0.0, description="How long a sync waits for another sync of the same customer."
    )
    zuora_timeout_seconds: float = Field(
        30.0, gt=0, description="Per-request timeout towards Zuora."
    )
    zuora_max_retries: int = Field(5, ge=0, description="Retries of one Zuora request (429/5xx).")
    zuora_backoff_base_seconds: float = Field(
        1.0, gt=0, description="First retry backoff; doubles per retry (with full jitter)."
    )
    zuora_backoff_cap_seconds: float = Field(60.0, gt=0, description="Largest retry backoff.")
    # Bounds on Zuora (reliability-audit A6, A8); README "Configuration" explains each.
    deadline_seconds: float = Field(
        240.0,
        gt=0,
        description="Deadline of the Zuora part of one sync (token, every page, retries); "
        "keep it below the worker's max poll interval.",
    )
    zuora_request_deadline_seconds: float = Field(
        60.0, gt=0, description="Total deadline of one Zuora request, whole body included."
    )
    zuora_max_response_bytes: int = Field(
        20_000_000, ge=1024, description="Largest Zuora response body read; larger ones fail."
    )
    zuora_token_requests_per_minute: float = Field(
        60.0, gt=0, description="Token requests per minute per Zuora host, for the process."
    )
    zuora_token_burst: int = Field(10, ge=1, description="Token requests allowed at once.")
    zuora_breaker_threshold: int = Field(
        10, ge=1, description="Consecutive 5xx/transport failures of a host that open its circuit."
    )
    zuora_breaker_cooldown_seconds: float = Field(
        30.0, gt=0, description="How long an open circuit refuses requests before a probe."
    )
