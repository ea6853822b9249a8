"""FastStream wiring of the sync worker: topics -> handlers, with a deliberate ack policy.

Every subscriber uses AckPolicy.MANUAL: the offset is committed only after the handler reached a
terminal outcome (done, skipped, sent to retry, dead-lettered). If processing itself crashes
(database or Kafka unreachable), the message is sought back and re-read after a pause, instead of
being committed past (ACK_FIRST would lose it; NACK_ON_ERROR would spin in a hot loop).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from event_bus.broker import KafkaPublisher, make_broker
from event_bus.settings import KafkaSettings
from event_bus.topics import ensure_topics
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sync_engine import SyncSettings, WorkflowSyncEngine
from sync_messages import (
    RetrySync,
    SyncAllCustomers,
    SyncCustomerWorkflows,
    customer_event_adapter,
    topics,
)
from workflow_store.db import create_engine, create_session_factory
from workflow_store.models import Customer
from workflow_store.settings import StoreSettings

from sync_worker.handlers import SyncCommandHandler
from sync_worker.ledger import ProcessedLedger
from sync_worker.settings import WorkerSettings

logger = logging.getLogger("sync_worker")

T = TypeVar("T")
Handler = Callable[[KafkaMessage], Awaitable[None]]


class WorkerRuntime:
    """The resources of one worker process: opened at start-up, closed at shutdown."""

    def __init__(
        self, store: StoreSettings, kafka: KafkaSettings, worker: WorkerSettings, sync: SyncSettings
    ) -> None:
        self.store, self.kafka, self.worker, self.sync = store, kafka, worker, sync
        self._db: AsyncEngine | None = None
        self._publisher: KafkaPublisher | None = None
        self._handler: SyncCommandHandler | None = None

    @property
    def handler(self) -> SyncCommandHandler:
        if self._handler is None:
            raise RuntimeError("worker runtime not started")
        return self._handler

    async def start(self) -> None:
        box = self.store.secret_box()  # fail fast on bad keys, before consuming anything
        # Each concurrent sync holds a lock connection and a session connection.
        pool = self.worker.concurrency * 2 + 4
        self._db = create_engine(self.store.database_url, pool_size=pool, max_overflow=pool)
        sessions = create_session_factory(self._db)
        engine = WorkflowSyncEngine(
            self._db, box, allowed_base_urls=self.store.allowed_base_urls, settings=self.sync
        )
        self._publisher = KafkaPublisher(self.kafka, component="sync-worker")
        publisher = self._publisher

        async def publish(topic: str, message: BaseModel, *, key: str | None) -> None:
            await publisher.publish_message(topic, message, key=key)

        async def active_customer_ids() -> Sequence[uuid.UUID]:
            async with sessions() as session:
                rows = await session.scalars(
                    select(Customer.id).where(Customer.active.is_(True)).order_by(Customer.id)
                )
                return list(rows)

        self._handler = SyncCommandHandler(
            sync_customer=engine.sync_customer,
            active_customer_ids=active_customer_ids,
            ledger=ProcessedLedger(sessions),
            publish=publish,
            settings=self.worker,
        )

    async def stop(self) -> None:
        if self._publisher is not None:
            await self._publisher.close()
        if self._db is not None:
            await self._db.dispose()

    async def process(
        self,
        msg: KafkaMessage,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        """Parse, handle, then commit; re-read later if handling crashed."""
        record: Any = msg.raw_message
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        try:
            payload = parse(msg.body)
        except ValidationError as exc:
            # A message we cannot read will never become readable: log it and move on.
            logger.error("Malformed message skipped", extra={**where, "error": str(exc)[:500]})
            await msg.ack()
            return
        try:
            await handle(payload)
        except Exception:
            logger.exception("Message processing failed; it will be re-read", extra=where)
            await asyncio.sleep(self.worker.redelivery_delay_seconds)
            await msg.nack()
            return
        await msg.ack()


def _parser(model: type[BaseModel] | TypeAdapter[Any]) -> Callable[[bytes], Any]:
    if isinstance(model, TypeAdapter):
        return model.validate_json
    return model.model_validate_json


def build_app(
    store: StoreSettings | None = None,
    kafka: KafkaSettings | None = None,
    worker: WorkerSettings | None = None,
    sync: SyncSettings | None = None,
) -> tuple[FastStream, KafkaBroker, WorkerRuntime]:
    store, kafka = store or StoreSettings(), kafka or KafkaSettings()
    worker, sync = worker or WorkerSettings(), sync or SyncSettings()
    runtime = WorkerRuntime(store, kafka, worker, sync)
    broker = make_broker(kafka, component="sync-worker")
    options: dict[str, Any] = {
        "ack_policy": AckPolicy.MANUAL,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": worker.max_poll_interval_ms,
        **kafka.consumer_options(),
    }
    parallel: dict[str, Any] = {"max_workers": worker.concurrency} if worker.concurrency > 1 else {}

    def subscribe(topic: str, handler: Handler, group: str, **extra: Any) -> None:
        # One consumer group per topic: a member joining one topic does not stop the others
        # (on a shared group every join rebalances every subscriber of every topic).
        group_id = f"{worker.group_id}.{group}"
        # FastStream's overloads cannot type **kwargs; the options come from typed settings above.
        register: Callable[[Handler], object] = broker.subscriber(
            topic, group_id=group_id, **options, **extra
        )
        register(handler)

    async def on_sync_command(msg: KafkaMessage) -> None:
        """SyncCustomerWorkflows: sync one customer."""
        await runtime.process(msg, _parser(SyncCustomerWorkflows), runtime.handler.on_command)

    async def on_sync_retry(msg: KafkaMessage) -> None:
        """RetrySync: run a transiently failed sync again once it is due."""
        await runtime.process(msg, _parser(RetrySync), runtime.handler.on_retry)

    async def on_sync_all(msg: KafkaMessage) -> None:
        """SyncAllCustomers: fan out one command per active customer."""
        await runtime.process(msg, _parser(SyncAllCustomers), runtime.handler.on_sync_all)

    async def on_customer_event(msg: KafkaMessage) -> None:
        """CustomerCreated / CustomerUpdated (credentials changed): sync that customer."""
        await runtime.process(
            msg, _parser(customer_event_adapter), runtime.handler.on_customer_event
        )

    subscribe(topics.SYNC_COMMANDS, on_sync_command, "commands", **parallel)
    subscribe(topics.SYNC_RETRY, on_sync_retry, "retries", **parallel)
    subscribe(topics.SYNC_ALL, on_sync_all, "sync-all")
    subscribe(topics.CUSTOMER_EVENTS, on_customer_event, "customer-events")

    app = FastStream(broker)

    @app.on_startup
    async def _start() -> None:
        await ensure_topics(kafka)
        await runtime.start()
        logger.info(
            "Sync worker starting",
            extra={"group_id": worker.group_id, "concurrency": worker.concurrency},
        )

    @app.after_shutdown
    async def _stop() -> None:
        await runtime.stop()

    return app, broker, runtime
