"""Per-customer mutual exclusion for the whole duration of a sync, and the fence of its write.

PostgreSQL: a session-level advisory lock, held on one connection shared by every lock of the
process (:class:`_SharedAdvisoryLocks`), so it spans the Zuora listing (which happens outside any
transaction) and is released by the server if the process dies. That connection can die while we
page through Zuora (failover, idle-session timeout, a proxy reaping idle TCP); the server then
frees the lock and another worker may take it. So the write transaction checks, inside itself,
that the backend we locked with still holds the lock (:func:`fence_write`), and serialises with
any other writer of the customer through a transaction lock in a second key space: a run that
lost its lock cannot commit.
SQLite (embedded single-node runs): an in-process asyncio lock per customer, plus a lock file
(:mod:`sync_engine.file_locks`) against other processes on the same database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

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
    locks = _SharedAdvisoryLocks.of(engine)
    claim = await locks.acquire(advisory_key(customer_id), customer_id, wait_seconds=wait_seconds)
    try:
        yield HeldLock(customer_id, holder_pid=claim.pid)
    finally:
        await locks.release(claim)


@dataclass(frozen=True, eq=False)
class _Claim:
    key: int
    pid: int
    generation: int  # of the shared connection the lock was taken on


class _SharedAdvisoryLocks:
    """Every advisory customer lock of one process (per engine and event loop) on ONE connection.

    A session-level advisory lock only needs *a* session that stays open, not one per lock: with
    many syncs in flight (most of them waiting for Zuora), a connection per held lock would cost
    PostgreSQL a backend per sync (2 workers x 32 in flight exhausted ``max_connections=100``).
    Statements on the shared connection are serialised (each is one short round trip).

    Advisory locks are re-entrant within a session, so this process's own claims are tracked
    here: a second claim of a key this process holds waits like a claim held elsewhere. When the
    shared connection dies, the server has freed every lock taken on it: the claims of that
    *generation* no longer exclude anyone (their writes fail the fence, :func:`fence_write`),
    the next statement runs on a new connection, and releasing an old claim touches nothing. The
    connection goes back to the pool when no lock is held (tests and short-lived processes can
    dispose of the engine).
    """

    _registry: weakref.WeakKeyDictionary[AsyncEngine, dict[int, _SharedAdvisoryLocks]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._io = asyncio.Lock()
        self._conn: AsyncConnection | None = None
        self._pid = 0
        self._generation = 0
        self._claims: dict[int, _Claim] = {}

    @classmethod
    def of(cls, engine: AsyncEngine) -> _SharedAdvisoryLocks:
        per_loop = cls._registry.setdefault(engine, {})
        loop = id(asyncio.get_running_loop())
        locks = per_loop.get(loop)
        if locks is None:
            locks = per_loop[loop] = cls(engine)
        return locks

    async def acquire(self, key: int, customer_id: uuid.UUID, *, wait_seconds: float) -> _Claim:
        deadline = time.monotonic() + wait_seconds
        while True:
            async with self._io:
                mine = self._claims.get(key)
                if mine is not None and mine.generation == self._generation:
                    # Held by this process: is its connection still alive? (If not, the server
                    # freed the lock and the claim is void: try again at once.)
                    if await self._probe():
                        continue
                else:
                    claim = await self._try_lock(key)
                    if claim is not None:
                        self._claims[key] = claim
                        return claim
            if time.monotonic() >= deadline:
                raise CustomerBusyError(f"customer {customer_id} is being synced by another worker")
            await asyncio.sleep(_POLL_SECONDS)

    async def release(self, claim: _Claim) -> None:
        async with self._io:
            if self._claims.get(claim.key) is claim:
                del self._claims[claim.key]
            if claim.generation == self._generation and self._conn is not None:
                try:
                    await self._conn.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": claim.key}
                    )
                except Exception:
                    # The connection died, which released the lock server-side: the sync's
                    # outcome, already committed or recorded, must not be replaced by this error.
                    logger.warning("Could not release the customer lock", exc_info=True)
                    await self._drop()
            if not self._claims and self._conn is not None:
                conn, self._conn = self._conn, None
                with contextlib.suppress(Exception):
                    await conn.close()  # back to the pool: no lock is held on it

    async def _try_lock(self, key: int) -> _Claim | None:
        """One ``pg_try_advisory_lock``; a dead connection is replaced once."""
        for attempt in range(2):
            conn = await self._connection()
            try:
                got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            except Exception:
                await self._drop()
                if attempt:
                    raise
                continue
            return _Claim(key, self._pid, self._generation) if got else None
        raise AssertionError("unreachable")

    async def _probe(self) -> bool:
        """True if the shared connection died (and was dropped)."""
        if self._conn is None:
            return True
        try:
            await self._conn.execute(text("SELECT 1"))
        except Exception:
            await self._drop()
            return True
        return False

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            try:
                # Autocommit: a session-level advisory lock needs no transaction, so no COMMIT
                # round trip after each statement (and no transaction held open while syncing).
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                self._pid = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.invalidate()
                raise
            self._conn = conn
        return self._conn

    async def _drop(self) -> None:
        """The shared connection failed: every lock taken on it is gone server-side."""
        conn, self._conn = self._conn, None
        self._generation += 1
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()


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
