"""The outbox relay inside the API: publishes to a real (local) broker; while the broker is
down the API keeps answering and the rows wait, then go out once a broker is back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from customer_api.app import create_app
from customer_api.settings import ApiSettings
from event_bus.local_broker import free_port, start_local_broker
from event_bus.testing import kafka_test_settings
from sync_messages import topics

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer test-key-one-0123456789"}


async def _pending(app: Any) -> int:
    count: int = await app.state.runtime.relay.pending_count()
    return count


async def _wait_until_sent(app: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while await _pending(app):
        assert time.monotonic() < deadline, "outbox rows were not published in time"
        await asyncio.sleep(0.1)


async def _consume(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + 15
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def test_relay_publishes_outbox_rows(
    make_settings: Callable[..., ApiSettings],
    kafka_bootstrap: str,
    customer_body: Callable[..., dict[str, Any]],
) -> None:
    settings = make_settings(OUTBOX_RELAY_ENABLED=True, kafka=kafka_test_settings(kafka_bootstrap))
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as client,
    ):
        created = await client.post("/customers", json=customer_body(validate_credentials=False))
        assert created.status_code == 201
        customer_id = created.json()["id"]
        sync = await client.post(f"/customers/{customer_id}/sync")
        assert sync.status_code == 202
        await _wait_until_sent(app)

    events = await _consume(kafka_bootstrap, topics.CUSTOMER_EVENTS, 1)
    assert len(events) == 1
    assert events[0].key == customer_id.encode()
    payload = json.loads(events[0].value)
    assert payload["type"] == "CustomerCreated" and payload["customer_id"] == customer_id
    assert ("content-type", b"application/json") in list(events[0].headers)
    commands = await _consume(kafka_bootstrap, topics.SYNC_PRIORITY_COMMANDS, 1)
    assert json.loads(commands[0].value)["id"] == sync.json()["command_id"]


async def test_api_keeps_answering_while_the_broker_is_down(
    make_settings: Callable[..., ApiSettings],
    customer_body: Callable[..., dict[str, Any]],
) -> None:
    port = free_port()  # nothing listens here yet
    settings = make_settings(
        OUTBOX_RELAY_ENABLED=True, kafka=kafka_test_settings(f"127.0.0.1:{port}")
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as client,
    ):
        for i in range(5):
            response = await client.post(
                "/customers", json=customer_body(name=f"Down {i}", validate_credentials=False)
            )
            assert response.status_code == 201
        assert (await client.get("/customers")).json()["total"] == 5
        assert (await client.get("/readyz")).status_code == 200
        await asyncio.sleep(1.0)
        assert await _pending(app) == 5  # nothing lost, nothing sent

        broker = start_local_broker(port)  # the broker comes back
        try:
            await _wait_until_sent(app, within=40)
            events = await _consume(broker.bootstrap_servers, topics.CUSTOMER_EVENTS, 5)
        finally:
            broker.stop()
    assert sorted(json.loads(e.value)["name"] for e in events) == [f"Down {i}" for i in range(5)]
