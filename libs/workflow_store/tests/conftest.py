"""Fixtures for the workflow store tests: migrated databases on both dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async


# Both are real databases, looked up at run time: the marks tell the root conftest's level rule.
@pytest.fixture(
    params=[
        pytest.param("postgresql", marks=pytest.mark.integration),
        pytest.param("sqlite", marks=pytest.mark.integration),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database URL, once per dialect."""
    fixture = "postgres_url" if request.param == "postgresql" else "sqlite_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def migrated_url(db_url: str) -> str:
    await upgrade_async(db_url)
    return db_url


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(migrated_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    factory = create_session_factory(engine)
    async with factory() as s:
        yield s


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([SecretBox.generate_key()])
