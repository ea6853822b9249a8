from __future__ import annotations

import pytest
from event_bus import KafkaSettings, make_broker, make_producer


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_IDEMPOTENT_PRODUCER", "KAFKA_TOPIC_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)
    settings = KafkaSettings()
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.idempotent_producer is False
    assert settings.topic_partitions == 8
    assert settings.replication_factor == 1
    assert (settings.session_timeout_ms, settings.heartbeat_interval_ms) == (10000, 3000)
    assert settings.client_id("api") == "zuora-workflow-sync-api"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("KAFKA_IDEMPOTENT_PRODUCER", "true")
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "12")
    settings = KafkaSettings()
    assert settings.bootstrap_list == ["kafka-0:9092", "kafka-1:9092"]
    assert settings.idempotent_producer is True
    assert settings.topic_partitions == 12
    assert settings.consumer_options() == {
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 3000,
    }


@pytest.mark.parametrize("idempotent", [False, True])
async def test_producer_follows_settings(idempotent: bool) -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", idempotent_producer=idempotent)
    producer = make_producer(settings, component="relay")
    try:
        assert (producer._txn_manager is not None) is idempotent
        assert producer.client._client_id == "zuora-workflow-sync-relay"
    finally:
        await producer.stop()


def test_broker_follows_settings() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", idempotent_producer=True)
    broker = make_broker(settings, component="worker")
    options = broker._connection_kwargs
    assert options["enable_idempotence"] is True
    assert options["acks"] == "all"
    assert options["client_id"] == "zuora-workflow-sync-worker"
