"""The per-customer workflow counts (customers.workflow_count / active_workflow_count) equal
COUNT(*) over the workflows table after every sync: inserts, updates that flip a status,
deletes, a second customer alongside, and a row written behind the sync's back."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sync_engine import RunStatus, SyncRequest

from .conftest import Store

pytestmark = pytest.mark.integration


async def kept_and_counted(store: Store, customer_id: uuid.UUID) -> tuple[tuple[int, int], ...]:
    """(counts on the customer row, counts over the workflows table)."""
    async with store.engine.connect() as conn:
        kept = (
            await conn.execute(
                text("SELECT workflow_count, active_workflow_count FROM customers WHERE id = :c"),
                {"c": customer_id},
            )
        ).one()
        counted = (
            await conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE lower(status) = 'active')"
                    " FROM workflows WHERE customer_id = :c"
                ),
                {"c": customer_id},
            )
        ).one()
    return (int(kept[0]), int(kept[1])), (int(counted[0]), int(counted[1]))


async def test_counts_equal_count_star_after_inserts_updates_and_deletes(
    store: Store, zuora_sandbox
) -> None:
    acme = zuora_sandbox.add_tenant("acme", workflow_count=80, seed=21)
    zeta = zuora_sandbox.add_tenant("zeta", workflow_count=30, seed=22)
    acme_id = await store.add_customer_for(acme)
    zeta_id = await store.add_customer_for(zeta)
    assert await kept_and_counted(store, acme_id) == ((0, 0), (0, 0))  # never synced
    engine = store.sync_engine()

    await engine.sync_customer(SyncRequest(customer_id=acme_id))
    await engine.sync_customer(SyncRequest(customer_id=zeta_id))
    kept, counted = await kept_and_counted(store, acme_id)
    assert kept == counted and kept[0] == 80
    active_in_zuora = sum(1 for item in acme.workflows.values() if item["status"] == "Active")
    assert 0 < kept[1] == active_in_zuora < 80  # the sandbox mixes both states

    ids = sorted(acme.workflows)
    for wid in ids[:5]:  # updates that flip the state
        acme.update_workflow(
            wid, status="Inactive" if acme.workflows[wid]["status"] == "Active" else "Active"
        )
    acme.update_workflow(ids[5], description="changed, state kept")
    for wid in ids[6:9]:
        acme.delete_workflow(wid)
    for n in range(4):
        acme.put_workflow(dict(acme.workflows[ids[10]], id=900_000 + n, status="Active"))
    outcome = await engine.sync_customer(SyncRequest(customer_id=acme_id))
    assert outcome.status is RunStatus.SUCCEEDED
    assert (outcome.stats.created, outcome.stats.updated, outcome.stats.deleted) == (4, 6, 3)
    kept, counted = await kept_and_counted(store, acme_id)
    assert kept == counted and kept[0] == 81
    assert kept[1] == sum(1 for item in acme.workflows.values() if item["status"] == "Active")
    # The other customer's counts are its own, untouched by acme's sync.
    kept, counted = await kept_and_counted(store, zeta_id)
    assert kept == counted and kept[0] == 30


async def test_a_row_written_behind_the_syncs_back_is_counted_again_by_the_next_sync(
    store: Store, zuora_sandbox
) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=12, seed=23)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    async with store.engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM workflows WHERE customer_id = :c AND zuora_id = :z"),
            {"c": cid, "z": sorted(tenant.workflows)[0]},
        )
    kept, counted = await kept_and_counted(store, cid)
    assert kept[0] == 12 and counted[0] == 11  # stale until the customer's next sync...
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid))
    assert outcome.stats.created == 1  # ...which puts the row back and recounts
    kept, counted = await kept_and_counted(store, cid)
    assert kept == counted and kept[0] == 12


async def test_a_sync_with_nothing_to_write_still_recounts(store: Store, zuora_sandbox) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=10, seed=24)
    cid = await store.add_customer_for(tenant)
    engine = store.sync_engine()
    await engine.sync_customer(SyncRequest(customer_id=cid))
    async with store.engine.begin() as conn:
        await conn.execute(
            text("UPDATE customers SET workflow_count = 99, active_workflow_count = 99")
        )
    outcome = await engine.sync_customer(SyncRequest(customer_id=cid, force=True))
    assert outcome.stats.unchanged == 10
    kept, counted = await kept_and_counted(store, cid)
    assert kept == counted and kept[0] == 10
