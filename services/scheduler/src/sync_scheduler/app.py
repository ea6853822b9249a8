"""APScheduler wiring: one cron job per schedule, each emitting its slot's sync-all command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from event_bus.broker import KafkaPublisher
from event_bus.topics import ensure_topics_until
from observability.metrics import SchedulerMetrics, start_metrics_server
from observability.readiness import ReadyFile
from sync_messages import SyncReason

from sync_scheduler.emitter import SyncAllEmitter, kafka_publish
from sync_scheduler.settings import SchedulerSettings
from sync_scheduler.slots import make_trigger, next_fire_times, previous_fire_time, schedules

__all__ = ["DEFAULT_METRICS_PORT", "build_scheduler", "catch_up", "fire", "run"]

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9101


async def fire(
    emitter: SyncAllEmitter,
    reason: SyncReason,
    trigger: CronTrigger,
    now: datetime | None = None,
    *,
    metrics: SchedulerMetrics | None = None,
) -> bool:
    """The job body: emit for the firing being run (its scheduled time, not the current time)."""
    now = now or datetime.now(UTC)
    scheduled = previous_fire_time(trigger, now)
    if scheduled is None:  # pragma: no cover - APScheduler only runs a job after a fire time
        log.error("No %s fire time at or before %s; nothing emitted", reason, now.isoformat())
        return False
    published = await emitter.emit(reason, scheduled)
    if metrics is not None:
        metrics.observe_emit(reason, published=published)
    return published


async def catch_up(
    settings: SchedulerSettings,
    emitter: SyncAllEmitter,
    now: datetime | None = None,
    *,
    metrics: SchedulerMetrics | None = None,
) -> list[tuple[SyncReason, datetime]]:
    """Emit the latest slot of each schedule that is younger than ``catch_up_seconds``.

    The job store is in memory and jobs are planned from the start time, so a slot that fell in
    a downtime would never run. Emitting it again when it did run is harmless: its command id is
    derived from the slot, and the workers skip an id they have handled. Returns what it emitted.
    """
    now = now or datetime.now(UTC)
    emitted: list[tuple[SyncReason, datetime]] = []
    if settings.catch_up_seconds <= 0:
        return emitted
    for reason, crontab in schedules(settings):
        scheduled = previous_fire_time(make_trigger(crontab, settings.timezone), now)
        if scheduled is None or (now - scheduled).total_seconds() > settings.catch_up_seconds:
            continue
        log.info("Catching up the %s slot of %s", reason, scheduled.isoformat())
        published = await emitter.emit(reason, scheduled)
        if metrics is not None:
            metrics.observe_emit(reason, published=published)
        emitted.append((reason, scheduled))
    return emitted


def build_scheduler(
    settings: SchedulerSettings,
    emitter: SyncAllEmitter,
    metrics: SchedulerMetrics | None = None,
) -> AsyncIOScheduler:
    """An unstarted scheduler with the hourly and nightly jobs.

    ``coalesce``: runs missed while the process was busy collapse into one; ``max_instances=1``:
    a slot still retrying never overlaps the next one of the same schedule;
    ``misfire_grace_time``: a firing more late than the publish grace is skipped.
    """
    scheduler = AsyncIOScheduler(
        timezone=settings.timezone,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": max(1, int(settings.publish_grace_seconds)),
        },
    )
    for reason, crontab in schedules(settings):
        trigger = make_trigger(crontab, settings.timezone)
        scheduler.add_job(
            fire,
            trigger=trigger,
            args=[emitter, reason, trigger],
            kwargs={"metrics": metrics},
            id=f"sync-all-{reason}",
            name=f"{reason} sync-all ({crontab} {settings.timezone})",
            replace_existing=True,
        )
    return scheduler


async def run(
    settings: SchedulerSettings,
    stop: asyncio.Event,
    *,
    metrics: SchedulerMetrics | None = None,
    ready: ReadyFile | None = None,
) -> None:
    """Run the scheduler until ``stop`` is set, then shut down cleanly.

    Serves ``/metrics`` on ``METRICS_HOST:METRICS_PORT`` (default 127.0.0.1:9101; 0 disables).
    Writes ``READY_FILE`` (if set) once the jobs are planned, removes it when stopping. The topics
    are ensured in the background, with no deadline (:mod:`event_bus.topics`): the scheduler
    runs regardless, and its publish grace covers a broker that is still down.
    """
    ready = ready if ready is not None else ReadyFile.from_settings(settings.readiness)
    metrics = metrics if metrics is not None else SchedulerMetrics()
    metrics_server = start_metrics_server(
        metrics.registry, default_port=DEFAULT_METRICS_PORT, settings=settings.metrics
    )
    publisher = KafkaPublisher(
        settings.kafka,
        component="scheduler",
        publish_timeout=min(10.0, settings.publish_grace_seconds),
    )
    emitter = SyncAllEmitter(kafka_publish(publisher), grace_seconds=settings.publish_grace_seconds)
    topics_task = asyncio.create_task(ensure_topics_until(settings.kafka, stop))
    scheduler = build_scheduler(settings, emitter, metrics)
    scheduler.start()
    catching_up = asyncio.create_task(catch_up(settings, emitter, metrics=metrics))
    for reason, when in next_fire_times(settings, count=1):
        log.info("Next %s sync-all at %s", reason, when.isoformat())
    ready.mark()
    try:
        await stop.wait()
    finally:
        ready.clear()
        log.info("Scheduler stopping")
        scheduler.shutdown(wait=False)
        catching_up.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await catching_up
        topics_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await topics_task
        await publisher.close()
        if metrics_server is not None:
            metrics_server.close()
        log.info("Scheduler stopped")
