"""Per-customer mutual exclusion for the whole duration of a sync.

PostgreSQL: a session-level advisory lock held on a dedicated connection, so it spans the Zuora
listing (which happens outside any transaction) and is released by the server if the process dies.
SQLite (embedded single-node runs): an in-process asyncio lock per customer is enough, since the
embedded stack runs a single sync worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sync_engine.failures import CustomerBusyError

_LOCK_NAMESPACE = b"zuora-workflow-sync:customer:"
_POLL_SECONDS = 0.1

_local_locks: weakref.WeakValueDictionary[tuple[int, uuid.UUID], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


def advisory_key(customer_id: uuid.UUID) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, namespaced to this product."""
    digest = hashlib.blake2b(_LOCK_NAMESPACE + customer_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@asynccontextmanager
async def customer_lock(
    engine: AsyncEngine, customer_id: uuid.UUID, *, wait_seconds: float
) -> AsyncIterator[None]:
    """Hold the customer's lock; raise CustomerBusyError if not acquired within `wait_seconds`."""
    if engine.dialect.name == "postgresql":
        async with _advisory_lock(engine, customer_id, wait_seconds=wait_seconds):
            yield
    else:
        async with _in_process_lock(customer_id, wait_seconds=wait_seconds):
            yield


@asynccontextmanager
async def _advisory_lock(
    engine: AsyncEngine, customer_id: uuid.UUID, *, wait_seconds: float
) -> AsyncIterator[None]:
    key = advisory_key(customer_id)
    deadline = time.monotonic() + wait_seconds
    async with engine.connect() as conn:
        while True:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
            await conn.commit()  # do not hold a transaction open while we wait or sync
            if got:
                break
            if time.monotonic() >= deadline:
                raise CustomerBusyError(f"customer {customer_id} is being synced by another worker")
            await asyncio.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()


@asynccontextmanager
async def _in_process_lock(customer_id: uuid.UUID, *, wait_seconds: float) -> AsyncIterator[None]:
    loop_key = (id(asyncio.get_running_loop()), customer_id)
    lock = _local_locks.get(loop_key)
    if lock is None:
        lock = asyncio.Lock()
        _local_locks[loop_key] = lock
    try:
        await asyncio.wait_for(lock.acquire(), timeout=wait_seconds)
    except TimeoutError as exc:
        raise CustomerBusyError(f"customer {customer_id} is being synced") from exc
    try:
        yield
    finally:
        lock.release()
