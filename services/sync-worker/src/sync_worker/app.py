"""The worker's composition root: one settings object -> runtime, broker with its routers,
FastStream app with its lifecycle (metrics server, topics, drain on shutdown, ready file).

The subscribers live in :mod:`sync_worker.routers` (one ``KafkaRouter`` per topic family), the
resources and background jobs in :mod:`sync_worker.runtime`, the retention job in
:mod:`sync_worker.retention`. Every subscriber uses AckPolicy.MANUAL: the offset is committed
only after the handler reached a terminal outcome; :mod:`sync_worker.delivery` decides what happens
otherwise (re-read during an outage, dead-letter poison after a bounded number of deliveries,
pause a partition that must wait, drain in-flight work at shutdown).
"""

from __future__ import annotations

import logging

from event_bus.broker import make_broker
from event_bus.topics import ensure_topics
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from observability.metrics import MetricsServer, WorkerMetrics, start_metrics_server
from observability.readiness import ReadyFile

from sync_worker import __version__
from sync_worker.metrics import LagMonitor, subscriber_consumers
from sync_worker.routers import Subscriptions
from sync_worker.routers.commands import commands_router
from sync_worker.routers.customer_events import customer_events_router
from sync_worker.routers.publications import publications_router
from sync_worker.runtime import WorkerRuntime
from sync_worker.settings import SyncWorkerSettings

__all__ = ["ASYNCAPI_DESCRIPTION", "DEFAULT_METRICS_PORT", "build_app"]

logger = logging.getLogger("sync_worker")

DEFAULT_METRICS_PORT = 9100


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
    subscriptions = Subscriptions.from_settings(settings)
    broker.include_router(commands_router(runtime, subscriptions))
    broker.include_router(customer_events_router(runtime, subscriptions))
    broker.include_router(publications_router())

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
            extra={
                "group_id": worker.group_id,
                "concurrency": worker.concurrency,
                "max_in_flight": worker.max_in_flight,
            },
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
        await runtime.drain(subscriber_consumers(broker.subscribers), worker.shutdown_grace_seconds)
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
