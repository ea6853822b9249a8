"""Configuration of a sync-worker process (environment variables, see .env.example)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore")

    group_id: str = Field(
        "sync-worker",
        description="Prefix of the consumer groups shared by all workers (one group per topic).",
    )
    concurrency: int = Field(
        4,
        ge=1,
        le=64,
        description="Partitions of the command topic worked on at once by one process "
        "(one consumer each, so one customer's commands stay in order).",
    )
    max_attempts: int = Field(3, ge=1, description="Attempts in total before dead-lettering.")
    retry_backoff_seconds: float = Field(
        60.0, ge=0.0, description="Delay before a transiently failed sync is retried."
    )
    redelivery_delay_seconds: float = Field(
        2.0,
        ge=0.0,
        description="Pause before a message whose processing crashed (DB/Kafka down) is re-read.",
    )
    max_poll_interval_ms: int = Field(
        600_000,
        ge=10_000,
        description="Kafka max.poll.interval.ms; must exceed the retry backoff plus one sync.",
    )
    lag_interval_seconds: float = Field(
        15.0,
        ge=0.0,
        description="How often the zws_consumer_lag metric is refreshed (0 disables it).",
    )
    ledger_retention_days: float = Field(
        7.0,
        gt=0,
        description="Keep processed-message ids and sent outbox rows this long, then prune them.",
    )
    prune_interval_seconds: float = Field(
        3600.0, ge=0, description="How often the worker prunes them (0 disables)."
    )
