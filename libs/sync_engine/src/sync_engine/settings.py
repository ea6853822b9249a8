"""Tuning of the sync engine, from the environment (documented in .env.example)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SyncSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNC_", extra="ignore")

    delete_guard_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Largest share of a customer's workflows one run may delete.",
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
