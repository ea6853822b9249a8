"""The resources of one worker process (database, publisher, engine, handler, background jobs),
opened at start-up and closed at shutdown. The routers reach the handler through it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeVar, cast

from event_bus.broker import KafkaPublisher
from faststream.kafka.annotations import KafkaMessage
from observability.metrics import WorkerMetrics
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sync_engine import WorkflowSyncEngine
from sync_messages import UnprocessableMessage, topics
from workflow_store.customers import active_customer_ids
from workflow_store.db import create_engine, create_session_factory
from workflow_store.models import Customer
from workflow_store.retention import PruneResult

from sync_worker import retention
from sync_worker.delivery import Deliveries
from sync_worker.handlers import SyncCommandHandler, SyncCustomer
from sync_worker.inflight import InFlight, ZuoraHostBudget
from sync_worker.lanes import FastLane
from sync_worker.ledger import ProcessedLedger
from sync_worker.metrics import engine_hooks
from sync_worker.settings import SyncWorkerSettings
from sync_worker.sweep import close_abandoned_runs

__all__ = ["WorkerRuntime"]

logger = logging.getLogger("sync_worker")

T = TypeVar("T")


class WorkerRuntime:
    """The resources of one worker process: opened at start-up, closed at shutdown."""

    def __init__(self, settings: SyncWorkerSettings, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.store, self.kafka = settings.store, settings.kafka
        self.worker, self.sync = settings.worker, settings.sync
        worker = settings.worker
        self.metrics = metrics if metrics is not None else WorkerMetrics()
        self._db: AsyncEngine | None = None
        self._engine: WorkflowSyncEngine | None = None
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
        self.fast_lane = FastLane(worker.fast_lane_hold_seconds)
        # Several sync commands of one partition at once (WORKER_MAX_IN_FLIGHT > 0).
        self.inflight: InFlight | None = (
            InFlight(
                deliveries=self.deliveries,
                max_in_flight=worker.max_in_flight,
                max_deliveries=worker.max_deliveries,
                redelivery_delay_seconds=worker.redelivery_delay_seconds,
                before_start=self.fast_lane.bulk_turn,
                target_lag_seconds=worker.in_flight_target_lag_ms / 1000,
            )
            if worker.max_in_flight > 0
            else None
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
        self._engine = engine
        self._publisher = KafkaPublisher(self.kafka, component="sync-worker")
        publisher = self._publisher

        async def publish(topic: str, message: BaseModel, *, key: str | None) -> None:
            await publisher.publish_message(topic, message, key=key)

        async def active_customers() -> Sequence[uuid.UUID]:
            async with sessions() as session:
                return await active_customer_ids(session)

        sync_customer: SyncCustomer = engine.sync_customer
        if self.worker.max_in_flight_per_zuora_host is not None:

            async def base_url_of(customer_id: uuid.UUID) -> str | None:
                async with sessions() as session:
                    return await session.scalar(
                        select(Customer.base_url).where(Customer.id == customer_id)
                    )

            budget = ZuoraHostBudget(self.worker.max_in_flight_per_zuora_host, base_url_of)
            sync_customer = cast(SyncCustomer, budget.wrap(engine.sync_customer))

        self._handler = SyncCommandHandler(
            sync_customer=sync_customer,
            active_customer_ids=active_customers,
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

    async def prune_once(self) -> PruneResult:
        """One round of the retention job (:mod:`sync_worker.retention`)."""
        if self._sessions is None:
            raise RuntimeError("worker runtime not started")
        return await retention.prune_once(self._sessions, self.worker)

    async def process(
        self,
        msg: KafkaMessage,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        """Parse, handle, then commit (or re-read, dead-letter, defer: see delivery.py)."""
        await self.deliveries.process(msg, parse, handle)

    async def process_urgently(
        self,
        msg: KafkaMessage,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        """As :meth:`process`, in the fast lane: bulk syncs not started yet wait meanwhile."""
        await self.deliveries.process(msg, parse, self.fast_lane.urgently(handle))

    async def process_concurrently(
        self,
        msg: KafkaMessage,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        """Admit the message to run beside the partition's others (:mod:`sync_worker.inflight`);
        serially as :meth:`process` when ``WORKER_MAX_IN_FLIGHT=0``."""
        if self.inflight is None:
            await self.deliveries.process(msg, parse, handle)
        else:
            await self.inflight.submit(msg, parse, handle)

    async def drain(self, consumers: Iterable[Any], grace_seconds: float) -> bool:
        """Stop fetching, wait up to ``grace_seconds`` for in-flight messages, commit what the
        concurrent commands finished."""
        started = time.monotonic()
        finished = await self.deliveries.drain(consumers, grace_seconds)
        if self.inflight is not None:
            left = max(grace_seconds - (time.monotonic() - started), 0.0)
            finished = await self.inflight.drain(left) and finished
        return finished

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
        if self.inflight is not None:
            await self.inflight.slots.aclose()
        if self._publisher is not None:
            await self._publisher.close()
        if self._engine is not None:
            await self._engine.aclose()  # the shared Zuora connection pools
        if self._db is not None:
            await self._db.dispose()
