"""Kafka connection settings, read from the environment (``KAFKA_*``)."""

from __future__ import annotations

from typing import Any

from observability.settings import EnvSettings, comma_list
from pydantic import Field
from pydantic_settings import SettingsConfigDict

__all__ = ["KafkaSettings"]


class KafkaSettings(EnvSettings):
    """How to reach Kafka and how to shape topics, producers and consumers.

    Defaults fit Apache Kafka in production except ``idempotent_producer``, which is off because
    the local broker (Tansu) cannot do idempotent producers; turn it on for Apache Kafka.
    Tests and the embedded run use ``session_timeout_ms=2000, heartbeat_interval_ms=300``: Tansu
    makes each consumer-group join wait half the session timeout.
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list (KAFKA_BOOTSTRAP_SERVERS)."
    )
    idempotent_producer: bool = Field(
        False, description="enable.idempotence: on for Apache Kafka, must stay off for Tansu."
    )
    topic_partitions: int = Field(8, ge=1, description="Partitions of topics created at start.")
    replication_factor: int = Field(1, ge=1, description="Replication of topics created at start.")
    session_timeout_ms: int = Field(10000, ge=100, description="Consumer group session timeout.")
    heartbeat_interval_ms: int = Field(3000, ge=10, description="Consumer heartbeat interval.")
    client_id_prefix: str = Field("zuora-workflow-sync", description="Prefix of Kafka client ids.")

    @property
    def bootstrap_list(self) -> list[str]:
        """``bootstrap_servers`` split on commas, as the Kafka clients want it."""
        return comma_list(self.bootstrap_servers)

    def client_id(self, component: str) -> str:
        """The client id a component uses, e.g. ``zuora-workflow-sync-scheduler``."""
        return f"{self.client_id_prefix}-{component}" if component else self.client_id_prefix

    def consumer_options(self) -> dict[str, Any]:
        """Group-timing keyword arguments for a FastStream subscriber or an AIOKafkaConsumer."""
        return {
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
        }
