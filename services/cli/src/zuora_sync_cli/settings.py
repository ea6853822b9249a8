"""Everything the ``zuora-sync`` CLI reads, built once per invocation (never at import).

The CLI talks to the database, syncs inline (``sync --inline``), and delivers its outbox rows to
Kafka, so it composes the same parts as the services: ``DATABASE_URL``/``ENCRYPTION_KEYS``/...,
``KAFKA_*``, ``SYNC_*`` and ``SYNC_DEFINITIONS_*``. (``zuora-sync schedule`` shows the scheduler's
own :class:`~sync_scheduler.settings.SchedulerSettings`: it prints that service's configuration.)
"""

from __future__ import annotations

from event_bus.settings import KafkaSettings
from observability.settings import EnvSettings
from pydantic import Field
from sync_engine import DefinitionSettings, SyncSettings
from workflow_store.settings import StoreSettings

__all__ = ["CliSettings"]


class CliSettings(EnvSettings):
    store: StoreSettings = Field(default_factory=StoreSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    definitions: DefinitionSettings = Field(default_factory=DefinitionSettings)
