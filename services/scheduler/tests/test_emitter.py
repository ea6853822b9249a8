from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sync_messages import SyncAllCustomers, SyncReason
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
    assert await _emitter(publish, clock).emit(SyncReason.NIGHTLY, SLOT_TIME)
    assert clock.sleeps == []
    (message,) = publish.sent
    assert message == SyncAllCustomers.for_slot(SyncReason.NIGHTLY, "2026-11-29T02:00Z").model_copy(
        update={"occurred_at": message.occurred_at, "requested_at": message.requested_at}
    )


async def test_retries_with_backoff_within_grace(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    publish, clock = FlakyPublish(5), FakeClock()
    assert await _emitter(publish, clock).emit(SyncReason.HOURLY, SLOT_TIME)
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
    assert not await _emitter(publish, clock, grace=20).emit(SyncReason.NIGHTLY, SLOT_TIME)
    assert clock.sleeps == [1, 2, 4, 8, 5]  # the last wait is cut to the grace period
    assert clock.now == 20
    assert publish.attempts == 6
    assert publish.sent == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Giving up" in errors[0].getMessage()
    assert "2026-11-29T02:00Z" in errors[0].getMessage()


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Down across 02:00, back at 02:40: the nightly and the hourly 02:00 slots are emitted.
        (datetime(2026, 11, 29, 2, 40, tzinfo=UTC), [("hourly", "02:00Z"), ("nightly", "02:00Z")]),
        # Back at 09:10: the nightly slot is 7 h old (beyond the 6 h catch-up), the hourly is not.
        (datetime(2026, 11, 29, 9, 10, tzinfo=UTC), [("hourly", "09:00Z")]),
    ],
)
async def test_start_catches_up_the_latest_slot_of_each_schedule(
    now: datetime, expected: list[tuple[str, str]]
) -> None:
    # Audit M4: slots missed during a downtime were never run.
    from sync_scheduler.app import catch_up
    from sync_scheduler.settings import SchedulerSettings

    publish, clock = FlakyPublish(0), FakeClock()
    settings = SchedulerSettings(catch_up_seconds=6 * 3600)
    await catch_up(settings, _emitter(publish, clock), now)
    assert [(m.reason, m.slot[-6:]) for m in publish.sent] == expected
    # Idempotent: the ids are the slots' ids (what the scheduled firing would have sent).
    ids = {SyncAllCustomers.for_slot(m.reason, m.slot).id for m in publish.sent}
    assert ids == {m.id for m in publish.sent}
