from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sync_messages import SyncAllCustomers
from sync_scheduler import SyncAllEmitter

SLOT_TIME = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FlakyPublish:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.sent: list[SyncAllCustomers] = []

    async def __call__(self, message: SyncAllCustomers) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("kafka unreachable")
        self.sent.append(message)


def _emitter(publish: FlakyPublish, clock: FakeClock, grace: float = 60) -> SyncAllEmitter:
    return SyncAllEmitter(
        publish,
        grace_seconds=grace,
        initial_backoff=1,
        max_backoff=8,
        sleep=clock.sleep,
        clock=clock,
    )


async def test_publishes_at_once_when_kafka_is_up() -> None:
    publish, clock = FlakyPublish(0), FakeClock()
    assert await _emitter(publish, clock).emit("nightly", SLOT_TIME)
    assert clock.sleeps == []
    (message,) = publish.sent
    assert message == SyncAllCustomers.for_slot("nightly", "2026-11-29T02:00Z").model_copy(
        update={"occurred_at": message.occurred_at, "requested_at": message.requested_at}
    )


async def test_retries_with_backoff_within_grace(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    publish, clock = FlakyPublish(5), FakeClock()
    assert await _emitter(publish, clock).emit("hourly", SLOT_TIME)
    assert publish.attempts == 6
    assert clock.sleeps == [1, 2, 4, 8, 8]
    assert len(publish.sent) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5
    assert all("2026-11-29T02:00Z" in r.getMessage() for r in warnings)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_gives_up_after_grace_with_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    publish, clock = FlakyPublish(1000), FakeClock()
    assert not await _emitter(publish, clock, grace=20).emit("nightly", SLOT_TIME)
    assert clock.sleeps == [1, 2, 4, 8, 5]  # the last wait is cut to the grace period
    assert clock.now == 20
    assert publish.attempts == 6
    assert publish.sent == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Giving up" in errors[0].getMessage()
    assert "2026-11-29T02:00Z" in errors[0].getMessage()
