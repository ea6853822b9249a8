"""The worker prunes old delivery records (processed-message ids, sent outbox rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from event_bus.settings import KafkaSettings
from sqlalchemy import select
from sync_engine import SyncSettings
from sync_worker.runtime import WorkerRuntime
from sync_worker.settings import SyncWorkerSettings, WorkerSettings
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async
from workflow_store.models import ProcessedMessage
from workflow_store.settings import StoreSettings


async def test_runtime_prunes_ledger_entries_older_than_the_retention(sqlite_url: str) -> None:
    await upgrade_async(sqlite_url)
    engine = create_engine(sqlite_url)
    now = datetime.now(UTC)
    async with create_session_factory(engine)() as session, session.begin():
        session.add_all(
            [
                ProcessedMessage(consumer="c", message_id="old", processed_at=now - timedelta(3)),
                ProcessedMessage(consumer="c", message_id="new", processed_at=now),
            ]
        )
    store = StoreSettings(
        DATABASE_URL=sqlite_url, ENCRYPTION_KEYS=SecretBox.generate_key(), APP_ENV="test"
    )
    runtime = WorkerRuntime(
        SyncWorkerSettings(
            store=store,
            kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # never contacted by this test
            worker=WorkerSettings(ledger_retention_days=1, prune_interval_seconds=0),
            sync=SyncSettings(),
        )
    )
    await runtime.start()
    try:
        result = await runtime.prune_once()
    finally:
        await runtime.stop()
    assert result.processed_messages == 1
    async with create_session_factory(engine)() as session:
        assert set(await session.scalars(select(ProcessedMessage.message_id))) == {"new"}
    await engine.dispose()
