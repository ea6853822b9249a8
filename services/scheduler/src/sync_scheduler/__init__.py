"""The scheduler service: emits the hourly and nightly ``SyncAllCustomers`` commands.

Each firing publishes ``SyncAllCustomers.for_slot(reason, slot)`` to ``workflow-sync.sync-all.v1``;
the id is derived from (reason, scheduled time), so replicas and restarts produce the same id and
the worker's dedupe collapses them.
"""

from sync_scheduler.emitter import SyncAllEmitter
from sync_scheduler.settings import SchedulerSettings
from sync_scheduler.slots import next_fire_times, previous_fire_time, slot_for

__all__ = [
    "SchedulerSettings",
    "SyncAllEmitter",
    "next_fire_times",
    "previous_fire_time",
    "slot_for",
]
