"""Configuration of a sync-worker process (environment variables, see .env.example).

:class:`SyncWorkerSettings` is the one object a worker process is built from; it composes the
shared parts (``DATABASE_URL``/``ENCRYPTION_KEYS``/..., ``KAFKA_*``, ``SYNC_*``,
``SYNC_DEFINITIONS_*``, ``METRICS_*``, ``LOG_*``) with the worker's own ``WORKER_*``
(:class:`WorkerSettings`).
"""

from __future__ import annotations

from event_bus.settings import KafkaSettings
from observability.metrics import MetricsSettings
from observability.readiness import ReadinessSettings
from observability.settings import EnvSettings, LogSettings
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict
from sync_engine import DefinitionSettings, SyncSettings
from workflow_store.settings import StoreSettings

__all__ = ["SyncWorkerSettings", "WorkerSettings", "check_sync_fits_poll_interval"]


class WorkerSettings(EnvSettings):
    """The worker's own ``WORKER_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore")

    group_id: str = Field(
        "sync-worker",
        description="Prefix of the consumer groups shared by all workers (one group per topic).",
    )
    concurrency: int = Field(
        4,
        ge=1,
        le=64,
        description="Consumers of each subscribed topic in one process, i.e. partitions worked "
        "on at once (one customer's commands stay in one partition, in order).",
    )
    max_in_flight: int = Field(
        32,
        ge=0,
        le=512,
        description="Sync commands one process works on at once, across its partitions of "
        "workflow-sync.commands.v1, several per partition (one customer's commands still in "
        "order, offsets committed up to the lowest unfinished one). When they are all taken, "
        "no more is fetched. Each uses one database session at a time (their customer locks "
        "share one connection). 0: one command per partition at a time.",
    )
    in_flight_target_lag_ms: float = Field(
        50.0,
        ge=0,
        le=10_000,
        description="Event-loop lag above which fewer sync commands are admitted (the limit "
        "adapts between 4 and WORKER_MAX_IN_FLIGHT: many in flight while Zuora is slow, few "
        "while the worker is CPU-bound). 0: always WORKER_MAX_IN_FLIGHT.",
    )
    fast_lane_hold_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="While a manual sync (priority topic) or a customer event's sync runs, bulk "
        "sync commands not started yet wait, at most this long (0: no fast lane).",
    )
    max_in_flight_per_zuora_host: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Syncs of one process against one Zuora host (a customer's base URL) at "
        "once, over every topic; unset: no limit of its own (WORKER_MAX_IN_FLIGHT bounds them).",
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
    max_deliveries: int = Field(
        3,
        ge=1,
        le=100,
        description="Deliveries of a message that fails for a reason of its own (not a database "
        "or Kafka outage) before it is dead-lettered and committed.",
    )
    max_busy_deferrals: int = Field(
        30,
        ge=0,
        le=1000,
        description="Times a command finding its customer busy is put back (after the retry "
        "backoff, not counted as an attempt) before busy counts as a failed attempt.",
    )
    max_retry_delay_seconds: float = Field(
        3600.0,
        gt=0,
        le=86_400,
        description="Longest wait of a retry after it was published, whatever its not_before.",
    )
    shutdown_grace_seconds: float = Field(
        100.0,
        ge=0,
        description="On SIGTERM: fetching stops, in-flight syncs get this long to finish. Keep "
        "it below Kubernetes' terminationGracePeriodSeconds (120 in deploy/k8s).",
    )
    max_poll_interval_ms: int = Field(
        600_000,
        ge=10_000,
        description="Kafka max.poll.interval.ms; must exceed the retry backoff plus one sync.",
    )
    abandoned_run_sweep_seconds: float = Field(
        300.0,
        ge=0,
        description="How often runs left running by a dead process are closed (0: never).",
    )
    abandoned_run_age_seconds: float = Field(
        900.0,
        gt=0,
        description="A run is closed as abandoned only when running this long and its customer's "
        "lock is free.",
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
    sync_run_retention_days: float = Field(
        30.0,
        gt=0,
        description="Keep sync runs this long (a customer's latest run is always kept).",
    )
    failed_run_retention_days: float = Field(
        90.0,
        gt=0,
        description="Keep terminal failures (failed, deletes_blocked) this long.",
    )

    @property
    def subscribers(self) -> int:
        """Messages one process handles at once: ``max_in_flight`` sync commands (or one per
        consumer when 0), priority commands, retries and customer events with ``concurrency``
        consumers each, plus the sync-all fan-out."""
        commands = self.max_in_flight or self.concurrency
        return commands + 3 * self.concurrency + 1

    @property
    def database_pool_size(self) -> int:
        """Connections one process may need: a message being handled uses one session at a
        time; the customer locks of all its syncs share one connection
        (:mod:`sync_engine.locks`); plus the ledger sweep and the pruner."""
        return self.subscribers + 3


def check_sync_fits_poll_interval(worker: WorkerSettings, sync: SyncSettings) -> None:
    """Refuse settings under which one sync (waiting for the customer lock, then the Zuora
    listing under its deadline) could outlast Kafka's poll interval, which would hand the
    partition to another worker while the sync still runs (audit A2, A6)."""
    budget = worker.max_poll_interval_ms / 1000
    needed = sync.lock_wait_seconds + sync.deadline_seconds
    if needed >= budget:
        raise ValueError(
            f"SYNC_LOCK_WAIT_SECONDS + SYNC_DEADLINE_SECONDS = {needed:g}s must stay below "
            f"WORKER_MAX_POLL_INTERVAL_MS ({budget:g}s)"
        )


class SyncWorkerSettings(EnvSettings):
    """Everything one sync-worker process reads, each part from its own variables."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    definitions: DefinitionSettings = Field(default_factory=DefinitionSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _sync_fits_poll_interval(self) -> SyncWorkerSettings:
        check_sync_fits_poll_interval(self.worker, self.sync)
        return self
