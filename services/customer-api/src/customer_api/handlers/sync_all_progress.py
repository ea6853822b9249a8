"""How far a manual sync-all has got: its customers' runs counted by status.

The worker fans a ``SyncAllCustomers`` out to one command per active customer, with ids derived
from the fan-out's id (``SyncAllCustomers.command_for``), and every command ends in a run row
carrying that id (a coalesced one as ``skipped``). So the result is read back from the runs, with
no bookkeeping of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sync_messages.messages import SyncAllCustomers
from workflow_store.models import Customer, RunStatus, SyncReason, SyncRun

__all__ = ["SyncAllProgress", "sync_all_progress"]

# A customer whose newest run is one of these has not finished: retry_scheduled is followed by
# another attempt (a run of the same command id).
IN_FLIGHT = frozenset({RunStatus.RUNNING, RunStatus.RETRY_SCHEDULED})


@dataclass(frozen=True)
class SyncAllProgress:
    command_id: str
    customers: int
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.by_status.items() if status not in IN_FLIGHT)

    @property
    def done(self) -> bool:
        return self.finished >= self.customers


async def sync_all_progress(session: AsyncSession, command_id: str) -> SyncAllProgress:
    """The active customers' latest run of this fan-out, counted by status."""
    fan_out = SyncAllCustomers(id=command_id, reason=SyncReason.MANUAL, slot="")
    customer_ids = (
        (await session.execute(select(Customer.id).where(Customer.active.is_(True))))
        .scalars()
        .all()
    )
    command_ids = [fan_out.command_for(cid).id for cid in customer_ids]
    # A retried command has several runs: the newest per customer is its state.
    # (A window, not DISTINCT ON: `make run` serves the UI from SQLite.)
    ranked = (
        select(
            SyncRun.status,
            func.row_number()
            .over(partition_by=SyncRun.customer_id, order_by=SyncRun.started_at.desc())
            .label("newest_first"),
        )
        .where(SyncRun.command_id.in_(command_ids))
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.status, func.count())
        .where(ranked.c.newest_first == 1)
        .group_by(ranked.c.status)
    )
    return SyncAllProgress(
        command_id=command_id,
        customers=len(customer_ids),
        by_status={status: int(count) for status, count in rows.all()},
    )
