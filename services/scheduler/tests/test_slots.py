from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sync_messages import SyncAllCustomers, SyncReason
from sync_scheduler import SchedulerSettings, SyncAllEmitter, next_fire_times, slot_for
from sync_scheduler.app import fire
from sync_scheduler.slots import make_trigger, previous_fire_time


def _settings(**kw: object) -> SchedulerSettings:
    return SchedulerSettings.model_validate(kw)


def test_slot_is_utc_minute_precision() -> None:
    assert slot_for(datetime(2026, 11, 29, 2, 0, 0, tzinfo=UTC)) == "2026-11-29T02:00Z"
    berlin = datetime(2026, 11, 29, 3, 0, 59, tzinfo=ZoneInfo("Europe/Berlin"))
    assert slot_for(berlin) == "2026-11-29T02:00Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        slot_for(datetime(2026, 11, 29, 2, 0))


def test_same_slot_same_id_and_reasons_differ() -> None:
    at = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    a = SyncAllEmitter.message_for(SyncReason.NIGHTLY, at)
    b = SyncAllEmitter.message_for(SyncReason.NIGHTLY, at.astimezone(ZoneInfo("America/New_York")))
    hourly = SyncAllEmitter.message_for(SyncReason.HOURLY, at)
    later = SyncAllEmitter.message_for(SyncReason.NIGHTLY, datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    assert a.id == b.id == SyncAllCustomers.for_slot(SyncReason.NIGHTLY, "2026-11-29T02:00Z").id
    assert (a.reason, a.slot) == ("nightly", "2026-11-29T02:00Z")
    assert len({a.id, hourly.id, later.id}) == 3


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 29, 2, 0, 0, tzinfo=UTC), datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 29, 2, 9, 59, tzinfo=UTC), datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 29, 1, 59, 59, tzinfo=UTC), datetime(2026, 11, 28, 2, 0, tzinfo=UTC)),
    ],
)
def test_previous_fire_time_is_the_scheduled_time(now: datetime, expected: datetime) -> None:
    trigger = make_trigger("0 2 * * *", "UTC")
    assert previous_fire_time(trigger, now) == expected


def test_previous_fire_time_for_a_rare_schedule() -> None:
    trigger = make_trigger("0 2 1 1 *", "UTC")  # yearly
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert previous_fire_time(trigger, now) == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


async def test_fire_uses_the_scheduled_time_not_now() -> None:
    sent: list[SyncAllCustomers] = []

    async def publish(message: SyncAllCustomers) -> None:
        sent.append(message)

    emitter = SyncAllEmitter(publish)
    trigger = make_trigger("0 * * * *", "UTC")
    late = datetime(2026, 11, 29, 14, 3, 27, tzinfo=UTC)  # the job started 3 min late
    assert await fire(emitter, SyncReason.HOURLY, trigger, now=late)
    assert await fire(emitter, SyncReason.HOURLY, trigger, now=late.replace(minute=0, second=0))
    assert [m.slot for m in sent] == ["2026-11-29T14:00Z", "2026-11-29T14:00Z"]
    assert sent[0].id == sent[1].id


def test_next_fire_times_defaults() -> None:
    now = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
    times = next_fire_times(_settings(), now, count=3)
    assert [(r, t.astimezone(UTC)) for r, t in times] == [
        ("hourly", datetime(2026, 11, 29, 1, 0, tzinfo=UTC)),
        ("hourly", datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        ("nightly", datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        ("hourly", datetime(2026, 11, 29, 3, 0, tzinfo=UTC)),
        ("nightly", datetime(2026, 11, 30, 2, 0, tzinfo=UTC)),
        ("nightly", datetime(2026, 12, 1, 2, 0, tzinfo=UTC)),
    ]


def test_next_fire_times_are_strictly_after_now() -> None:
    now = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    times = next_fire_times(_settings(), now, count=1)
    assert times == [
        ("hourly", datetime(2026, 11, 29, 3, 0, tzinfo=UTC)),
        ("nightly", datetime(2026, 11, 30, 2, 0, tzinfo=UTC)),
    ]


def test_next_fire_times_custom_timezone_and_crons() -> None:
    settings = _settings(
        timezone="Europe/Berlin", nightly_cron="30 2 * * *", hourly_cron="15 */6 * * *"
    )
    now = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 01:00 in Berlin (CET, UTC+1)
    times = next_fire_times(settings, now, count=2)
    berlin = ZoneInfo("Europe/Berlin")
    assert [(r, t.astimezone(UTC)) for r, t in times] == [
        ("nightly", datetime(2026, 11, 29, 1, 30, tzinfo=UTC)),
        ("hourly", datetime(2026, 11, 29, 5, 15, tzinfo=UTC)),
        ("hourly", datetime(2026, 11, 29, 11, 15, tzinfo=UTC)),
        ("nightly", datetime(2026, 11, 30, 1, 30, tzinfo=UTC)),
    ]
    assert all(t.utcoffset() == berlin.utcoffset(t.replace(tzinfo=None)) for _, t in times)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_HOURLY_CRON", "5 * * * *")
    monkeypatch.setenv("SCHEDULER_NIGHTLY_CRON", "0 3 * * *")
    monkeypatch.setenv("SCHEDULER_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("SCHEDULER_PUBLISH_GRACE_SECONDS", "30")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    settings = SchedulerSettings()
    assert (settings.hourly_cron, settings.nightly_cron) == ("5 * * * *", "0 3 * * *")
    assert (settings.timezone, settings.publish_grace_seconds) == ("Europe/Paris", 30)
    assert settings.kafka.bootstrap_servers == "kafka:9092"


@pytest.mark.parametrize(
    "bad", [{"timezone": "Mars/Olympus"}, {"hourly_cron": "61 * * * *"}, {"nightly_cron": "x"}]
)
def test_settings_reject_bad_values(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"time zone|crontab"):
        _settings(**bad)
