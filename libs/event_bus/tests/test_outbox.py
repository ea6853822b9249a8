"""Outbox + relay against real PostgreSQL and a real local broker (plus SQLite and fakes)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta

import pytest
from event_bus import KafkaPublisher, KafkaSettings, ensure_topics
from event_bus.local_broker import LocalBroker, start_local_broker
from event_bus.outbox import OutboxRelay, enqueue, parked_count, pending_count
from event_bus.testing import consume_records, kafka_test_settings
from pydantic import BaseModel
from sqlalchemy import select, text
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


async def test_sqlite_relay_failure_holds_back_only_its_own_key(sqlite_sessions: Sessions) -> None:
    messages = _numbered(keys=2, per_key=3)  # k0#0, k1#0, k0#1, k1#1, k0#2, k1#2
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

    relay = OutboxRelay(sqlite_sessions, publish, retry_delay=0)
    # k1#1 fails: k1#2 waits behind it, k0 goes on.
    assert await relay.run_once() == 4
    assert isinstance(relay.last_failure, ConnectionError)
    async with sqlite_sessions() as session:
        assert await pending_count(session) == 2
        failed = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.attempts > 0))
        ).one()
    assert failed.id == uuid.UUID(messages[3].id)
    assert failed.last_error == "ConnectionError: broker gone"
    assert failed.sent_at is None and failed.dead_at is None

    assert await relay.run_once() == 2
    assert relay.last_failure is None
    _assert_ordered_per_key_values([(k, s) for _, k, s in published], messages)


def _assert_ordered_per_key_values(
    published: Sequence[tuple[bytes | None, int]], expected: Sequence[Numbered]
) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    for key, seq in published:
        assert key is not None
        seen[key.decode()].append(seq)
    wanted: dict[str, list[int]] = defaultdict(list)
    for message in expected:
        wanted[message.key].append(message.seq)
    assert dict(seen) == dict(wanted)


class _FailingKey:
    """A publisher that refuses every message of one key (an oversized record, a topic ACL)."""

    def __init__(self, bad_key: str, delay: float = 0.0) -> None:
        self.bad_key = bad_key.encode()
        self.delay = delay
        self.published: list[tuple[bytes | None, int]] = []

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        body = json.loads(value)
        if key == self.bad_key and body["seq"] == 0:
            raise ValueError("MessageSizeTooLargeError: the message is too large")
        self.published.append((key, body["seq"]))


async def test_a_failing_row_does_not_hold_back_other_keys_and_is_parked(
    pg_sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    # Audit A4, exp13: one row failing for ever used to block every row behind it.
    publisher = _FailingKey("bad")
    parked_topics: list[str] = []
    relay = OutboxRelay(
        pg_sessions, publisher, retry_delay=0, max_attempts=3, on_parked=parked_topics.append
    )
    bad = [Numbered(id=str(uuid.uuid4()), key="bad", seq=n) for n in range(2)]
    await _enqueue_all(pg_sessions, [bad[0], *_numbered(keys=3, per_key=1), bad[1]])
    caplog.set_level(logging.WARNING, logger="event_bus.outbox")

    assert await relay.run_once() == 3  # the three good keys; bad#1 waits behind bad#0
    assert await relay.run_once() == 0  # only bad#0 is due: attempt 2 (no sign the broker is up)
    await _enqueue_all(pg_sessions, _numbered(keys=1, per_key=1))
    assert await relay.run_once() == 1  # attempt 3 while another row is published: parked
    assert relay.last_round.parked == 1
    assert parked_topics == [TOPIC]
    assert await relay.run_once() == 1  # bad#1 is no longer held back
    async with pg_sessions() as session:
        assert await pending_count(session) == 0
        assert await parked_count(session) == 1
        parked = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.dead_at.is_not(None)))
        ).one()
    assert parked.id == uuid.UUID(bad[0].id)
    assert parked.attempts == 3 and parked.sent_at is None
    assert "MessageSizeTooLargeError" in (parked.last_error or "")
    assert (b"bad", 1) in publisher.published and (b"bad", 0) not in publisher.published
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "parked after 3 failed attempts" in errors[0].getMessage()


async def test_no_transaction_is_held_while_publishing(
    pg_sessions: Sessions, postgres_url: str
) -> None:
    # Audit A4, exp17: with idle_in_transaction_session_timeout shorter than one batch, the old
    # relay's transaction was killed at commit: the batch was published again and again.
    database = postgres_url.rsplit("/", 1)[1]
    engine = pg_sessions.kw["bind"]
    async with engine.begin() as conn:
        await conn.execute(
            text(f'ALTER DATABASE "{database}" SET idle_in_transaction_session_timeout = 1000')
        )
    await engine.dispose()  # new connections get the setting
    async with pg_sessions() as session:
        shown = await session.scalar(text("SHOW idle_in_transaction_session_timeout"))
    assert shown == "1s"
    messages = _numbered(keys=2, per_key=5)
    await _enqueue_all(pg_sessions, messages)
    publisher = _FailingKey("none", delay=0.2)  # 10 x 0.2 s: twice the timeout
    relay = OutboxRelay(pg_sessions, publisher)

    assert await relay.run_once() == 10
    async with pg_sessions() as session:
        assert await pending_count(session) == 0
    assert len(publisher.published) == 10  # each once
    _assert_ordered_per_key_values(publisher.published, messages)


async def test_order_comes_from_the_database_not_the_writers_clock(
    pg_sessions: Sessions,
) -> None:
    # Audit M10: a writer whose clock runs ahead stamps a later created_at on an earlier row.
    first, second = (Numbered(id=str(uuid.uuid4()), key="k", seq=n) for n in range(2))
    await _enqueue_all(pg_sessions, [first])
    await _enqueue_all(pg_sessions, [second])
    async with pg_sessions() as session, session.begin():
        row = await session.get(OutboxMessage, uuid.UUID(first.id))
        assert row is not None
        row.created_at = row.created_at + timedelta(hours=1)
    publisher = _FailingKey("none")
    assert await OutboxRelay(pg_sessions, publisher).run_once() == 2
    assert publisher.published == [(b"k", 0), (b"k", 1)]


async def test_a_claimed_row_holds_back_its_key_for_another_relay(pg_sessions: Sessions) -> None:
    messages = _numbered(keys=2, per_key=2)  # k0#0, k1#0, k0#1, k1#1
    await _enqueue_all(pg_sessions, messages)
    release = asyncio.Event()
    first_claimed = asyncio.Event()
    slow: list[tuple[bytes | None, int]] = []

    async def stuck_publish(topic: str, key: bytes | None, value: bytes, headers: object) -> None:
        first_claimed.set()
        await release.wait()
        slow.append((key, json.loads(value)["seq"]))

    holder = OutboxRelay(pg_sessions, stuck_publish, batch_size=1)
    task = asyncio.create_task(holder.run_once())
    await asyncio.wait_for(first_claimed.wait(), 10)  # k0#0 is claimed and being published
    other = _FailingKey("none")
    assert await OutboxRelay(pg_sessions, other).run_once() == 2
    assert other.published == [(b"k1", 0), (b"k1", 1)]  # k0#1 waits for k0#0
    release.set()
    assert await asyncio.wait_for(task, 10) == 1
    assert await OutboxRelay(pg_sessions, other).run_once() == 1
    assert slow == [(b"k0", 0)] and other.published[-1] == (b"k0", 1)


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
