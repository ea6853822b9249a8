"""The worker's metrics wiring: engine hooks -> :class:`WorkerMetrics`, and Kafka consumer lag.

Consumer lag is read from the aiokafka consumers behind FastStream's subscribers (``consumer``,
or ``consumer_subgroup`` for a subscriber with ``max_workers``): for every partition assigned to
this process, ``highwater(tp) - position(tp)``. ``position`` is a coroutine in aiokafka, so the
values are refreshed by a background task every few seconds rather than at scrape time (the
metrics server runs in another thread). A partition whose highwater is not known yet (no fetch
answered) is left out. The lag of a whole consumer group is better read on the broker side (e.g.
KEDA's Kafka scaler or kafka-exporter); this is the per-process view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from observability.metrics import WorkerMetrics
from sync_engine import OutcomeHook, SyncOutcome, SyncRequest
from zuora_client import RequestEvent, RequestHook

__all__ = ["LagMonitor", "consumer_lag", "engine_hooks", "subscriber_consumers"]

log = logging.getLogger("sync_worker")

_POSITION_TIMEOUT = 2.0


def engine_hooks(metrics: WorkerMetrics) -> tuple[OutcomeHook, RequestHook]:
    """``(on_outcome, on_zuora_request)`` for :class:`sync_engine.WorkflowSyncEngine`."""

    def on_outcome(request: SyncRequest, outcome: SyncOutcome, seconds: float) -> None:
        metrics.observe_sync(
            status=outcome.status.value,
            error_kind=outcome.error_kind.value if outcome.error_kind else None,
            duration_seconds=seconds,
            created=outcome.stats.created,
            updated=outcome.stats.updated,
            deleted=outcome.stats.deleted,
        )

    def on_zuora_request(event: RequestEvent) -> None:
        metrics.observe_zuora_request(
            endpoint=event.endpoint, status=event.status, duration_seconds=event.duration_seconds
        )

    return on_outcome, on_zuora_request


def subscriber_consumers(subscribers: Iterable[Any]) -> Iterator[Any]:
    for subscriber in subscribers:
        group = getattr(subscriber, "consumer_subgroup", None)
        if group:
            yield from group
            continue
        consumer = getattr(subscriber, "consumer", None)
        if consumer is not None:
            yield consumer


async def consumer_lag(subscribers: Iterable[Any]) -> dict[tuple[str, ...], float]:
    """``{(topic, partition): highwater - position}`` over the partitions assigned here."""
    lag: dict[tuple[str, ...], float] = {}
    for consumer in subscriber_consumers(subscribers):
        try:
            assigned = list(consumer.assignment())
        except Exception as exc:  # not started, or stopped meanwhile
            log.debug("Consumer assignment unavailable: %r", exc)
            continue
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT)
            except Exception as exc:  # revoked meanwhile, or no position yet
                log.debug("No position for %s: %r", tp, exc)
                continue
            lag[(tp.topic, str(tp.partition))] = float(max(0, highwater - position))
    return lag


class LagMonitor:
    """Refreshes ``zws_consumer_lag`` from the broker's subscribers every ``interval`` seconds."""

    def __init__(self, subscribers: Any, metrics: WorkerMetrics, *, interval: float) -> None:
        self._subscribers = subscribers  # a callable returning them, or an iterable
        self._metrics = metrics
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        subscribers = self._subscribers() if callable(self._subscribers) else self._subscribers
        self._metrics.consumer_lag.replace(await consumer_lag(subscribers))

    def start(self) -> None:
        if self._task is None and self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="consumer-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # Bounded: a consumer call may not yield to the cancellation at once, and the
            # shutdown (drain) must not wait on a metric.
            await asyncio.wait({self._task}, timeout=5)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # never let a metric take the worker down
                log.warning("Could not read the consumer lag", exc_info=True)
            await asyncio.sleep(self._interval)
