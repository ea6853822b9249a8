"""What the operator dashboard shows: counts over customers, workflows and runs, and each
customer's freshness against the schedule. Aggregates in the database (a handful of rows
come back, whatever the number of customers or workflows).

The workflow totals are sums of the per-customer counts the sync keeps on the customer row
(:mod:`workflow_store.workflow_counts`): one pass over the customers instead of a scan of every
workflow per view (at 100,000 workflows that scan was most of the page's server time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import Customer, RunStatus, SyncRun, utcnow

from customer_api.handlers.sync import not_retried

__all__ = ["Freshness", "Overview", "freshness_of", "freshness_window", "overview"]

RECENT_RUNS = timedelta(hours=24)


class Freshness(StrEnum):
    """A customer's last successful sync against the schedule's interval."""

    ON_TIME = "on_time"  # within 1 interval
    LATE = "late"  # within 2 intervals
    STALE = "stale"  # older
    NEVER = "never"  # no successful sync yet


def freshness_of(
    last_success: datetime | None, *, interval_seconds: int, now: datetime | None = None
) -> Freshness:
    if last_success is None:
        return Freshness.NEVER
    age = ((now or utcnow()) - last_success).total_seconds()
    if age <= interval_seconds:
        return Freshness.ON_TIME
    if age <= 2 * interval_seconds:
        return Freshness.LATE
    return Freshness.STALE


def freshness_window(
    freshness: Freshness, *, interval_seconds: int, now: datetime | None = None
) -> list[Any]:
    """SQL conditions on ``Customer`` selecting one freshness bucket (for filtered lists)."""
    now = now or utcnow()
    last = Customer.last_successful_sync_at
    one, two = (
        now - timedelta(seconds=interval_seconds),
        now - timedelta(seconds=2 * interval_seconds),
    )
    if freshness is Freshness.NEVER:
        return [last.is_(None)]
    if freshness is Freshness.ON_TIME:
        return [last >= one]
    if freshness is Freshness.LATE:
        return [last < one, last >= two]
    return [last < two]


@dataclass
class Overview:
    customers: int = 0
    active_customers: int = 0
    workflows: int = 0
    active_workflows: int = 0
    freshness: dict[Freshness, int] = field(default_factory=dict)
    runs_last_24h: dict[str, int] = field(default_factory=dict)
    running: int = 0
    failed_last_24h: int = 0  # failed for good: not attempts the workers still retry
    deletes_blocked: int = 0  # customers whose last sync was blocked by the deletion guard

    @property
    def inactive_workflows(self) -> int:
        return self.workflows - self.active_workflows


async def overview(session: AsyncSession, *, interval_seconds: int, max_attempts: int) -> Overview:
    now = utcnow()
    one = now - timedelta(seconds=interval_seconds)
    two = now - timedelta(seconds=2 * interval_seconds)
    last = Customer.last_successful_sync_at

    def count_if(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    active = Customer.active.is_(True)
    customer_row = (
        await session.execute(
            select(
                func.count(Customer.id),
                count_if(active),
                count_if(active & last.is_(None)),
                count_if(active & (last >= one)),
                count_if(active & (last < one) & (last >= two)),
                count_if(active & (last < two)),
                count_if(Customer.last_sync_status == RunStatus.DELETES_BLOCKED),
                func.coalesce(func.sum(Customer.workflow_count), 0),
                func.coalesce(func.sum(Customer.active_workflow_count), 0),
            )
        )
    ).one()
    # One pass over the last day's runs for both figures.
    recent = (
        await session.execute(
            select(
                SyncRun.status,
                func.count(SyncRun.id),
                count_if((SyncRun.status == RunStatus.FAILED) & not_retried(max_attempts)),
            )
            .where(SyncRun.started_at >= now - RECENT_RUNS)
            .group_by(SyncRun.status)
        )
    ).all()
    by_status = {str(status): int(n) for status, n, _ in recent}
    failed_for_good = sum(int(n) for _, _, n in recent)
    # Any age: a run left running for more than a day is exactly what an operator must see.
    running = await session.scalar(
        select(func.count(SyncRun.id)).where(SyncRun.status == RunStatus.RUNNING)
    )
    return Overview(
        customers=int(customer_row[0]),
        active_customers=int(customer_row[1]),
        freshness={
            Freshness.NEVER: int(customer_row[2]),
            Freshness.ON_TIME: int(customer_row[3]),
            Freshness.LATE: int(customer_row[4]),
            Freshness.STALE: int(customer_row[5]),
        },
        workflows=int(customer_row[7]),
        active_workflows=int(customer_row[8]),
        runs_last_24h=by_status,
        running=int(running or 0),
        failed_last_24h=failed_for_good,
        deletes_blocked=int(customer_row[6]),
    )
