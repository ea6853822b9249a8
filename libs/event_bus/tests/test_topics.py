from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from event_bus import KafkaSettings, ensure_topics
from event_bus.topics import TopicsNotReadyError
from sync_messages.topics import ALL_TOPICS, SYNC_ALL

pytestmark = pytest.mark.integration


async def _partitions(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
        described = await admin.describe_topics(names)
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()


async def test_creates_all_topics_with_configured_partitions(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=6)
    await ensure_topics(settings)
    partitions = await _partitions(kafka_bootstrap)
    assert {t: partitions[t] for t in ALL_TOPICS} == dict.fromkeys(ALL_TOPICS, 6)


async def test_is_idempotent_and_leaves_existing_topics_alone(kafka_bootstrap: str) -> None:
    await ensure_topics(
        KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=2), [SYNC_ALL]
    )
    await ensure_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=5))
    partitions = await _partitions(kafka_bootstrap)
    assert partitions[SYNC_ALL] == 2
    assert all(partitions[t] == 5 for t in ALL_TOPICS if t != SYNC_ALL)


async def test_concurrent_callers_do_not_fail(kafka_settings: KafkaSettings) -> None:
    import asyncio

    await asyncio.gather(*(ensure_topics(kafka_settings) for _ in range(4)))
    partitions = await _partitions(kafka_settings.bootstrap_servers)
    assert all(partitions[t] == kafka_settings.topic_partitions for t in ALL_TOPICS)


async def test_gives_up_when_no_broker() -> None:
    from event_bus.local_broker import free_port

    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(TopicsNotReadyError):
        await ensure_topics(settings, wait_seconds=0.5, request_timeout_ms=200)


async def test_waits_for_a_starting_broker() -> None:
    import asyncio

    from event_bus.local_broker import free_port, start_local_broker

    port = free_port()
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", topic_partitions=3)
    task = asyncio.create_task(ensure_topics(settings, wait_seconds=10, request_timeout_ms=500))
    await asyncio.sleep(0.5)
    with start_local_broker(port):
        await task
        assert (await _partitions(settings.bootstrap_servers))[SYNC_ALL] == 3


async def test_the_services_wait_ends_when_they_stop() -> None:
    import asyncio

    from event_bus.local_broker import free_port
    from event_bus.topics import ensure_topics_until

    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nobody listens
    stop = asyncio.Event()
    waiting = asyncio.create_task(ensure_topics_until(settings, stop))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # no deadline: still trying
    stop.set()
    assert await asyncio.wait_for(waiting, timeout=10) is False


async def test_the_services_wait_creates_the_topics(kafka_settings: KafkaSettings) -> None:
    import asyncio

    from event_bus.topics import ensure_topics_until

    assert await ensure_topics_until(kafka_settings, asyncio.Event()) is True
    partitions = await _partitions(kafka_settings.bootstrap_servers)
    assert all(partitions[t] == kafka_settings.topic_partitions for t in ALL_TOPICS)
