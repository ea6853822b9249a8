"""FastStream wiring of the sync worker: topics -> handlers, with a deliberate ack policy.

Every subscriber uses AckPolicy.MANUAL: the offset is committed only after the handler reached a
terminal outcome (done, skipped, sent to retry, dead-lettered); :mod:`sync_worker.delivery` decides
what happens otherwise (re-read during an outage, dead-letter poison after a bounded number of
deliveries, pause a partition that must wait, drain in-flight work at shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from event_bus.broker import KafkaPublisher, make_broker
from event_bus.topics import ensure_topics
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI
from observability.metrics import (
    MetricsServer,
    WorkerMetrics,
    start_metrics_server,
)
from observability.readiness import ReadyFile
from pydantic import BaseModel, Field, PlainValidator, TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sync_engine import WorkflowSyncEngine
from sync_messages import (
    CustomerEvent,
    RetrySync,
    SyncAllCustomers,
    SyncCustomerWorkflows,
    SyncDeadLettered,
    SyncEvent,
    UnprocessableMessage,
    customer_event_adapter,
    topics,
)
from workflow_store.db import create_engine, create_session_factory
from workflow_store.models import Customer
from workflow_store.retention import PruneResult, prune_delivery_records

from sync_worker import __version__
from sync_worker.delivery import Deliveries
from sync_worker.handlers import SyncCommandHandler
from sync_worker.ledger import ProcessedLedger
from sync_worker.metrics import LagMonitor, engine_hooks, subscriber_consumers
from sync_worker.settings import SyncWorkerSettings
from sync_worker.sweep import close_abandoned_runs

logger = logging.getLogger("sync_worker")

T = TypeVar("T")
Handler = Callable[..., Awaitable[None]]

DEFAULT_METRICS_PORT = 9100


def _as_received(value: Any) -> Any:
    return value


def _documented(model: Any) -> PlainValidator:
    """Declare ``model`` as a handler's body for the AsyncAPI document without validating it.

    FastStream builds the document from the handler's body annotation, but validating there would
    turn a malformed message into an exception before our handler runs. The handlers parse
    ``msg.body`` themselves (a malformed message is logged and skipped), so the annotation only
    documents the payload: the value passes through untouched.
    """
    return PlainValidator(_as_received, json_schema_input_type=model)


async def _undecoded(msg: KafkaMessage) -> Any:
    """The raw bytes: FastStream must not decode JSON itself, or a body that is not JSON would
    fail before our handler could dead-letter it (the handlers parse ``msg.body``)."""
    return msg.body


SyncCommandBody = Annotated[Any, _documented(SyncCustomerWorkflows)]
RetrySyncBody = Annotated[Any, _documented(RetrySync)]
SyncAllBody = Annotated[Any, _documented(SyncAllCustomers)]
CustomerEventBody = Annotated[Any, _documented(CustomerEvent)]
DeadLetter = Annotated[SyncDeadLettered | UnprocessableMessage, Field(discriminator="type")]


class WorkerRuntime:
    """The resources of one worker process: opened at start-up, closed at shutdown."""

    def __init__(self, settings: SyncWorkerSettings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.store, self.kafka = settings.store, settings.kafka
        self.worker, self.sync = settings.worker, settings.sync
        worker = settings.worker
        self.metrics = metrics if metrics is not None else WorkerMetrics()
        self._db: AsyncEngine | None = None
        self._publisher: KafkaPublisher | None = None
        self._handler: SyncCommandHandler | None = None
        self._background: list[asyncio.Task[None]] = []
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self.deliveries = Deliveries(
            dead_letter=self._dead_letter,
            max_deliveries=worker.max_deliveries,
            redelivery_delay_seconds=worker.redelivery_delay_seconds,
            on_dead_letter=self.metrics.dead_letter,
        )

    @property
    def handler(self) -> SyncCommandHandler:
        if self._handler is None:
            raise RuntimeError("worker runtime not started")
        return self._handler

    async def start(self) -> None:
        box = self.store.secret_box()  # fail fast on bad keys, before consuming anything
        # The whole connection budget of this process (README "Connection budget"): no overflow.
        pool = self.worker.database_pool_size
        self._db = create_engine(self.store.database_url, pool_size=pool, max_overflow=0)
        self._sessions = sessions = create_session_factory(self._db)
        on_outcome, on_zuora_request = engine_hooks(self.metrics)
        engine = WorkflowSyncEngine(
            self._db,
            box,
            allowed_base_urls=self.store.allowed_base_urls,
            settings=self.sync,
            definition_settings=self.settings.definitions,
            on_outcome=on_outcome,
            on_zuora_request=on_zuora_request,
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
            ledger=ProcessedLedger(sessions, publisher),
            publish=publish,
            settings=self.worker,
            metrics=self.metrics,
        )
        if self.worker.prune_interval_seconds > 0:
            self._repeat("prune-ledger", self.worker.prune_interval_seconds, self.prune_once)
        if self.worker.abandoned_run_sweep_seconds > 0:
            self._repeat(
                "close-abandoned-runs", self.worker.abandoned_run_sweep_seconds, self.sweep_once
            )

    async def _dead_letter(self, message: UnprocessableMessage, key: str | None) -> None:
        if self._publisher is None:
            raise RuntimeError("worker runtime not started")
        await self._publisher.publish_message(topics.SYNC_DLQ, message, key=key)

    async def sweep_once(self) -> int:
        """Close runs left ``running`` by a dead process (their customer lock is free)."""
        if self._db is None or self._sessions is None:
            raise RuntimeError("worker runtime not started")
        return await close_abandoned_runs(
            self._db,
            self._sessions,
            older_than=timedelta(seconds=self.worker.abandoned_run_age_seconds),
        )

    async def process(
        self,
        msg: KafkaMessage,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        """Parse, handle, then commit (or re-read, dead-letter, defer: see delivery.py)."""
        await self.deliveries.process(msg, parse, handle)

    async def prune_once(self) -> PruneResult:
        """Drop processed-message ids and sent outbox rows older than the retention window."""
        if self._sessions is None:
            raise RuntimeError("worker runtime not started")
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            result = await prune_delivery_records(
                session,
                older_than=now - timedelta(days=self.worker.ledger_retention_days),
                runs_older_than=now - timedelta(days=self.worker.sync_run_retention_days),
                failed_runs_older_than=now - timedelta(days=self.worker.failed_run_retention_days),
            )
        if result.processed_messages or result.sent_outbox_messages or result.sync_runs:
            logger.info(
                "Pruned delivery records and old sync runs",
                extra={
                    "processed_messages": result.processed_messages,
                    "sent_outbox_messages": result.sent_outbox_messages,
                    "sync_runs": result.sync_runs,
                },
            )
        return result

    def _repeat(self, name: str, interval: float, job: Callable[[], Awaitable[object]]) -> None:
        async def forever() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await job()
                except Exception:  # the database may be away for a while: try again next round
                    logger.warning("Background job failed", extra={"job": name}, exc_info=True)

        self._background.append(asyncio.create_task(forever(), name=name))

    async def stop(self) -> None:
        while self._background:
            task = self._background.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._publisher is not None:
            await self._publisher.close()
        if self._db is not None:
            await self._db.dispose()


def _parser(model: type[BaseModel] | TypeAdapter[Any]) -> Callable[[bytes], Any]:
    if isinstance(model, TypeAdapter):
        return model.validate_json
    return model.model_validate_json


def build_app(
    settings: SyncWorkerSettings | None = None, *, metrics: WorkerMetrics | None = None
) -> tuple[FastStream, KafkaBroker, WorkerRuntime]:
    """The worker app (nothing connects before it starts), from one settings object (default:
    the environment). On start it also serves ``/metrics`` on ``METRICS_HOST:METRICS_PORT``
    (default 127.0.0.1:9100; port 0 disables it)."""
    settings = settings if settings is not None else SyncWorkerSettings()
    kafka, worker = settings.kafka, settings.worker
    runtime = WorkerRuntime(settings, metrics)
    broker = make_broker(
        kafka,
        component="sync-worker",
        # A plain logger (no handler of its own) so FastStream's lines follow our log format.
        logger=logging.getLogger("faststream.access.kafka"),
        description="Kafka (KAFKA_BOOTSTRAP_SERVERS); JSON messages keyed by customer id.",
        # The drain (on_shutdown, below) already waited for in-flight syncs; this bounds what is
        # left when the grace period ran out.
        graceful_timeout=min(worker.shutdown_grace_seconds, 5.0),
    )
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
            topic,
            group_id=group_id,
            title=f"{topic}:{group}",
            decoder=_undecoded,
            **options,
            **extra,
        )
        register(handler)

    # The body parameter documents the payload (AsyncAPI); the raw bytes are parsed in process().
    async def on_sync_command(body: SyncCommandBody, msg: KafkaMessage) -> None:
        """SyncCustomerWorkflows: sync one customer (keyed by customer id: one customer's
        commands stay in order)."""
        await runtime.process(msg, _parser(SyncCustomerWorkflows), runtime.handler.on_command)

    async def on_sync_retry(body: RetrySyncBody, msg: KafkaMessage) -> None:
        """RetrySync: run a transiently failed sync again once it is due."""
        await runtime.process(msg, _parser(RetrySync), runtime.handler.on_retry)

    async def on_sync_all(body: SyncAllBody, msg: KafkaMessage) -> None:
        """SyncAllCustomers: fan out one SyncCustomerWorkflows per active customer."""
        await runtime.process(msg, _parser(SyncAllCustomers), runtime.handler.on_sync_all)

    async def on_customer_event(body: CustomerEventBody, msg: KafkaMessage) -> None:
        """CustomerCreated / CustomerUpdated (credentials changed): sync that customer;
        CustomerDeleted is ignored."""
        await runtime.process(
            msg, _parser(customer_event_adapter), runtime.handler.on_customer_event
        )

    subscribe(topics.SYNC_COMMANDS, on_sync_command, "commands", **parallel)
    subscribe(topics.SYNC_RETRY, on_sync_retry, "retries", **parallel)
    subscribe(topics.SYNC_ALL, on_sync_all, "sync-all")
    subscribe(topics.CUSTOMER_EVENTS, on_customer_event, "customer-events", **parallel)
    _declare_publications(broker)

    app = FastStream(
        broker,
        logger=logging.getLogger("faststream"),
        specification=AsyncAPI(
            title="Zuora Workflow Sync - sync worker",
            version=__version__,
            description=ASYNCAPI_DESCRIPTION,
        ),
    )
    lag = LagMonitor(
        lambda: broker.subscribers, runtime.metrics, interval=worker.lag_interval_seconds
    )
    metrics_server: list[MetricsServer] = []
    ready = ReadyFile.from_settings(settings.readiness)

    @app.on_startup
    async def _start() -> None:
        server = start_metrics_server(
            runtime.metrics.registry,
            default_port=DEFAULT_METRICS_PORT,
            settings=settings.metrics,
        )
        if server is not None:
            metrics_server.append(server)
        await ensure_topics(kafka, wait_seconds=None)  # a service waits for its broker
        await runtime.start()
        logger.info(
            "Sync worker starting",
            extra={"group_id": worker.group_id, "concurrency": worker.concurrency},
        )

    @app.after_startup
    async def _watch_lag() -> None:
        lag.start()
        ready.mark()  # the consumers have started: what a supervisor waits for

    @app.on_shutdown
    async def _drain() -> None:
        ready.clear()
        # Before the broker stops its consumers (which leaves the groups and hands the
        # partitions to other workers): stop fetching, let in-flight syncs finish.
        await runtime.deliveries.drain(
            subscriber_consumers(broker.subscribers), worker.shutdown_grace_seconds
        )
        await lag.stop()

    @app.after_shutdown
    async def _stop() -> None:
        await runtime.stop()
        while metrics_server:
            metrics_server.pop().close()

    return app, broker, runtime


ASYNCAPI_DESCRIPTION = (
    "The Kafka topics of Zuora Workflow Sync as the sync worker sees them: what it consumes "
    "(one consumer group per topic, offsets committed after a terminal outcome) and what it "
    "publishes. Every message is JSON with a unique `id` (the idempotency key) and a `type`; "
    "the key is the customer id where a customer is concerned. Other producers: the customer "
    "API (customers.events.v1 and workflow-sync.commands.v1, through its transactional "
    "outbox) and the scheduler (workflow-sync.sync-all.v1)."
)


def _declare_publications(broker: KafkaBroker) -> None:
    """What the worker publishes (through :class:`KafkaPublisher`), for the AsyncAPI document."""
    declared: list[tuple[str, Any, str]] = [
        (
            topics.SYNC_COMMANDS,
            SyncCustomerWorkflows,
            "Fan-out of a SyncAllCustomers: one command per active customer.",
        ),
        (
            topics.SYNC_RETRY,
            RetrySync,
            "A transiently failed sync, to run again after the retry backoff.",
        ),
        (
            topics.SYNC_DLQ,
            DeadLetter,
            "A sync that failed permanently or ran out of attempts (see `zuora-sync failed`), "
            "or a message no handler could process (malformed, or failing on every delivery).",
        ),
        (
            topics.SYNC_EVENTS,
            SyncEvent,
            "Facts about syncs: WorkflowSyncCompleted, WorkflowSyncFailed, WorkflowsChanged, "
            "WorkflowDefinitionChanged.",
        ),
    ]
    for topic, schema, description in declared:
        broker.publisher(topic, schema=schema, title=f"{topic}:publish", description=description)
