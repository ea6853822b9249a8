"""Schedule arithmetic: triggers, slots (the scheduled fire time) and upcoming fire times.

A slot is the *scheduled* fire time in UTC at minute precision ("2026-11-29T02:00Z"), never the
moment the job happened to run: every scheduler replica, and a restarted one, derives the same
slot and therefore the same message id for one firing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sync_messages import SyncReason

from sync_scheduler.settings import SchedulerSettings

__all__ = ["make_trigger", "next_fire_times", "previous_fire_time", "schedules", "slot_for"]

_MAX_LOOKBACK = timedelta(days=366 * 8)


def make_trigger(crontab: str, timezone: str) -> CronTrigger:
    """A cron trigger for a 5-field crontab read in ``timezone``."""
    return CronTrigger.from_crontab(crontab, timezone=timezone)


def schedules(settings: SchedulerSettings) -> list[tuple[SyncReason, str]]:
    """The (reason, crontab) pairs the scheduler runs."""
    return [(SyncReason.HOURLY, settings.hourly_cron), (SyncReason.NIGHTLY, settings.nightly_cron)]


def slot_for(scheduled_at: datetime) -> str:
    """``2026-11-29T02:00Z``: the fire time in UTC, minute precision."""
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    return scheduled_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _next_after(trigger: Any, fire_time: datetime) -> datetime | None:
    nxt: datetime | None = trigger.get_next_fire_time(fire_time, fire_time)
    return nxt


def previous_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest fire time of ``trigger`` at or before ``now`` (``None`` if there is none).

    This is the scheduled time of the firing a job is running for: APScheduler starts a job at
    or after its fire time (late by at most the misfire grace time), never before.
    """
    window = timedelta(hours=2)
    while window <= _MAX_LOOKBACK:
        first: datetime | None = trigger.get_next_fire_time(None, now - window)
        if first is not None and first <= now:
            current = first
            while (nxt := _next_after(trigger, current)) is not None and nxt <= now:
                current = nxt
            return current
        window *= 2
    return None


def next_fire_times(
    settings: SchedulerSettings, now: datetime | None = None, count: int = 3
) -> list[tuple[str, datetime]]:
    """The next ``count`` fire times of each schedule after ``now``, as (reason, time) sorted.

    Times are in the configured time zone.
    """
    now = now or datetime.now(UTC)
    out: list[tuple[str, datetime]] = []
    for reason, crontab in schedules(settings):
        trigger = make_trigger(crontab, settings.timezone)
        fire: datetime | None = trigger.get_next_fire_time(None, now)
        if fire is not None and fire <= now:  # strictly after now
            fire = _next_after(trigger, fire)
        for _ in range(count):
            if fire is None:
                break
            out.append((reason, fire))
            fire = _next_after(trigger, fire)
    out.sort(key=lambda item: (item[1], item[0]))
    return out
