"""The parallel consumer (unit, fake Kafka messages and consumer): several messages of one
partition at once, per-key order, commits only of the contiguous finished prefix, the in-flight
bound, failures retried in place, revocation and shutdown; the fast lane (bulk syncs not started
yet wait while urgent work runs, at most ``hold_seconds``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy.exc import DataError, OperationalError
from sync_messages import SyncCustomerWorkflows, UnprocessableMessage
from sync_worker.adaptive import AdaptiveLimit
from sync_worker.delivery import Deliveries
from sync_worker.inflight import InFlight, ZuoraHostBudget
from sync_worker.lanes import FastLane

TOPIC = "workflow-sync.commands.v1"
TP = TopicPartition(TOPIC, 0)


@dataclass
class FakeRecord:
    value: bytes
    offset: int
    key: bytes | None
    topic: str = TOPIC
    partition: int = 0


@dataclass
class FakeConsumer:
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append({tp: o.offset for tp, o in offsets.items()})

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def pause(self, *tps: TopicPartition) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    @property
    def committed(self) -> list[int]:
        return [c[TP] for c in self.commits]


class FakeMessage:
    def __init__(self, consumer: FakeConsumer, offset: int, key: str, value: bytes) -> None:
        self.raw_message = FakeRecord(value, offset, key.encode())
        self.body = value
        self.consumer = consumer


class Gate:
    """A handler whose calls finish when the test says so, keyed by message body."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.fail: dict[str, list[BaseException]] = {}

    def event(self, body: str) -> asyncio.Event:
        return self.release.setdefault(body, asyncio.Event())

    async def __call__(self, body: str) -> None:
        self.started.append(body)
        await self.event(body).wait()
        failures = self.fail.get(body)
        if failures:
            raise failures.pop(0)
        self.finished.append(body)

    def open(self, *bodies: str) -> None:
        for body in bodies:
            self.event(body).set()


class Setup:
    def __init__(self, *, max_in_flight: int = 8, max_deliveries: int = 3) -> None:
        self.dead: list[UnprocessableMessage] = []
        self.slept: list[float] = []

        async def dead_letter(message: UnprocessableMessage, key: str | None) -> None:
            self.dead.append(message)

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)
            await asyncio.sleep(0)

        self.deliveries = Deliveries(
            dead_letter=dead_letter,
            max_deliveries=max_deliveries,
            redelivery_delay_seconds=0.5,
            sleep=sleep,
        )
        self.inflight = InFlight(
            deliveries=self.deliveries,
            max_in_flight=max_in_flight,
            max_deliveries=max_deliveries,
            redelivery_delay_seconds=0.5,
            sleep=sleep,
        )
        self.consumer = FakeConsumer()
        self.gate = Gate()

    async def submit(self, offset: int, key: str, body: str | None = None, **kw: Any) -> None:
        body = body if body is not None else f"{key}@{offset}"
        consumer = kw.get("consumer", self.consumer)
        msg = FakeMessage(consumer, offset, key, body.encode())
        await self.inflight.submit(msg, kw.get("parse", bytes.decode), kw.get("handle", self.gate))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_commits_only_the_contiguous_finished_prefix() -> None:
    s = Setup()
    for offset in range(5):
        await s.submit(offset, f"customer-{offset}")
    await settle()
    assert len(s.gate.started) == 5  # one partition, five messages at once
    s.gate.open("customer-2@2")
    await settle()
    assert s.consumer.committed == []  # 0 and 1 are unfinished: nothing may be committed
    s.gate.open("customer-0@0")
    await settle()
    assert s.consumer.committed == [1]
    s.gate.open("customer-1@1", "customer-4@4")
    await settle()
    assert s.consumer.committed == [1, 3]  # 0..2 done; 3 still runs, so 4 waits
    s.gate.open("customer-3@3")
    await settle()
    assert s.consumer.committed == [1, 3, 5]
    assert s.inflight.admitted == 0


async def test_one_key_runs_in_order_while_other_keys_go_on() -> None:
    s = Setup()
    await s.submit(0, "a", "a1")
    await s.submit(1, "b", "b1")
    await s.submit(2, "a", "a2")
    await s.submit(3, "b", "b2")
    await s.submit(4, "c", "c1")
    await settle()
    assert s.gate.started == ["a1", "b1", "c1"]  # a2 and b2 wait for their predecessors
    s.gate.open("a2", "b1", "c1")  # a2 released early: must still wait for a1
    await settle()
    assert s.gate.started == ["a1", "b1", "c1", "b2"]
    s.gate.open("a1")
    await settle()
    assert s.gate.started[-1] == "a2"
    assert s.gate.finished.index("a1") < s.gate.finished.index("a2")
    s.gate.open("b2")
    await settle()
    assert s.consumer.committed[-1] == 5


async def test_the_in_flight_bound_holds_back_the_next_message() -> None:
    s = Setup(max_in_flight=2)
    await s.submit(0, "a")
    await s.submit(1, "b")
    third = asyncio.create_task(s.submit(2, "c"))
    await settle()
    assert not third.done()  # the handler waits: nothing more is fetched
    assert s.gate.started == ["a@0", "b@1"]
    s.gate.open("b@1")
    await settle()
    assert third.done() and s.gate.started == ["a@0", "b@1", "c@2"]
    assert s.consumer.committed == []  # 0 unfinished
    s.gate.open("a@0", "c@2")
    await settle()
    assert s.consumer.committed[-1] == 3
    assert s.inflight.peak_running == 2


async def test_a_waiting_message_holds_its_slot() -> None:
    s = Setup(max_in_flight=2)
    await s.submit(0, "a", "a1")
    await s.submit(1, "a", "a2")  # admitted, waits for a1
    third = asyncio.create_task(s.submit(2, "b"))
    await settle()
    assert not third.done()
    s.gate.open("a1", "a2", "b@2")
    await settle()
    assert third.done() and s.consumer.committed[-1] == 3


async def test_an_own_fault_failure_is_retried_in_place_without_seeking() -> None:
    s = Setup(max_deliveries=3)
    boom = DataError("INSERT", {}, Exception("value too long"))
    s.gate.fail["a@0"] = [boom, boom]
    await s.submit(0, "a")
    await s.submit(1, "b")
    s.gate.open("a@0", "b@1")
    await settle()
    assert s.gate.started.count("a@0") == 3 and s.gate.finished == ["b@1", "a@0"]
    assert s.consumer.seeks == [] and s.dead == []
    assert s.consumer.committed[-1] == 2
    assert s.slept == [0.5, 0.5]


async def test_a_message_failing_on_every_delivery_is_dead_lettered_and_committed() -> None:
    s = Setup(max_deliveries=3)
    s.gate.fail["a@0"] = [TypeError("boom")] * 5
    await s.submit(0, "a")
    await s.submit(1, "a", "a-next")
    s.gate.open("a@0", "a-next")
    await settle()
    assert s.gate.started == ["a@0"] * 3 + ["a-next"]  # the key's next waited for the verdict
    ((dead,),) = [s.dead]
    assert (dead.offset, dead.deliveries) == (0, 3) and dead.error.startswith("TypeError")
    assert s.consumer.committed[-1] == 2


async def test_an_infrastructure_outage_is_retried_for_as_long_as_it_lasts() -> None:
    s = Setup(max_deliveries=2)
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    s.gate.fail["a@0"] = [down] * 6
    await s.submit(0, "a")
    s.gate.open("a@0")
    await settle()
    assert s.gate.started.count("a@0") == 7 and s.dead == []
    assert s.consumer.committed == [1]


async def test_a_malformed_message_is_dead_lettered_at_once() -> None:
    s = Setup()
    value = b'{"customer_id": "not-a-uuid"'
    msg = FakeMessage(s.consumer, 0, "a", value)

    async def never(command: SyncCustomerWorkflows) -> None:
        raise AssertionError("a malformed message reached the handler")

    await s.inflight.submit(msg, SyncCustomerWorkflows.model_validate_json, never)
    await settle()
    assert len(s.dead) == 1 and s.dead[0].deliveries == 1
    assert s.consumer.committed == [1]


async def test_a_revoked_partition_commits_its_prefix_once_then_never_again() -> None:
    s = Setup()
    await s.submit(0, "a")
    await s.submit(1, "b")
    await s.submit(2, "b", "b-next")  # waits for b@1
    s.gate.open("a@0")
    await settle()
    assert s.consumer.committed == [1]
    await s.inflight.on_partitions_revoked({TP})
    s.gate.open("b@1", "b-next")
    await settle()
    assert "b@1" in s.gate.finished  # the running sync was let finish ...
    assert "b-next" not in s.gate.started  # ... the waiting one was left to the next owner
    assert s.consumer.committed == [1]  # and nothing was committed after the revocation
    assert s.inflight.admitted == 0


async def test_a_reassigned_partition_opens_a_new_lease_from_the_committed_offset() -> None:
    s = Setup()
    await s.submit(0, "a")
    await s.submit(1, "b")
    s.gate.open("a@0")
    await settle()
    # The group moved the partition away and back: the consumer reads again from offset 1.
    await s.submit(1, "b", "b-again")
    s.gate.open("b@1", "b-again")  # the old lease's b@1 ends first (same key), then the new
    await settle()
    assert s.gate.started == ["a@0", "b@1", "b-again"]
    assert s.consumer.committed == [1, 2]  # the new lease committed; the old one did not


async def test_a_revocation_the_consumer_did_not_see_reads_again_from_the_dropped_message() -> None:
    s = Setup()
    await s.submit(0, "a")
    await s.submit(1, "a", "a-next")
    await s.inflight.on_partitions_revoked({TP})
    await s.submit(2, "b")  # the same consumer goes on: it still owns the partition
    assert s.consumer.seeks == [(TP, 0)]
    s.gate.open("a@0", "a-next", "b@2")
    await settle()
    assert "b@2" not in s.gate.started and s.consumer.committed == []


async def test_drain_waits_for_running_messages_drops_waiting_ones_and_commits() -> None:
    s = Setup()
    await s.submit(0, "a")
    await s.submit(1, "a", "a-next")
    await s.submit(2, "b")
    s.gate.open("b@2")
    await settle()

    async def shutdown() -> bool:  # as WorkerRuntime.drain
        waited = await s.deliveries.drain([s.consumer], grace_seconds=5)
        return await s.inflight.drain(5) and waited

    drain = asyncio.create_task(shutdown())
    await settle()
    assert s.deliveries.stopping and not drain.done()  # fetching stopped; a@0 still runs
    await s.submit(3, "c")  # fetched as the drain began: not admitted
    s.gate.open("a@0", "a-next")
    assert await drain is True
    assert s.gate.started == ["a@0", "b@2"]  # a-next was not started during the drain
    assert s.consumer.committed[-1] == 1  # a@0 finished; a-next (1) is the next owner's


async def test_drain_gives_up_after_the_grace_period() -> None:
    s = Setup()
    await s.submit(0, "a")
    await settle()
    s.deliveries.stopping = True
    assert await s.inflight.drain(0.05) is False
    s.gate.open("a@0")
    await settle()


async def test_the_host_budget_runs_one_host_at_a_time_and_others_beside_it() -> None:
    hosts = {1: "https://rest.zuora.com", 2: "https://REST.zuora.com/", 3: "https://eu.zuora.com"}
    lookups: list[int] = []

    async def base_url_of(customer_id: int) -> str | None:
        lookups.append(customer_id)
        return hosts.get(customer_id)

    @dataclass
    class Request:
        customer_id: int

    running: set[int] = set()
    release = {c: asyncio.Event() for c in (1, 2, 3, 4)}

    async def sync(request: Request) -> int:
        running.add(request.customer_id)
        await release[request.customer_id].wait()
        running.discard(request.customer_id)
        return request.customer_id

    limited = ZuoraHostBudget(1, base_url_of).wrap(sync)
    tasks = [asyncio.create_task(limited(Request(c))) for c in (1, 2, 3, 4)]
    await settle()
    assert running == {1, 3, 4}  # 2 shares 1's host; 3 is another host; 4 is unknown
    release[1].set()
    await settle()
    assert running == {2, 3, 4}
    for event in release.values():
        event.set()
    assert [await t for t in tasks] == [1, 2, 3, 4]
    await limited(Request(1))
    assert lookups.count(1) == 1  # remembered


@pytest.mark.parametrize("bad", [0, -1])
def test_the_bound_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError):
        InFlight(
            deliveries=Setup().deliveries,
            max_in_flight=bad,
            max_deliveries=3,
            redelivery_delay_seconds=1,
        )


# -- the fast lane (sync_worker.lanes) ---------------------------------------------------------


async def test_a_bulk_turn_is_immediate_without_urgent_work() -> None:
    lane = FastLane(hold_seconds=60)
    await asyncio.wait_for(lane.bulk_turn(), timeout=5)
    assert lane.held == 0


async def test_a_bulk_turn_waits_for_the_urgent_work_to_end() -> None:
    lane = FastLane(hold_seconds=60)
    urgent_done = asyncio.Event()

    async def urgent(_: object) -> None:
        await urgent_done.wait()

    async def run_urgent() -> None:
        await lane.urgently(urgent)(None)

    running = asyncio.create_task(run_urgent())
    await settle()
    assert lane.urgent == 1
    turn = asyncio.create_task(lane.bulk_turn())
    await settle()
    assert not turn.done()
    urgent_done.set()
    await asyncio.wait_for(turn, timeout=5)
    await running
    assert lane.urgent == 0 and lane.held == 1


async def test_a_bulk_turn_waits_at_most_the_hold() -> None:
    lane = FastLane(hold_seconds=0.01)
    async with lane.urgent_work():
        await asyncio.wait_for(lane.bulk_turn(), timeout=5)  # returns although still urgent
        assert lane.urgent == 1


async def test_no_hold_means_no_fast_lane() -> None:
    lane = FastLane(hold_seconds=0)
    async with lane.urgent_work():
        await asyncio.wait_for(lane.bulk_turn(), timeout=5)
    assert lane.held == 0


async def test_a_bulk_command_admitted_during_urgent_work_starts_after_it() -> None:
    lane = FastLane(hold_seconds=60)

    async def dead_letter(message: object, key: str | None) -> None:
        raise AssertionError("nothing is dead-lettered here")

    deliveries = Deliveries(dead_letter=dead_letter, max_deliveries=3, redelivery_delay_seconds=0.5)
    inflight = InFlight(
        deliveries=deliveries,
        max_in_flight=8,
        max_deliveries=3,
        redelivery_delay_seconds=0.5,
        before_start=lane.bulk_turn,
    )
    consumer, gate = FakeConsumer(), Gate()
    await inflight.submit(FakeMessage(consumer, 0, "early", b"early"), bytes.decode, gate)
    await settle()
    assert gate.started == ["early"]  # started before any urgent work: it keeps running
    async with lane.urgent_work():
        await inflight.submit(FakeMessage(consumer, 1, "late", b"late"), bytes.decode, gate)
        await settle()
        assert gate.started == ["early"]  # admitted (its slot taken) but held back
        assert inflight.admitted == 2
    await settle()
    assert gate.started == ["early", "late"]
    gate.open("early", "late")
    await settle()
    assert consumer.committed[-1] == 2


# -- the adaptive in-flight limit (sync_worker.adaptive) -------------------------------------


async def test_the_limit_falls_under_lag_and_never_below_the_floor() -> None:
    limit = AdaptiveLimit(32, target_lag_seconds=0.05)
    assert limit.limit == 32
    limit.observe(0.2)
    assert limit.limit == 24
    for _ in range(20):
        limit.observe(0.2)
    assert limit.limit == limit.floor == 4


async def test_the_limit_grows_only_while_every_slot_is_taken_and_never_above_the_ceiling() -> None:
    limit = AdaptiveLimit(6, target_lag_seconds=0.05)
    for _ in range(5):
        limit.observe(1.0)
    assert limit.limit == 4
    limit.observe(0.0)
    assert limit.limit == 4  # idle slots: no reason to grow
    for _ in range(4):
        await limit.acquire()
    waiting = asyncio.create_task(limit.acquire())
    await settle()
    assert not waiting.done()  # a fifth waits at a limit of 4
    limit.observe(0.0)
    await settle()
    assert limit.limit == 5 and waiting.done() and limit.in_use == 5
    for _ in range(10):
        if limit.in_use < limit.limit:
            await limit.acquire()
        limit.observe(0.0)
    assert limit.limit == 6
    await limit.aclose()


async def test_a_lowered_limit_admits_nothing_until_enough_have_finished() -> None:
    limit = AdaptiveLimit(8, target_lag_seconds=0.05)
    for _ in range(8):
        await limit.acquire()
    limit.observe(1.0)  # 8 -> 6 while 8 are in use
    waiting = asyncio.create_task(limit.acquire())
    limit.release()
    limit.release()
    await settle()
    assert limit.in_use == 6 and not waiting.done()
    limit.release()
    await settle()
    assert waiting.done() and limit.in_use == 6
    await limit.aclose()


async def test_no_target_lag_keeps_the_limit_fixed() -> None:
    limit = AdaptiveLimit(8, target_lag_seconds=0)
    assert not limit.adaptive and limit.limit == 8
    for _ in range(8):
        await limit.acquire()
    assert limit._monitor is None  # no watcher: nothing ever lowers it


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    limit = AdaptiveLimit(1, target_lag_seconds=0)
    await limit.acquire()
    waiting = asyncio.create_task(limit.acquire())
    await settle()
    waiting.cancel()
    await settle()
    limit.release()
    assert limit.in_use == 0
    await asyncio.wait_for(limit.acquire(), timeout=5)
    assert limit.in_use == 1
