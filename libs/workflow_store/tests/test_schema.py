"""Schema behaviour on both dialects: uniqueness, cascades, time zones, JSON, defaults."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer, remove_customer
from workflow_store.models import (
    Customer,
    OutboxMessage,
    ProcessedMessage,
    StoredWorkflow,
    SyncRun,
)


def _workflow(customer: Customer, zuora_id: int, **kw: Any) -> StoredWorkflow:
    values: dict[str, Any] = {
        "customer_id": customer.id,
        "zuora_id": zuora_id,
        "name": f"workflow {zuora_id}",
        "raw": {"id": zuora_id, "name": f"workflow {zuora_id}", "nested": {"a": [1, 2]}},
        "content_hash": "0" * 64,
    }
    values.update(kw)
    return StoredWorkflow(**values)


async def _customer(session: AsyncSession, box: SecretBox, name: str) -> Customer:
    return await add_customer(
        session,
        box,
        name=name,
        base_url="https://rest.test.zuora.com",
        client_id=f"{name}-client",
        client_secret=f"{name}-secret",
    )


async def test_zuora_id_is_unique_per_customer(session: AsyncSession, box: SecretBox) -> None:
    acme = await _customer(session, box, "acme")
    globex = await _customer(session, box, "globex")
    session.add_all([_workflow(acme, 42), _workflow(globex, 42)])
    await session.commit()  # the same Zuora id in two tenants is fine

    session.add(_workflow(acme, 42))
    with pytest.raises(IntegrityError, match=r"uq_workflows_customer_id_zuora_id|UNIQUE"):
        await session.commit()
    await session.rollback()
    count = await session.scalar(select(func.count()).select_from(StoredWorkflow))
    assert count == 2


async def test_deleting_a_customer_cascades(session: AsyncSession, box: SecretBox) -> None:
    acme = await _customer(session, box, "acme")
    other = await _customer(session, box, "other")
    session.add_all([_workflow(acme, i) for i in range(3)] + [_workflow(other, 1)])
    session.add_all(
        [
            SyncRun(customer_id=acme.id, reason="manual", status="succeeded"),
            SyncRun(customer_id=other.id, reason="manual", status="succeeded"),
        ]
    )
    await session.commit()

    await remove_customer(session, "acme")
    await session.commit()

    async def counts(customer_id: uuid.UUID) -> tuple[int | None, int | None]:
        wf = await session.scalar(
            select(func.count())
            .select_from(StoredWorkflow)
            .where(StoredWorkflow.customer_id == customer_id)
        )
        runs = await session.scalar(
            select(func.count()).select_from(SyncRun).where(SyncRun.customer_id == customer_id)
        )
        return wf, runs

    assert await counts(acme.id) == (0, 0)
    assert await counts(other.id) == (1, 1)


async def test_raw_sql_delete_cascades_too(session: AsyncSession, box: SecretBox) -> None:
    acme = await _customer(session, box, "acme")
    session.add(_workflow(acme, 1))
    session.add(SyncRun(customer_id=acme.id, reason="cli", status="failed"))
    await session.commit()
    session.expunge_all()

    await session.execute(text("DELETE FROM customers"))
    await session.commit()
    assert await session.scalar(select(func.count()).select_from(StoredWorkflow)) == 0
    assert await session.scalar(select(func.count()).select_from(SyncRun)) == 0


async def test_workflow_requires_an_existing_customer(session: AsyncSession) -> None:
    session.add(
        StoredWorkflow(
            customer_id=uuid.uuid4(), zuora_id=1, name="x", raw={}, content_hash="0" * 64
        )
    )
    with pytest.raises(IntegrityError):
        await session.commit()


async def test_columns_round_trip_with_utc_datetimes(session: AsyncSession, box: SecretBox) -> None:
    acme = await _customer(session, box, "acme")
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=plus_two)
    naive = datetime(2024, 6, 1, 8, 0, 0)
    wf = _workflow(
        acme,
        2**40,  # Zuora ids are 64-bit
        description="does things",
        status="Active",
        active_version_id=2**41,
        active_version="1.2.0",
        active_version_status="Active",
        active_version_type="Workflow",
        callout_trigger=True,
        ondemand_trigger=False,
        scheduled_trigger=None,
        interval="0 0 * * *",
        timezone="Europe/Berlin",
        priority="High",
        zuora_created_at=created,
        zuora_updated_at=naive,
    )
    session.add(wf)
    await session.commit()
    wf_id = wf.id
    assert isinstance(wf_id, int)
    session.expunge_all()

    loaded = await session.get(StoredWorkflow, wf_id)
    assert loaded is not None
    assert loaded.zuora_id == 2**40
    assert loaded.active_version_id == 2**41
    assert loaded.raw == {"id": 2**40, "name": f"workflow {2**40}", "nested": {"a": [1, 2]}}
    assert (loaded.callout_trigger, loaded.ondemand_trigger, loaded.scheduled_trigger) == (
        True,
        False,
        None,
    )
    assert loaded.zuora_created_at == created
    assert loaded.zuora_created_at is not None
    assert loaded.zuora_created_at.utcoffset() == timedelta(0)
    assert loaded.zuora_updated_at == naive.replace(tzinfo=UTC)  # naive is taken as UTC
    for value in (loaded.first_seen_at, loaded.last_changed_at):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)

    customer = await session.get(Customer, acme.id)
    assert customer is not None
    assert customer.active is True
    assert customer.credential_status == "unknown"
    assert customer.created_at.utcoffset() == timedelta(0)
    assert customer.last_successful_sync_at is None


async def test_workflow_ids_autoincrement(session: AsyncSession, box: SecretBox) -> None:
    acme = await _customer(session, box, "acme")
    rows = [_workflow(acme, i) for i in range(3)]
    session.add_all(rows)
    await session.commit()
    ids = [row.id for row in rows]
    assert len(set(ids)) == 3
    assert all(isinstance(i, int) for i in ids)


async def test_sync_run_defaults(session: AsyncSession, box: SecretBox) -> None:
    acme = await _customer(session, box, "acme")
    run = SyncRun(customer_id=acme.id, reason="hourly", status="running", command_id="cmd-1")
    session.add(run)
    await session.commit()
    session.expunge_all()
    loaded = await session.get(SyncRun, run.id)
    assert loaded is not None
    assert (loaded.attempt, loaded.forced, loaded.pages) == (1, False, 0)
    assert (loaded.created, loaded.updated, loaded.deleted, loaded.unchanged, loaded.total) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert loaded.started_at.utcoffset() == timedelta(0)
    assert loaded.blocked_deletes is None
    assert loaded.finished_at is None


async def test_outbox_and_processed_messages(session: AsyncSession) -> None:
    msg_id = uuid.uuid4()
    session.add(
        OutboxMessage(
            id=msg_id,
            topic="customers.events.v1",
            key="k",
            payload={"id": str(msg_id), "type": "CustomerCreated"},
            headers={"content-type": "application/json"},
        )
    )
    session.add(ProcessedMessage(consumer="sync-worker", message_id=str(msg_id)))
    await session.commit()

    pending = (
        await session.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
    ).all()
    assert [m.id for m in pending] == [msg_id]
    assert pending[0].attempts == 0
    assert pending[0].payload["type"] == "CustomerCreated"

    session.add(ProcessedMessage(consumer="sync-worker", message_id=str(msg_id)))
    with pytest.raises(IntegrityError):
        await session.commit()
    await session.rollback()
    # the same message id for another consumer is a different row
    session.add(ProcessedMessage(consumer="customer-api", message_id=str(msg_id)))
    await session.commit()
