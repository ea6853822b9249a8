"""The customer locks of one process share one PostgreSQL connection (sync_engine.locks).

With many syncs in flight a backend per held lock exhausted ``max_connections``; these tests pin
what sharing must keep: exclusion (also between claims of the same process, since advisory locks
are re-entrant per session), loss when the shared connection dies (the fence refuses the lost
claim, a new claim is granted on a new connection), and a release of a lost claim never freeing
somebody else's lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sync_engine.failures import CustomerBusyError, CustomerLockLostError
from sync_engine.locks import advisory_key, customer_lock, fence_write
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def advisory_holders(engine: AsyncEngine) -> dict[int, int]:
    """pid -> advisory locks it holds in this database (customer key space)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid, count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 1 AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database()) GROUP BY pid"
            )
        )
        return {int(pid): int(n) for pid, n in rows}


async def fence(engine: AsyncEngine, held: object) -> None:
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        await fence_write(session, held)  # type: ignore[arg-type]


async def test_twenty_held_locks_use_one_backend_and_it_returns_to_the_pool(
    engine: AsyncEngine,
) -> None:
    customers = [uuid.uuid4() for _ in range(20)]
    release = asyncio.Event()
    held_pids: list[int] = []

    async def hold(cid: uuid.UUID) -> None:
        async with customer_lock(engine, cid, wait_seconds=5) as held:
            assert held.holder_pid is not None
            held_pids.append(held.holder_pid)
            await release.wait()

    tasks = [asyncio.create_task(hold(c)) for c in customers]
    for _ in range(100):
        if len(held_pids) == len(customers):
            break
        await asyncio.sleep(0.05)
    assert len(held_pids) == len(customers)
    assert len(set(held_pids)) == 1
    assert await advisory_holders(engine) == {held_pids[0]: len(customers)}
    release.set()
    await asyncio.gather(*tasks)
    assert await advisory_holders(engine) == {}
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_second_claim_in_the_same_process_waits_for_the_first(
    engine: AsyncEngine,
) -> None:
    cid = uuid.uuid4()
    async with customer_lock(engine, cid, wait_seconds=1):
        with pytest.raises(CustomerBusyError):
            async with customer_lock(engine, cid, wait_seconds=0.3):
                pass
    order: list[str] = []

    async def first() -> None:
        async with customer_lock(engine, cid, wait_seconds=1):
            order.append("first in")
            await asyncio.sleep(0.3)
            order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.05)
        async with customer_lock(engine, cid, wait_seconds=2):
            order.append("second in")

    await asyncio.gather(first(), second())
    assert order == ["first in", "first out", "second in"]


async def test_a_dead_lock_connection_voids_its_claims_and_a_new_claim_is_granted(
    engine: AsyncEngine,
) -> None:
    lost, other = uuid.uuid4(), uuid.uuid4()
    async with (
        customer_lock(engine, lost, wait_seconds=1) as old,
        customer_lock(engine, other, wait_seconds=1) as old_other,
    ):
        assert old.holder_pid == old_other.holder_pid
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": old.holder_pid})
            await conn.commit()
        # The server freed both locks: the same process (or any other) may claim again,
        # on a new connection, while the old claims are still "open" here.
        async with customer_lock(engine, lost, wait_seconds=2) as new:
            assert new.holder_pid not in (None, old.holder_pid)
            with pytest.raises(CustomerLockLostError):
                await fence(engine, old)
            await fence(engine, new)
        async with customer_lock(engine, lost, wait_seconds=2) as again:
            # Releasing the new claim above freed it; hold it while the old ones release.
            pass
        newest = customer_lock(engine, lost, wait_seconds=2)
        held = await newest.__aenter__()
        # ``old_other`` and ``old`` released here: the newest claim must survive both.
    try:
        assert again.holder_pid == held.holder_pid
        await fence(engine, held)
        key = advisory_key(lost)
        async with engine.connect() as conn:
            still = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objsubid = 1 AND pid = :p AND classid = :hi AND objid = :lo"
                ),
                {"p": held.holder_pid, "hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            )
        assert still == 1
    finally:
        await newest.__aexit__(None, None, None)
    assert await advisory_holders(engine) == {}
