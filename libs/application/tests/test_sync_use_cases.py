"""Sync requests, replay and run reads over the in-memory unit of work (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from application import runs, sync
from application.errors import AllowDeletesNotApplicable, InvalidInput, NotFound, RunNotReplayable
from sync_messages import SyncAllCustomers, SyncCustomerWorkflows, SyncReason, topics
from workflow_store.models import Customer, SyncRun

from .fakes import FakeUnitOfWork

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def customer(uow: FakeUnitOfWork, name: str, *, active: bool = True) -> uuid.UUID:
    row = Customer(
        id=uuid.uuid4(),
        name=name,
        base_url="http://127.0.0.1:1",
        client_id="c",
        client_secret_encrypted="x",
        active=active,
        credential_status="unknown",
        created_at=T0,
        updated_at=T0,
    )
    uow.customers.rows[row.id] = row
    return row.id


def run(uow: FakeUnitOfWork, customer_id: uuid.UUID, status: str, minute: int = 0) -> uuid.UUID:
    row = SyncRun(
        id=uuid.uuid4(),
        customer_id=customer_id,
        command_id=f"cmd-{minute}",
        reason="manual",
        attempt=1,
        forced=False,
        status=status,
        started_at=T0 + timedelta(minutes=minute),
    )
    uow.runs.rows[row.id] = row
    return row.id


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.mark.parametrize("by", ["id", "name"])
async def test_a_customer_sync_is_one_command_through_the_outbox(
    uow: FakeUnitOfWork, by: str
) -> None:
    cid = customer(uow, "acme")
    queued = await sync.request_customer_sync(
        uow, cid if by == "id" else "acme", force=True, allow_deletes=3, reason=SyncReason.CLI
    )
    [sent] = uow.published
    assert sent.topic == topics.SYNC_PRIORITY_COMMANDS and sent.key == str(cid)
    command = sent.message
    assert isinstance(command, SyncCustomerWorkflows)
    assert (command.customer_id, command.reason, command.force, command.allow_deletes) == (
        cid,
        "cli",
        True,
        3,
    )
    assert queued.command_id == command.id and queued.expected == {command.id: cid}


async def test_a_sync_of_an_unknown_customer_or_with_a_bad_bound_queues_nothing(
    uow: FakeUnitOfWork,
) -> None:
    with pytest.raises(NotFound):
        await sync.request_customer_sync(uow, uuid.uuid4())
    with pytest.raises(NotFound):
        await sync.request_customer_sync(uow, "nobody")
    cid = customer(uow, "acme")
    with pytest.raises(InvalidInput):
        await sync.request_customer_sync(uow, cid, allow_deletes=-1)
    assert uow.published == []


async def test_a_sync_of_all_expects_one_command_per_active_customer(uow: FakeUnitOfWork) -> None:
    active = {customer(uow, f"c{i}") for i in range(3)}
    customer(uow, "sleeping", active=False)
    queued = await sync.request_sync_all(uow, force=True, reason=SyncReason.CLI, expect=True)
    [sent] = uow.published
    assert isinstance(sent.message, SyncAllCustomers) and sent.topic == topics.SYNC_ALL
    assert sent.key is None and sent.message.force and sent.message.reason == "cli"
    assert set(queued.expected.values()) == active
    assert set(queued.expected) == {sent.message.command_for(c).id for c in active}
    again = await sync.request_sync_all(uow)
    assert again.command_id != queued.command_id and again.expected == {}  # a fresh slot


async def test_replay_of_a_failed_run(uow: FakeUnitOfWork) -> None:
    cid = customer(uow, "acme")
    failed = run(uow, cid, "failed")
    queued = await sync.replay_run(uow, failed, force=True)
    [sent] = uow.published
    assert isinstance(sent.message, SyncCustomerWorkflows)
    assert sent.message.replay_of == failed and sent.message.reason == "replay"
    assert sent.message.customer_id == cid and queued.command_id == sent.message.id


async def test_replay_rules(uow: FakeUnitOfWork) -> None:
    cid = customer(uow, "acme")
    with pytest.raises(NotFound):
        await sync.replay_run(uow, uuid.uuid4())
    with pytest.raises(RunNotReplayable):
        await sync.replay_run(uow, run(uow, cid, "succeeded"))
    with pytest.raises(AllowDeletesNotApplicable):
        await sync.replay_run(uow, run(uow, cid, "failed"), allow_deletes=2)
    assert uow.published == []
    blocked = run(uow, cid, "deletes_blocked")
    await sync.replay_run(uow, blocked, allow_deletes=2)
    assert uow.published[0].message.allow_deletes == 2  # type: ignore[attr-defined]


async def test_failed_list_and_run_reads(uow: FakeUnitOfWork) -> None:
    cid = customer(uow, "acme")
    ok = run(uow, cid, "succeeded", 1)
    failed = run(uow, cid, "failed", 2)
    blocked = run(uow, cid, "deletes_blocked", 3)
    assert [r.id for r in await runs.list_failed(uow)] == [blocked, failed]
    listing = await runs.list_runs(uow, customer="acme", page_size=2)
    assert [r.id for r in listing.items] == [blocked, failed] and listing.total == 3
    assert (await runs.get_run(uow, ok)).customer_name == "acme"
    assert [r.id for r in await runs.command_runs(uow, ["cmd-1", "cmd-3"])] == [ok, blocked]
    with pytest.raises(NotFound):
        await runs.get_run(uow, uuid.uuid4())
    with pytest.raises(NotFound):
        await runs.list_runs(uow, customer=uuid.uuid4())
    with pytest.raises(NotFound):
        await runs.list_runs(uow, customer="nobody")


async def test_a_customers_workflows_carry_its_last_successful_sync(uow: FakeUnitOfWork) -> None:
    from application.views import WorkflowView
    from application.workflows import list_customer_workflows

    cid = customer(uow, "acme")
    uow.customers.rows[cid].last_successful_sync_at = T0
    uow.workflows.rows[cid] = [
        WorkflowView(zuora_id=2, name="b", fields={"name": "b"}),
        WorkflowView(zuora_id=1, name="a", fields={"name": "a"}),
    ]
    listed = await list_customer_workflows(uow, "acme")
    assert [(w.zuora_id, w.last_synced_at) for w in listed] == [(1, T0), (2, T0)]
    with pytest.raises(NotFound):
        await list_customer_workflows(uow, "nobody")
