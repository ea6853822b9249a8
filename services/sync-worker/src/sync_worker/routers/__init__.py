"""The worker's subscribers and publications, one FastStream ``KafkaRouter`` per topic family,
included into the one broker by :func:`sync_worker.app.build_app`:

- :mod:`.commands`: sync commands, their retries and the sync-all fan-out;
- :mod:`.customer_events`: customer lifecycle events from the API;
- :mod:`.publications`: what the worker publishes (declared for the AsyncAPI document).

A new family (e.g. a consumer of ``workflow-sync.events.v1``) is one more module of this shape.
Every subscriber is made by :class:`Subscriptions`, so they share one ack policy and one consumer
group per topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, PlainValidator, TypeAdapter

from sync_worker.settings import SyncWorkerSettings

__all__ = ["Handler", "Subscriptions", "documented", "parser"]

Handler = Callable[..., Awaitable[None]]


def _as_received(value: Any) -> Any:
    return value


def documented(model: Any) -> PlainValidator:
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


def parser(model: type[BaseModel] | TypeAdapter[Any]) -> Callable[[bytes], Any]:
    """The parse step of :meth:`WorkerRuntime.process` for one message model."""
    if isinstance(model, TypeAdapter):
        return model.validate_json
    return model.model_validate_json


@dataclass(frozen=True)
class Subscriptions:
    """How every subscriber of the worker is registered.

    AckPolicy.MANUAL: the offset is committed only after the handler reached a terminal outcome
    (:mod:`sync_worker.delivery`). One consumer group per topic: a member joining one topic does
    not stop the others (on a shared group every join rebalances every subscriber of every topic).
    """

    group_prefix: str
    concurrency: int
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: SyncWorkerSettings) -> Subscriptions:
        worker, kafka = settings.worker, settings.kafka
        return cls(
            group_prefix=worker.group_id,
            concurrency=worker.concurrency,
            options={
                "ack_policy": AckPolicy.MANUAL,
                "auto_offset_reset": "earliest",
                "max_poll_interval_ms": worker.max_poll_interval_ms,
                **kafka.consumer_options(),
            },
        )

    def subscribe(
        self,
        router: KafkaRouter,
        topic: str,
        group: str,
        handler: Handler,
        *,
        parallel: bool,
        listener: Any = None,
    ) -> None:
        """Register ``handler`` on ``topic`` in the group ``<prefix>.<group>``; ``parallel``:
        up to ``WORKER_CONCURRENCY`` consumers (partitions worked on at once); ``listener``:
        the consumers' rebalance listener (aiokafka ``ConsumerRebalanceListener`` methods)."""
        extra: dict[str, Any] = {}
        if parallel and self.concurrency > 1:
            extra["max_workers"] = self.concurrency
        if listener is not None:
            extra["listener"] = listener
        # FastStream's overloads cannot type **kwargs; the options come from typed settings.
        register: Callable[[Handler], object] = router.subscriber(
            topic,
            group_id=f"{self.group_prefix}.{group}",
            title=f"{topic}:{group}",
            decoder=_undecoded,
            **self.options,
            **extra,
        )
        register(handler)
