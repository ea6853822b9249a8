"""Sync commands: ``workflow-sync.commands.v1``, the fast lane of the commands someone waits for
(``workflow-sync.commands.priority.v1``), their retries (``workflow-sync.retry.v1``) and the
sync-all fan-out (``workflow-sync.sync-all.v1``)."""

from __future__ import annotations

from typing import Annotated, Any

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from sync_messages import RetrySync, SyncAllCustomers, SyncCustomerWorkflows, topics

from sync_worker.routers import Subscriptions, documented, parser
from sync_worker.runtime import WorkerRuntime

__all__ = ["commands_router"]

# The body parameter documents the payload (AsyncAPI); the raw bytes are parsed in process().
SyncCommandBody = Annotated[Any, documented(SyncCustomerWorkflows)]
RetrySyncBody = Annotated[Any, documented(RetrySync)]
SyncAllBody = Annotated[Any, documented(SyncAllCustomers)]


def commands_router(runtime: WorkerRuntime, subscriptions: Subscriptions) -> KafkaRouter:
    router = KafkaRouter()

    async def on_sync_command(body: SyncCommandBody, msg: KafkaMessage) -> None:
        """SyncCustomerWorkflows: sync one customer (keyed by customer id: one customer's
        commands stay in order; several customers of a partition at once)."""
        await runtime.process_concurrently(
            msg, parser(SyncCustomerWorkflows), runtime.handler.on_command
        )

    async def on_priority_command(body: SyncCommandBody, msg: KafkaMessage) -> None:
        """SyncCustomerWorkflows asked for by an operator (API, UI, CLI, replay): its own
        consumer group, so it never waits behind a sync-all fan-out."""
        await runtime.process_urgently(
            msg, parser(SyncCustomerWorkflows), runtime.handler.on_command
        )

    async def on_sync_retry(body: RetrySyncBody, msg: KafkaMessage) -> None:
        """RetrySync: run a transiently failed sync again once it is due."""
        await runtime.process(msg, parser(RetrySync), runtime.handler.on_retry)

    async def on_sync_all(body: SyncAllBody, msg: KafkaMessage) -> None:
        """SyncAllCustomers: fan out one SyncCustomerWorkflows per active customer."""
        await runtime.process(msg, parser(SyncAllCustomers), runtime.handler.on_sync_all)

    subscriptions.subscribe(
        router,
        topics.SYNC_COMMANDS,
        "commands",
        on_sync_command,
        parallel=True,
        listener=runtime.inflight,
    )
    # Serial per partition (few messages, and a manual sync starts at once).
    subscriptions.subscribe(
        router,
        topics.SYNC_PRIORITY_COMMANDS,
        "priority-commands",
        on_priority_command,
        parallel=True,
    )
    # Serial per partition: a retry waits for its not_before with its partition paused, and
    # retries are few (transient failures only).
    subscriptions.subscribe(router, topics.SYNC_RETRY, "retries", on_sync_retry, parallel=True)
    # One fan-out at a time: a sync-all is a single message per slot.
    subscriptions.subscribe(router, topics.SYNC_ALL, "sync-all", on_sync_all, parallel=False)
    return router
