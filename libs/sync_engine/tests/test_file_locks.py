"""Audit M3: on SQLite the per-customer lock also excludes other processes (lock file)."""

from __future__ import annotations

import asyncio
import sys
import uuid

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sync_engine.failures import CustomerBusyError
from sync_engine.file_locks import lock_file_path
from sync_engine.locks import customer_lock

_HOLD = """
import fcntl, os, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()  # hold until the test closes stdin
"""


async def test_a_customer_locked_by_another_process_is_busy(tmp_path: object) -> None:
    database = f"{tmp_path}/store.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    customer, other = uuid.uuid4(), uuid.uuid4()
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD,
        str(lock_file_path(database, customer)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"held"
        with pytest.raises(CustomerBusyError, match="another process"):
            async with customer_lock(engine, customer, wait_seconds=0.3):
                pass
        async with customer_lock(engine, other, wait_seconds=0.3):  # other customers are free
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        await asyncio.wait_for(holder.wait(), 30)
        await engine.dispose()
    async with customer_lock(engine, customer, wait_seconds=0.3):  # released with the process
        pass
    await engine.dispose()
