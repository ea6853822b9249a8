"""Create the project's topics (idempotent): list what exists, create what is missing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from sync_messages.topics import ALL_TOPICS

from event_bus.settings import KafkaSettings

__all__ = ["TopicsNotReadyError", "ensure_topics"]

log = logging.getLogger(__name__)


class TopicsNotReadyError(RuntimeError):
    """The broker stayed unreachable (or kept refusing) while the topics were being ensured."""


async def _ensure_once(settings: KafkaSettings, wanted: list[str], request_timeout_ms: int) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_list,
        client_id=settings.client_id("admin"),
        request_timeout_ms=request_timeout_ms,
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        response: Any = await admin.create_topics(
            [
                NewTopic(
                    name=topic,
                    num_partitions=settings.topic_partitions,
                    replication_factor=settings.replication_factor,
                )
                for topic in missing
            ]
        )
        for item in response.topic_errors:
            topic, code = item[0], item[1]
            if code == 0:
                log.info(
                    "Created Kafka topic %s with %d partitions", topic, settings.topic_partitions
                )
                continue
            error_type = for_code(code)
            if error_type is TopicAlreadyExistsError:  # another process won the race
                continue
            message = item[2] if len(item) > 2 and item[2] else error_type.__name__
            raise error_type(f"creating topic {topic}: {message}")
    finally:
        await admin.close()


async def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[str] = ALL_TOPICS,
    *,
    wait_seconds: float = 30.0,
    request_timeout_ms: int = 5000,
) -> None:
    """Create every topic of ``topics`` that does not exist yet with the configured partitions.

    Existing topics are left alone (their partition count is not changed). Retries with a short
    backoff while the broker is starting, for up to ``wait_seconds``, then raises
    :class:`TopicsNotReadyError`.
    """
    wanted = list(dict.fromkeys(topics))
    deadline = time.monotonic() + wait_seconds
    delay = 0.1
    while True:
        try:
            await _ensure_once(settings, wanted, request_timeout_ms)
            return
        except (KafkaError, OSError) as exc:
            if time.monotonic() + delay > deadline:
                raise TopicsNotReadyError(
                    f"could not ensure topics on {settings.bootstrap_servers}: {exc!r}"
                ) from exc
            log.debug("Kafka not ready for topic creation (%r); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
