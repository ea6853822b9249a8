"""Customer lifecycle events from the customer API's outbox: ``customers.events.v1``."""

from __future__ import annotations

from typing import Annotated, Any

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from sync_messages import CustomerEvent, customer_event_adapter, topics

from sync_worker.routers import Subscriptions, documented, parser
from sync_worker.runtime import WorkerRuntime

__all__ = ["customer_events_router"]

CustomerEventBody = Annotated[Any, documented(CustomerEvent)]


def customer_events_router(runtime: WorkerRuntime, subscriptions: Subscriptions) -> KafkaRouter:
    router = KafkaRouter()

    async def on_customer_event(body: CustomerEventBody, msg: KafkaMessage) -> None:
        """CustomerCreated / CustomerUpdated (credentials changed): sync that customer;
        CustomerDeleted is ignored."""
        await runtime.process_urgently(
            msg, parser(customer_event_adapter), runtime.handler.on_customer_event
        )

    subscriptions.subscribe(
        router, topics.CUSTOMER_EVENTS, "customer-events", on_customer_event, parallel=True
    )
    return router
