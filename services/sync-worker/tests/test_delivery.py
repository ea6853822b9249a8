"""How messages reach handlers (unit, fake Kafka message and consumer): poison is dead-lettered
after a bounded number of deliveries, outages wait, deferrals pause only their partition, and the
shutdown drain waits for in-flight work."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import DataError, OperationalError
from sync_messages import SyncCustomerWorkflows, UnprocessableMessage
from sync_worker.delivery import Deliveries, NotDueYet


@dataclass
class FakeRecord:
    value: bytes
    topic: str = "workflow-sync.commands.v1"
    partition: int = 1
    offset: int = 42
    key: bytes | None = b"customer-1"


@dataclass
class FakeConsumer:
    paused: set[TopicPartition] = field(default_factory=set)
    assigned: set[TopicPartition] = field(
        default_factory=lambda: {TopicPartition("workflow-sync.commands.v1", p) for p in range(4)}
    )

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def assignment(self) -> set[TopicPartition]:
        return self.assigned


class FakeMessage:
    def __init__(self, value: bytes, consumer: FakeConsumer) -> None:
        self.raw_message = FakeRecord(value)
        self.body = value
        self.consumer = consumer
        self.acks = 0
        self.nacks = 0

    async def ack(self) -> None:
        self.acks += 1

    async def nack(self) -> None:
        self.nacks += 1


class Setup:
    def __init__(self, max_deliveries: int = 3) -> None:
        self.dead: list[tuple[UnprocessableMessage, str | None]] = []
        self.slept: list[float] = []
        self.dead_letter_fails = False

        async def dead_letter(message: UnprocessableMessage, key: str | None) -> None:
            if self.dead_letter_fails:
                raise KafkaConnectionError("down")
            self.dead.append((message, key))

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        self.deliveries = Deliveries(
            dead_letter=dead_letter,
            max_deliveries=max_deliveries,
            redelivery_delay_seconds=0.05,
            sleep=sleep,
        )
        self.consumer = FakeConsumer()

    def message(self, value: bytes) -> FakeMessage:
        return FakeMessage(value, self.consumer)

    async def deliver(self, msg: FakeMessage, handle: Any) -> None:
        await self.deliveries.process(
            msg,  # type: ignore[arg-type]
            SyncCustomerWorkflows.model_validate_json,
            handle,
        )


def command_bytes(**fields: object) -> bytes:
    body = {"customer_id": str(uuid.uuid4()), "reason": "manual", **fields}
    return json.dumps(body).encode()


async def test_a_malformed_message_is_dead_lettered_at_once_and_committed() -> None:
    s = Setup()
    msg = s.message(command_bytes(requested_at="2026-11-29T02:00:00"))  # naive

    async def never(_: Any) -> None:
        raise AssertionError("a malformed message reached the handler")

    await s.deliver(msg, never)
    assert (msg.acks, msg.nacks) == (1, 0)
    ((dead, key),) = s.dead
    assert key == "customer-1" and dead.source_topic == "workflow-sync.commands.v1"
    assert (dead.partition, dead.offset, dead.deliveries) == (1, 42, 1)
    assert "requested_at" in dead.error and "2026-11-29T02:00:00" in dead.payload


async def test_a_message_failing_on_every_delivery_is_dead_lettered_after_the_bound() -> None:
    s = Setup(max_deliveries=3)
    calls = 0

    async def broken(_: Any) -> None:
        nonlocal calls
        calls += 1
        raise DataError("INSERT ...", {}, Exception("value too long for type character varying"))

    msg = s.message(command_bytes())
    for _ in range(3):  # the broker re-delivers the same offset after each nack
        await s.deliver(msg, broken)
    assert calls == 3
    assert (msg.acks, msg.nacks) == (1, 2)
    ((dead, _),) = s.dead
    assert dead.deliveries == 3 and dead.error.startswith("DataError")
    # between deliveries only its partition was paused, never the consumer
    assert s.slept == []


async def test_redelivery_pauses_only_the_failing_partition_then_resumes_it() -> None:
    s = Setup()

    async def broken(_: Any) -> None:
        raise TypeError("boom")

    await s.deliver(s.message(command_bytes()), broken)
    assert s.consumer.paused == {TopicPartition("workflow-sync.commands.v1", 1)}
    await asyncio.sleep(0.2)  # the redelivery delay is 0.05 s: resumed by then
    assert s.consumer.paused == set()


async def test_an_infrastructure_outage_is_waited_out_for_ever() -> None:
    s = Setup(max_deliveries=2)

    async def database_down(_: Any) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    msg = s.message(command_bytes())
    for _ in range(10):
        await s.deliver(msg, database_down)
    assert (msg.acks, msg.nacks) == (0, 10)
    assert s.dead == [] and len(s.slept) == 10


async def test_dead_lettering_waits_while_kafka_is_away() -> None:
    s = Setup()
    s.dead_letter_fails = True
    msg = s.message(b"not json")
    await s.deliver(msg, None)
    assert (msg.acks, msg.nacks) == (0, 1)
    s.dead_letter_fails = False
    await s.deliver(msg, None)
    assert msg.acks == 1 and len(s.dead) == 1


async def test_a_deferred_message_pauses_its_partition_and_is_not_a_delivery() -> None:
    s = Setup(max_deliveries=1)

    async def not_yet(_: Any) -> None:
        raise NotDueYet(30)

    msg = s.message(command_bytes())
    for _ in range(5):
        await s.deliver(msg, not_yet)
    assert (msg.acks, msg.nacks) == (0, 5) and s.dead == []
    assert s.consumer.paused == {TopicPartition("workflow-sync.commands.v1", 1)}


async def test_drain_stops_fetching_and_waits_for_in_flight_messages() -> None:
    s = Setup()
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(_: Any) -> None:
        await release.wait()
        finished.append("done")

    first = s.message(command_bytes())
    task = asyncio.create_task(s.deliver(first, slow))
    await asyncio.sleep(0)
    assert s.deliveries.in_flight == 1
    drain = asyncio.create_task(s.deliveries.drain([s.consumer], grace_seconds=30))
    await asyncio.sleep(0.05)
    assert s.consumer.paused == s.consumer.assigned  # nothing more is fetched
    late = s.message(command_bytes())
    await s.deliver(late, slow)  # fetched before the pause took effect: left for the next owner
    assert (late.acks, late.nacks) == (0, 1)
    assert not drain.done()
    release.set()
    assert await drain is True
    await task
    assert finished == ["done"] and first.acks == 1


async def test_drain_gives_up_after_the_grace_period() -> None:
    s = Setup()

    async def forever(_: Any) -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(s.deliver(s.message(command_bytes()), forever))
    await asyncio.sleep(0)
    assert await s.deliveries.drain([s.consumer], grace_seconds=0.1) is False
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
