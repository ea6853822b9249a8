"""Per-customer lock across processes on SQLite: an ``fcntl.flock`` on a lock file.

The in-process asyncio lock of :mod:`sync_engine.locks` does not see another process on the same
database file (a ``zuora-sync sync-workflows --inline`` beside ``make run``). A file lock next to
the database does; the kernel releases it when the process dies. One file per customer, in
``<database>.locks/``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from sync_engine.failures import CustomerBusyError

__all__ = ["lock_file_path", "sqlite_customer_file_lock"]

_POLL_SECONDS = 0.1


def lock_file_path(database: str, customer_id: uuid.UUID) -> Path:
    db = Path(database).resolve()
    return db.parent / f"{db.name}.locks" / f"{customer_id}.lock"


@asynccontextmanager
async def sqlite_customer_file_lock(
    engine: AsyncEngine, customer_id: uuid.UUID, *, wait_seconds: float
) -> AsyncIterator[None]:
    """Hold the customer's lock file; CustomerBusyError if not acquired within ``wait_seconds``.

    In-memory databases belong to one process: nothing to lock there.
    """
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        yield
        return
    path = lock_file_path(database, customer_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CustomerBusyError(
                        f"customer {customer_id} is being synced by another process"
                    ) from None
                await asyncio.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
