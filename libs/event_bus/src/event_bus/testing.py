"""Pytest fixtures: a fresh local Kafka-compatible broker (Tansu) per test.

Enable with ``pytest_plugins = ["event_bus.testing"]``. Tansu starts in milliseconds and keeps
everything in memory, so each test gets an empty broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from event_bus.local_broker import LocalBroker, start_local_broker
from event_bus.settings import KafkaSettings

__all__ = [
    "consume_records",
    "kafka_bootstrap",
    "kafka_settings",
    "kafka_test_settings",
    "local_kafka",
]


def kafka_test_settings(bootstrap_servers: str, **overrides: object) -> KafkaSettings:
    """Settings tuned for tests: quick consumer-group joins, 4 partitions per topic."""
    values: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers,
        "session_timeout_ms": 2000,
        "heartbeat_interval_ms": 300,
        "topic_partitions": 4,
    }
    values.update(overrides)
    return KafkaSettings.model_validate(values)


@pytest.fixture
def local_kafka() -> Iterator[LocalBroker]:
    """A fresh Tansu broker on a free port (the handle: stop it to simulate an outage)."""
    broker = start_local_broker()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_bootstrap(local_kafka: LocalBroker) -> str:
    """``127.0.0.1:PORT`` of a fresh Tansu broker, stopped after the test."""
    return local_kafka.bootstrap_servers


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings for the test broker: 2 s sessions, 300 ms heartbeats, 4 partitions."""
    return kafka_test_settings(kafka_bootstrap)


async def consume_records(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    expected: int,
    wait_seconds: float = 10.0,
    settle_seconds: float = 0.3,
) -> list[Any]:
    """Read ``topics`` from the beginning (no consumer group) until ``expected`` records arrived.

    Then keeps reading for ``settle_seconds`` more so unexpected extra records (duplicates) show
    up too. Returns aiokafka ``ConsumerRecord`` objects, in per-partition order; returns what it
    has after ``wait_seconds`` even if fewer.
    """
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + wait_seconds
        settle_until: float | None = None
        while True:
            now = time.monotonic()
            if settle_until is None and len(records) >= expected:
                settle_until = now + settle_seconds
            if now >= (settle_until if settle_until is not None else deadline):
                break
            batches = await consumer.getmany(timeout_ms=100)
            for batch in batches.values():
                records.extend(batch)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records
