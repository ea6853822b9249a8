"""Scheduler configuration from the environment (``SCHEDULER_*``, plus the shared ``KAFKA_*``,
``METRICS_*`` and ``LOG_*``/``APP_ENV`` parts)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from event_bus.settings import KafkaSettings
from observability.metrics import MetricsSettings
from observability.readiness import ReadinessSettings
from observability.settings import EnvSettings, LogSettings
from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

__all__ = ["SchedulerSettings"]


class SchedulerSettings(EnvSettings):
    """When to emit the sync-all commands, and how long to keep trying when Kafka is down;
    everything else one scheduler process reads, as nested parts."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", extra="ignore")

    hourly_cron: str = Field("0 * * * *", description="Crontab of the hourly sync-all.")
    nightly_cron: str = Field("0 2 * * *", description="Crontab of the nightly backup sync-all.")
    timezone: str = Field("UTC", description="IANA time zone the crontabs are read in.")
    publish_grace_seconds: float = Field(
        600, gt=0, description="How long to keep retrying one slot's publish while Kafka is down."
    )
    catch_up_seconds: float = Field(
        6 * 3600,
        ge=0,
        description="On start, emit each schedule's latest slot if it is younger than this "
        "(a scheduler down across 02:00 still runs the nightly; 0 disables). Idempotent: the "
        "slot id is the message id.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _valid_crontabs(self) -> SchedulerSettings:
        for name in ("hourly_cron", "nightly_cron"):
            expr = getattr(self, name)
            try:
                CronTrigger.from_crontab(expr, timezone=self.timezone)
            except ValueError as exc:
                raise ValueError(f"{name}: invalid crontab {expr!r}: {exc}") from exc
        return self
