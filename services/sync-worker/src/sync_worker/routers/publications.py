"""What the worker publishes (through :class:`event_bus.broker.KafkaPublisher`), declared on a
router for the AsyncAPI document: these publishers are never called."""

from __future__ import annotations

from typing import Annotated, Any

from faststream.kafka import KafkaRouter
from pydantic import Field
from sync_messages import (
    RetrySync,
    SyncCustomerWorkflows,
    SyncDeadLettered,
    SyncEvent,
    UnprocessableMessage,
    topics,
)

__all__ = ["DeadLetter", "publications_router"]

DeadLetter = Annotated[SyncDeadLettered | UnprocessableMessage, Field(discriminator="type")]

_DECLARED: list[tuple[str, Any, str]] = [
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


def publications_router() -> KafkaRouter:
    router = KafkaRouter()
    for topic, schema, description in _DECLARED:
        router.publisher(topic, schema=schema, title=f"{topic}:publish", description=description)
    return router
