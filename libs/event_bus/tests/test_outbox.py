"""Outbox + relay against real PostgreSQL and a real local broker (plus SQLite and fakes)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence

import pytest
from event_bus import KafkaPublisher, KafkaSettings, ensure_topics
from event_bus.local_broker import LocalBroker, start_local_broker
from event_bus.outbox import OutboxRelay, enqueue, pending_count
from event_bus.testing import consume_records, kafka_test_settings
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sync_messages import SyncCustomerWorkflows
from sync_messages.topics import SYNC_COMMANDS
from workflow_store.models import OutboxMessage

Sessions = async_sessionmaker[AsyncSession]
TOPIC = "test.outbox.v1"


class Numbered(BaseModel):
    id: str
    key: str
    seq: int


def _numbered(keys: int, per_key: int) -> list[Numbered]:
    """Messages interleaved across keys: k0#0, k1#0, ..., k0#1, k1#1, ..."""
    return [
        Numbered(id=str(uuid.uuid4()), key=f"k{k}", seq=n)
        for n in range(per_key)
        for k in range(keys)
    ]


async def _enqueue_all(sessions: Sessions, messages: Sequence[Numbered], per_tx: int = 25) -> None:
    for start in range(0, len(messages), per_tx):
        async with sessions() as session, session.begin():
            for message in messages[start : start + per_tx]:
                enqueue(session, topic=TOPIC, message=message, key=message.key)


async def _drain(relay: OutboxRelay, sessions: Sessions, wait_seconds: float = 15) -> None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        await relay.run_once()
        async with sessions() as session:
            if await pending_count(session) == 0:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("outbox not drained in time")


async def _wait_pending_zero(sessions: Sessions, wait_seconds: float = 20) -> None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        async with sessions() as session:
            if await pending_count(session) == 0:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("outbox not drained in time")


def _assert_ordered_per_key(records: Sequence[object], expected: Sequence[Numbered]) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    for record in records:
        body = json.loads(record.value)  # type: ignore[attr-defined]
        assert record.key.decode() == body["key"]  # type: ignore[attr-defined]
        seen[body["key"]].append(body["seq"])
    wanted: dict[str, list[int]] = defaultdict(list)
    for message in expected:
        wanted[message.key].append(message.seq)
    assert dict(seen) == dict(wanted)


@pytest.mark.integration
async def test_enqueue_then_relay_publishes_in_order_and_marks_sent(
    pg_sessions: Sessions, kafka_settings: KafkaSettings
) -> None:
    await ensure_topics(kafka_settings, [TOPIC])
    messages = _numbered(keys=5, per_key=20)
    await _enqueue_all(pg_sessions, messages)

    publisher = KafkaPublisher(kafka_settings, publish_timeout=5)
    try:
        relay = OutboxRelay(pg_sessions, publisher, batch_size=30)
        await _drain(relay, pg_sessions)
    finally:
        await publisher.close()

    records = await consume_records(kafka_settings.bootstrap_servers, [TOPIC], expected=100)
    assert len(records) == 100
    _assert_ordered_per_key(records, messages)
    record = records[0]
    assert dict(record.headers)["content-type"] == b"application/json"
    async with pg_sessions() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    assert len(rows) == 100
    assert all(row.sent_at is not None and row.attempts == 0 for row in rows)
    assert {str(row.id) for row in rows} == {m.id for m in messages}


@pytest.mark.integration
async def test_payload_is_the_message_json_and_decodes_back(
    pg_sessions: Sessions, kafka_settings: KafkaSettings
) -> None:
    command = SyncCustomerWorkflows(customer_id=uuid.uuid4(), reason="manual")
    async with pg_sessions() as session, session.begin():
        enqueue(
            session,
            topic=SYNC_COMMANDS,
            message=command,
            key=str(command.customer_id),
            headers={"trace-id": "abc"},
        )
    publisher = KafkaPublisher(kafka_settings)
    try:
        assert await OutboxRelay(pg_sessions, publisher).run_once() == 1
    finally:
        await publisher.close()
    (record,) = await consume_records(kafka_settings.bootstrap_servers, [SYNC_COMMANDS], expected=1)
    assert SyncCustomerWorkflows.model_validate_json(record.value) == command
    assert record.key == str(command.customer_id).encode()
    assert dict(record.headers) == {"content-type": b"application/json", "trace-id": b"abc"}


@pytest.mark.integration
async def test_rolled_back_transaction_publishes_nothing(
    pg_sessions: Sessions, kafka_settings: KafkaSettings
) -> None:
    await ensure_topics(kafka_settings, [TOPIC])
    async with pg_sessions() as session, session.begin():
        enqueue(session, topic=TOPIC, message=_numbered(1, 1)[0], key="k0")
        await session.flush()
        assert await pending_count(session) == 1
        await session.rollback()
    published: list[str] = []

    async def publish(topic: str, key: bytes | None, value: bytes, headers: object) -> None:
        published.append(topic)

    relay = OutboxRelay(pg_sessions, publish)
    assert await relay.run_once() == 0
    assert published == []
    assert await relay.pending_count() == 0
    records = await consume_records(
        kafka_settings.bootstrap_servers, [TOPIC], expected=1, wait_seconds=1
    )
    assert records == []


@pytest.mark.integration
async def test_broker_outage_keeps_rows_pending_then_delivers(
    pg_sessions: Sessions, local_kafka: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    settings = kafka_test_settings(local_kafka.bootstrap_servers)
    await ensure_topics(settings, [TOPIC])
    publisher = KafkaPublisher(settings, publish_timeout=1)
    relay = OutboxRelay(pg_sessions, publisher, poll_interval=0.05, max_backoff=0.5)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="event_bus.outbox")

    # Warm up: the relay is connected when the broker goes away.
    first = _numbered(keys=1, per_key=1)
    await _enqueue_all(pg_sessions, first)
    task = asyncio.create_task(relay.run_forever(stop))
    await _wait_pending_zero(pg_sessions)

    local_kafka.stop()
    messages = _numbered(keys=3, per_key=5)
    await _enqueue_all(pg_sessions, messages, per_tx=4)
    relay.wake()
    await asyncio.sleep(2)
    assert not task.done()
    assert await relay.pending_count() == len(messages)
    async with pg_sessions() as session:
        stuck = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
        ).all()
    assert max(row.attempts for row in stuck) >= 2
    assert all(row.last_error for row in stuck if row.attempts)
    outage_logs = [r for r in caplog.records if "cannot publish" in r.getMessage()]
    assert len(outage_logs) == 1  # once per outage, not per poll

    # A new (empty, memory-only) broker on the same port: topics are created again.
    with start_local_broker(local_kafka.port) as again:
        await ensure_topics(settings, [TOPIC])
        await _wait_pending_zero(pg_sessions)
        stop.set()
        await asyncio.wait_for(task, 5)
        await publisher.close()
        records = await consume_records(again.bootstrap_servers, [TOPIC], expected=len(messages))
    _assert_ordered_per_key(records, messages)


@pytest.mark.integration
async def test_two_relays_publish_each_row_once(
    pg_sessions: Sessions, kafka_settings: KafkaSettings
) -> None:
    await ensure_topics(kafka_settings, [TOPIC])
    messages = _numbered(keys=10, per_key=30)
    await _enqueue_all(pg_sessions, messages, per_tx=50)
    publishers = [KafkaPublisher(kafka_settings, component=f"relay-{i}") for i in range(2)]
    relays = [OutboxRelay(pg_sessions, p, batch_size=20, poll_interval=0.01) for p in publishers]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run_forever(stop)) for r in relays]
    try:
        await _wait_pending_zero(pg_sessions)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for publisher in publishers:
            await publisher.close()
    records = await consume_records(
        kafka_settings.bootstrap_servers, [TOPIC], expected=len(messages), settle_seconds=1
    )
    ids = [json.loads(r.value)["id"] for r in records]
    assert len(ids) == len(messages)
    assert set(ids) == {m.id for m in messages}
    _assert_ordered_per_key(records, messages)


async def test_sqlite_relay_and_failure_stops_the_batch(sqlite_sessions: Sessions) -> None:
    messages = _numbered(keys=2, per_key=3)
    await _enqueue_all(sqlite_sessions, messages)
    published: list[tuple[str, bytes | None, int]] = []
    fail_at = {3}

    async def publish(
        topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        if len(published) in fail_at:
            fail_at.clear()
            raise ConnectionError("broker gone")
        assert ("content-type", b"application/json") in headers
        published.append((topic, key, json.loads(value)["seq"]))

    relay = OutboxRelay(sqlite_sessions, publish)
    assert await relay.run_once() == 3
    assert isinstance(relay.last_failure, ConnectionError)
    async with sqlite_sessions() as session:
        assert await pending_count(session) == 3
        failed = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.attempts > 0))
        ).one()
    assert failed.id == uuid.UUID(messages[3].id)
    assert failed.last_error == "ConnectionError: broker gone"
    assert failed.sent_at is None

    assert await relay.run_once() == 3
    assert relay.last_failure is None
    assert [(k, s) for _, k, s in published] == [(m.key.encode(), m.seq) for m in messages]


async def test_run_forever_survives_errors_and_backs_off(
    sqlite_sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    await _enqueue_all(sqlite_sessions, _numbered(keys=1, per_key=2))
    calls: list[float] = []
    healthy = asyncio.Event()

    async def publish(topic: str, key: bytes | None, value: bytes, headers: object) -> None:
        calls.append(time.monotonic())
        if not healthy.is_set():
            raise RuntimeError("down")

    relay = OutboxRelay(sqlite_sessions, publish, poll_interval=0.01, max_backoff=0.16)
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="event_bus.outbox")
    task = asyncio.create_task(relay.run_forever(stop))
    await asyncio.sleep(0.8)
    failures = len(calls)
    # 0.01, 0.02, 0.04, 0.08, 0.16, 0.16, ... : few attempts, not a hot loop.
    assert 4 <= failures <= 12
    healthy.set()
    await _wait_pending_zero(sqlite_sessions, wait_seconds=5)
    stop.set()
    await asyncio.wait_for(task, 2)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot publish" in m for m in messages) == 1
    assert sum("recovered" in m for m in messages) == 1


async def test_wake_publishes_without_waiting_for_the_poll(sqlite_sessions: Sessions) -> None:
    published: list[bytes] = []
    got_one = asyncio.Event()

    async def publish(topic: str, key: bytes | None, value: bytes, headers: object) -> None:
        published.append(value)
        got_one.set()

    relay = OutboxRelay(sqlite_sessions, publish, poll_interval=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run_forever(stop))
    await asyncio.sleep(0.1)
    await _enqueue_all(sqlite_sessions, _numbered(keys=1, per_key=1))
    relay.wake()
    await asyncio.wait_for(got_one.wait(), 3)  # far sooner than the 30 s poll
    assert len(published) == 1
    stop.set()
    await asyncio.wait_for(task, 2)


def test_enqueue_requires_an_id() -> None:
    class NoId(BaseModel):
        x: int = 1

    with pytest.raises(ValueError, match="no id"):
        enqueue(None, topic=TOPIC, message=NoId(), key=None)  # type: ignore[arg-type]
