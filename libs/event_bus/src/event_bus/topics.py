"""Create the project's topics (idempotent): list what exists, create what is missing.

One waiting policy, by situation (the broker may start after us, or be down for a while):

- every attempt that cannot reach the broker is retried after an exponential backoff,
  0.1 s doubling to 5 s (:data:`BACKOFF`), with a WARNING on the first failure and then about
  once a minute;
- the services (sync worker, customer API's outbox relay, scheduler) wait with no deadline:
  they cannot do their Kafka work without the topics, and a broker that comes back is used at
  once (no crash loop). The worker waits before it consumes; the API and the scheduler wait in
  the background (:func:`ensure_topics_until`) and keep serving; stopping the process ends the
  wait;
- launchers and tests (``make run``, the benchmarks, the e2e fixtures) give up after
  :data:`STARTUP_WAIT_SECONDS` with :class:`TopicsNotReadyError`: they report, they do not hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from sync_messages.topics import ALL_TOPICS
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_before_delay,
    stop_never,
    wait_exponential,
)

from event_bus.settings import KafkaSettings

__all__ = [
    "BACKOFF",
    "STARTUP_WAIT_SECONDS",
    "TopicsNotReadyError",
    "ensure_topics",
    "ensure_topics_until",
]

STARTUP_WAIT_SECONDS = 30.0
"""How long a launcher or a test waits for the topics before it reports a broker problem."""

BACKOFF = wait_exponential(multiplier=0.1, min=0.1, max=5.0)
"""Between two attempts: 0.1 s, 0.2 s, 0.4 s ... up to 5 s."""

_WARN_EVERY = 12  # attempts at the 5 s cap: about once a minute

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


def _log_retry(settings: KafkaSettings) -> Any:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        level = logging.WARNING if state.attempt_number % _WARN_EVERY == 1 else logging.DEBUG
        log.log(
            level,
            "Kafka topics not ensured yet on %s (attempt %d: %r); retrying in %.1fs",
            settings.bootstrap_servers,
            state.attempt_number,
            exc,
            wait,
        )

    return before_sleep


async def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[str] = ALL_TOPICS,
    *,
    wait_seconds: float | None = STARTUP_WAIT_SECONDS,
    request_timeout_ms: int = 5000,
) -> None:
    """Create every topic of ``topics`` that does not exist yet with the configured partitions.

    Existing topics are left alone (their partition count is not changed). While the broker
    cannot be reached, retries with :data:`BACKOFF` for up to ``wait_seconds`` (None: until it
    can), then raises :class:`TopicsNotReadyError`. Other errors (a refused topic) raise at once.
    """
    wanted = list(dict.fromkeys(topics))
    retrying = AsyncRetrying(
        stop=stop_never if wait_seconds is None else stop_before_delay(wait_seconds),
        wait=BACKOFF,
        retry=retry_if_exception_type((KafkaError, OSError)),
        before_sleep=_log_retry(settings),
        reraise=True,
    )
    try:
        await retrying(_ensure_once, settings, wanted, request_timeout_ms)
    except (KafkaError, OSError) as exc:
        raise TopicsNotReadyError(
            f"could not ensure topics on {settings.bootstrap_servers}: {exc!r}"
        ) from exc


async def ensure_topics_until(settings: KafkaSettings, stop: asyncio.Event) -> bool:
    """The services' background wait: :func:`ensure_topics` with no deadline, ended by ``stop``.

    Never raises (a service keeps running without its topics; the failure is logged). True once
    the topics exist, False when stopped first or on an error that retrying cannot cure.
    """
    ensuring = asyncio.create_task(ensure_topics(settings, wait_seconds=None))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({ensuring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (ensuring, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if not ensuring.done() or ensuring.cancelled():
        return False
    exc = ensuring.exception()
    if exc is not None:
        log.error("Creating the Kafka topics failed (not retried): %r", exc)
        return False
    return True
