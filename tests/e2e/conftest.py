"""Fixtures of the end-to-end tests: a migrated PostgreSQL, a fresh broker, the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from event_bus.local_broker import LocalBroker
from event_bus.topics import ensure_topics
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async
from zuora_sandbox import SandboxServer

from .harness import Stack


@pytest.fixture
async def stack(
    postgres_url: str,
    local_kafka: LocalBroker,
    zuora_sandbox: SandboxServer,
    tmp_path: Path,
    kafka_settings: object,
) -> AsyncIterator[Stack]:
    await upgrade_async(postgres_url)
    await ensure_topics(kafka_settings)  # type: ignore[arg-type]
    s = Stack(
        database_url=postgres_url,
        kafka_bootstrap=local_kafka.bootstrap_servers,
        sandbox_url=zuora_sandbox.base_url,
        encryption_key=SecretBox.generate_key(),
        workdir=tmp_path,
    )
    try:
        yield s
    except BaseException:
        raise
    finally:
        s.stop_all()


@pytest.fixture
def dump_logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(stack.logs())  # shown by pytest for the failed test


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    engine = create_engine(stack.database_url)
    try:
        yield engine, create_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
