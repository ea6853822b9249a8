"""Sync requests: one customer, every customer, the replay of a failed run.

Every command goes through the unit of work's outbox, whichever entrypoint asks (one delivery
semantics): it leaves for Kafka once the transaction commits, relayed by whoever runs a relay.
A sync of one customer and a replay are asked for by someone waiting for them: they travel on the
fast lane (``workflow-sync.commands.priority.v1``, its own consumer group), never behind the
thousands of commands of a sync-all fan-out. Should a scheduled command of the same customer run at
the same time, the engine's customer lock and coalescing keep it to one sync at a time.
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal

from sync_messages import SyncAllCustomers, SyncCustomerWorkflows, topics
from workflow_store.models import REPLAYABLE_RUN_STATUSES, RunStatus, SyncReason

from application import rules
from application.errors import AllowDeletesNotApplicable, NotFound, RunNotReplayable
from application.ports import UnitOfWork
from application.views import CommandQueued

__all__ = [
    "RequestReason",
    "replay_run",
    "request_customer_sync",
    "request_sync_all",
]

logger = logging.getLogger(__name__)

RequestReason = Literal[SyncReason.MANUAL, SyncReason.CLI]
"""Who asked: an operator over HTTP or the UI (``manual``), or the command line (``cli``)."""


async def request_customer_sync(
    uow: UnitOfWork,
    ref: str | uuid.UUID,
    *,
    force: bool = False,
    allow_deletes: int | None = None,
    reason: RequestReason = SyncReason.MANUAL,
) -> CommandQueued:
    """Queue a ``SyncCustomerWorkflows`` for the customer (id, else name). ``force`` skips
    coalescing; ``allow_deletes`` bounds the deletions a guarded run may make (it expires)."""
    rules.allow_deletes(allow_deletes)
    async with uow.transaction():
        if isinstance(ref, uuid.UUID):
            customer_id: uuid.UUID | None = ref if await uow.customers.exists(ref) else None
        else:
            found = await uow.customers.find(ref)
            customer_id = None if found is None else found.id
        if customer_id is None:
            raise NotFound(f"Customer {ref} not found")
        command = SyncCustomerWorkflows(
            customer_id=customer_id, reason=reason, force=force, allow_deletes=allow_deletes
        )
        uow.publish(topics.SYNC_PRIORITY_COMMANDS, command, key=str(customer_id))
    logger.info(
        "Sync requested: customer=%s command=%s force=%s allow_deletes=%s",
        customer_id,
        command.id,
        force,
        allow_deletes,
    )
    return CommandQueued(command_id=command.id, expected={command.id: customer_id})


async def request_sync_all(
    uow: UnitOfWork,
    *,
    force: bool = False,
    reason: RequestReason = SyncReason.MANUAL,
    expect: bool = False,
) -> CommandQueued:
    """Queue a ``SyncAllCustomers`` (a fresh slot, so it never collapses with another).
    ``expect``: also return the per-customer command ids of the active customers."""
    command = SyncAllCustomers.for_slot(reason, str(uuid.uuid4()), force=force)
    async with uow.transaction():
        expected: dict[str, uuid.UUID] = {}
        if expect:
            page = 1
            while True:  # bounded by the number of customers
                items, total = await uow.customers.page(page=page, page_size=500, active_only=True)
                expected.update({command.command_for(c.id).id: c.id for c in items})
                if not items or page * 500 >= total:
                    break
                page += 1
        uow.publish(topics.SYNC_ALL, command, key=None)
    logger.info("Sync of all customers requested: command=%s force=%s", command.id, force)
    return CommandQueued(command_id=command.id, expected=expected)


async def replay_run(
    uow: UnitOfWork, run_id: uuid.UUID, *, force: bool = False, allow_deletes: int | None = None
) -> CommandQueued:
    """Queue ``SyncCustomerWorkflows(reason=SyncReason.REPLAY, replay_of=run)`` for a failed or
    deletes_blocked run; ``RunNotReplayable`` for any other status, and ``allow_deletes``
    only for a deletes_blocked run."""
    rules.allow_deletes(allow_deletes)
    async with uow.transaction():
        run = await uow.runs.get(run_id)
        if run is None:
            raise NotFound(f"Sync run {run_id} not found")
        if run.status not in REPLAYABLE_RUN_STATUSES:
            raise RunNotReplayable(
                f"Only failed or deletes_blocked runs can be replayed; this run is {run.status}"
            )
        if allow_deletes is not None and run.status != RunStatus.DELETES_BLOCKED:
            raise AllowDeletesNotApplicable(
                f"allow_deletes applies to the replay of a deletes_blocked run; this run is "
                f"{run.status}"
            )
        command = SyncCustomerWorkflows(
            customer_id=run.customer_id,
            reason=SyncReason.REPLAY,
            force=force,
            replay_of=run.id,
            allow_deletes=allow_deletes,
        )
        uow.publish(topics.SYNC_PRIORITY_COMMANDS, command, key=str(run.customer_id))
    logger.info("Replay requested: run=%s command=%s force=%s", run_id, command.id, force)
    return CommandQueued(command_id=command.id, expected={command.id: run.customer_id})
