"""Per-customer mutual exclusion for the whole duration of a sync, and the fence of its write.

PostgreSQL: a session-level advisory lock held on a dedicated connection, so it spans the Zuora
listing (which happens outside any transaction) and is released by the server if the process dies.
That connection can die while we page through Zuora (failover, idle-session timeout, a proxy
reaping idle TCP); the server then frees the lock and another worker may take it. So the write
transaction checks, inside itself, that the backend we locked with still holds the lock
(:func:`fence_write`), and serialises with any other writer of the customer through a transaction
lock in a second key space: a run that lost its lock cannot commit.
SQLite (embedded single-node runs): an in-process asyncio lock per customer, plus a lock file
(:mod:`sync_engine.file_locks`) against other processes on the same database file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sync_engine.failures import CustomerBusyError, CustomerLockLostError
from sync_engine.file_locks import sqlite_customer_file_lock

logger = logging.getLogger("sync_engine")

_LOCK_NAMESPACE = b"zuora-workflow-sync:customer:"
_FENCE_NAMESPACE = b"zuora-workflow-sync:customer-write:"
_POLL_SECONDS = 0.1

_local_locks: weakref.WeakValueDictionary[tuple[int, uuid.UUID], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


def advisory_key(customer_id: uuid.UUID, namespace: bytes = _LOCK_NAMESPACE) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, namespaced to this product."""
    digest = hashlib.blake2b(namespace + customer_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class HeldLock:
    """The lock a sync holds: ``holder_pid`` is the PostgreSQL backend holding the advisory
    lock (None for the in-process lock of SQLite runs, which cannot be lost)."""

    customer_id: uuid.UUID
    holder_pid: int | None = None


@asynccontextmanager
async def customer_lock(
    engine: AsyncEngine, customer_id: uuid.UUID, *, wait_seconds: float
) -> AsyncIterator[HeldLock]:
    """Hold the customer's lock; raise CustomerBusyError if not acquired within `wait_seconds`."""
    if engine.dialect.name == "postgresql":
        async with _advisory_lock(engine, customer_id, wait_seconds=wait_seconds) as held:
            yield held
    else:
        async with (
            _in_process_lock(customer_id, wait_seconds=wait_seconds),
            sqlite_customer_file_lock(engine, customer_id, wait_seconds=wait_seconds),
        ):
            yield HeldLock(customer_id)


async def fence_write(session: AsyncSession, lock: HeldLock) -> None:
    """Inside the write transaction: raise CustomerLockLostError unless ``lock`` is still held.

    The transaction lock serialises this write with any other writer of the customer, so a run
    that passed the check commits before a newer holder can write; the pg_locks check refuses a
    run whose lock went with its connection (a bigint advisory key shows as classid = high 32
    bits, objid = low 32 bits, objsubid = 1).
    """
    if lock.holder_pid is None:
        return
    key = advisory_key(lock.customer_id)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:k)"),
        {"k": advisory_key(lock.customer_id, _FENCE_NAMESPACE)},
    )
    held = await session.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = :pid AND classid = :hi AND objid = :lo AND objsubid = 1)"
        ),
        {"pid": lock.holder_pid, "hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
    )
    if not held:
        raise CustomerLockLostError(
            f"lost the lock of customer {lock.customer_id} (its database connection ended) "
            "before writing; nothing was written"
        )


@asynccontextmanager
async def _advisory_lock(
    engine: AsyncEngine, customer_id: uuid.UUID, *, wait_seconds: float
) -> AsyncIterator[HeldLock]:
    key = advisory_key(customer_id)
    deadline = time.monotonic() + wait_seconds
    async with engine.connect() as conn:
        # Autocommit: a session-level advisory lock needs no transaction, so no COMMIT round
        # trip after each statement (and no transaction is held open while we wait or sync).
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        attempt = text("SELECT pg_try_advisory_lock(:k), pg_backend_pid()")
        while True:
            got, pid = (await conn.execute(attempt, {"k": key})).one()
            if got:
                break
            if time.monotonic() >= deadline:
                raise CustomerBusyError(f"customer {customer_id} is being synced by another worker")
            await asyncio.sleep(_POLL_SECONDS)
        try:
            yield HeldLock(customer_id, holder_pid=int(pid))
        finally:
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            except Exception:
                # The connection died (which released the lock server-side): the sync's outcome,
                # already committed or recorded, must not be replaced by this error.
                logger.warning("Could not release the customer lock", exc_info=True)


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
