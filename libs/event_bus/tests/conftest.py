from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from event_bus.testing import kafka_bootstrap, kafka_settings, local_kafka  # noqa: F401
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async


@pytest.fixture
async def pg_sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Session factory on a fresh, migrated PostgreSQL database."""
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def sqlite_sessions(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Session factory on a fresh, migrated SQLite database."""
    await upgrade_async(sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()
