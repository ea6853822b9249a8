"""Broker and producer factories configured from :class:`KafkaSettings`, and a publisher.

Producers acknowledge with ``acks="all"``; idempotence follows the settings (on for Apache
Kafka, off for Tansu, which cannot do it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from event_bus.settings import KafkaSettings

__all__ = [
    "JSON_CONTENT_TYPE",
    "KafkaPublisher",
    "encode_message",
    "json_headers",
    "make_broker",
    "make_producer",
]

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"


def make_broker(settings: KafkaSettings, *, component: str = "", **kw: Any) -> KafkaBroker:
    """A FastStream :class:`KafkaBroker` for ``settings``; ``kw`` overrides any option."""
    options: dict[str, Any] = {
        "client_id": settings.client_id(component),
        "enable_idempotence": settings.idempotent_producer,
        "acks": "all",
    }
    options.update(kw)
    return KafkaBroker(settings.bootstrap_list, **options)


def make_producer(settings: KafkaSettings, *, component: str = "", **kw: Any) -> AIOKafkaProducer:
    """An (unstarted) :class:`AIOKafkaProducer` for ``settings``; ``kw`` overrides any option."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_list,
        "client_id": settings.client_id(component),
        "enable_idempotence": settings.idempotent_producer,
        "acks": "all",
    }
    options.update(kw)
    return AIOKafkaProducer(**options)


def encode_message(message: BaseModel) -> bytes:
    """A message as the JSON bytes every consumer (FastStream included) decodes."""
    return message.model_dump_json().encode()


def json_headers(extra: Mapping[str, Any] | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers: ``content-type: application/json`` plus ``extra`` (values as text)."""
    headers = [("content-type", JSON_CONTENT_TYPE.encode())]
    for name, value in (extra or {}).items():
        if name.lower() == "content-type":
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        headers.append((name, text.encode()))
    return headers


class KafkaPublisher:
    """Publishes raw records and waits for the broker's ack; reconnects after failures.

    The producer is started lazily on the first publish, so a process can start while Kafka is
    down; after a failed publish the producer is discarded and the next publish connects anew.
    Every publish is bounded by ``publish_timeout`` seconds. Matches the ``PublishFn`` signature
    of :class:`event_bus.outbox.OutboxRelay`.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        component: str = "publisher",
        publish_timeout: float = 10.0,
        **producer_options: Any,
    ) -> None:
        self._settings = settings
        self._component = component
        self._publish_timeout = publish_timeout
        timeout_ms = max(int(publish_timeout * 1000), 1000)
        producer_options.setdefault("request_timeout_ms", timeout_ms)
        self._producer_options = producer_options
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(
                    self._settings, component=self._component, **self._producer_options
                )
                try:
                    await producer.start()
                except BaseException:
                    await _stop_quietly(producer)
                    raise
                self._producer = producer
            return self._producer

    async def __call__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        try:
            async with asyncio.timeout(self._publish_timeout):
                producer = await self._get_producer()
                await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))
        except BaseException:
            await self._reset()
            raise

    async def publish_message(
        self,
        topic: str,
        message: BaseModel,
        *,
        key: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish a Pydantic message as JSON with ``content-type: application/json``."""
        await self(
            topic,
            key.encode() if key is not None else None,
            encode_message(message),
            json_headers(headers),
        )

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer)

    async def close(self) -> None:
        """Flush and stop the producer (if one was started)."""
        await self._reset()


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    try:
        async with asyncio.timeout(5):
            await producer.stop()
    except Exception as exc:  # the producer is being thrown away anyway
        log.debug("Ignoring error while stopping a Kafka producer: %r", exc)
