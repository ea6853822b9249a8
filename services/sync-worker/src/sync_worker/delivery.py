"""How one Kafka message reaches its handler, and when its offset is committed.

- A terminal outcome (done, skipped, re-queued, dead-lettered) commits the offset.
- An infrastructure outage (database or Kafka unreachable) re-reads the message after a pause, for
  as long as the outage lasts: nothing is wrong with the message.
- Anything else is the message's own fault (malformed, or failing the same way each time): it is
  re-read at most ``max_deliveries`` times, its partition paused in between so the consumer's other
  partitions go on, then published to the dead-letter topic with its error and committed.
- A handler may defer its message (:class:`NotDueYet`): the partition is paused until then and the
  message read again, without holding back the consumer's other partitions.
- At shutdown, fetching stops first (every partition paused) and in-flight messages get a grace
  period to finish before the consumers leave their groups.

This is the serial path: one message per partition at a time, a failure re-read by seeking back.
The sync-command topic runs several messages of a partition at once through
:mod:`sync_worker.inflight`, under the same rules (retried in place instead of re-read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sync_engine.failures import describe_failure
from sync_messages import UnprocessableMessage

logger = logging.getLogger("sync_worker")

T = TypeVar("T")

MAX_DEAD_LETTER_PAYLOAD = 64 * 1024
_TRACKED_OFFSETS = 10_000  # bound on the in-memory delivery counts


class NotDueYet(Exception):
    """Raised by a handler whose message must wait ``seconds`` before it is handled."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"not due for {seconds:.1f} s")
        self.seconds = seconds


def is_infrastructure_error(exc: BaseException) -> bool:
    """The database or Kafka is unreachable or overloaded: waiting helps, the message is fine."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        OperationalError
        | InterfaceError
        | PoolTimeoutError
        | KafkaError
        | ConnectionError
        | TimeoutError
        | OSError,
    )


DeadLetter = Callable[[UnprocessableMessage, str | None], Awaitable[None]]


class Deliveries:
    """Delivers messages to handlers under the rules above (one per worker process)."""

    def __init__(
        self,
        *,
        dead_letter: DeadLetter,
        max_deliveries: int,
        redelivery_delay_seconds: float,
        on_dead_letter: Callable[[], None] = lambda: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._dead_letter = dead_letter
        self._max_deliveries = max_deliveries
        self._redelivery_delay = redelivery_delay_seconds
        self._on_dead_letter = on_dead_letter
        self._sleep = sleep
        self._deliveries: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.stopping = False

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def process(
        self,
        msg: KafkaMessage,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        record: Any = msg.raw_message
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        if self.stopping:  # fetched while the drain began: the next owner reads it again
            await msg.nack()
            return
        try:
            payload = parse(msg.body)
        except ValidationError as exc:
            # A message we cannot read will never become readable: dead-letter it and move on.
            await self._give_up(msg, record, deliveries=1, error=validation_summary(exc))
            return
        self.begin()
        try:
            await self._handle(msg, record, where, payload, handle)
        finally:
            self.end()

    def begin(self) -> None:
        """A message is in flight (the drain waits for it)."""
        self._in_flight += 1
        self._idle.clear()

    def end(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def _handle(
        self,
        msg: KafkaMessage,
        record: Any,
        where: dict[str, Any],
        payload: T,
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        key = (record.topic, record.partition, record.offset)
        try:
            await handle(payload)
        except NotDueYet as wait:
            self._pause(msg, record, wait.seconds)
            await msg.nack()
            return
        except Exception as exc:
            if is_infrastructure_error(exc):
                logger.warning(
                    "Message processing failed (infrastructure); it will be re-read",
                    extra={**where, "error": describe_failure(exc)},
                    exc_info=True,
                )
                await self._sleep(self._redelivery_delay)
                await msg.nack()
                return
            deliveries = self._count(key)
            if deliveries >= self._max_deliveries:
                self._deliveries.pop(key, None)
                await self._give_up(msg, record, deliveries=deliveries, error=describe_failure(exc))
                return
            logger.exception(
                "Message processing failed; it will be re-read",
                extra={**where, "deliveries": deliveries},
            )
            self._pause(msg, record, self._redelivery_delay)
            await msg.nack()
            return
        self._deliveries.pop(key, None)
        await msg.ack()

    def _count(self, key: tuple[str, int, int]) -> int:
        count = self._deliveries.pop(key, 0) + 1
        self._deliveries[key] = count
        while len(self._deliveries) > _TRACKED_OFFSETS:
            self._deliveries.popitem(last=False)
        return count

    async def _give_up(
        self, msg: KafkaMessage, record: Any, *, deliveries: int, error: str
    ) -> None:
        if await self.dead_letter_record(record, deliveries=deliveries, error=error):
            await msg.ack()
        else:
            await self._sleep(self._redelivery_delay)
            await msg.nack()

    async def dead_letter_record(self, record: Any, *, deliveries: int, error: str) -> bool:
        """Publish ``record`` to the dead-letter topic with its error; False if Kafka is away."""
        value: bytes = record.value or b""
        dead = UnprocessableMessage(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode(errors="replace") if record.key else None,
            payload=value[:MAX_DEAD_LETTER_PAYLOAD].decode(errors="replace"),
            payload_truncated=len(value) > MAX_DEAD_LETTER_PAYLOAD,
            deliveries=deliveries,
            error=error[:2000],
        )
        try:
            await self._dead_letter(dead, dead.key)
        except Exception:  # Kafka is away: keep the message and try again later
            logger.warning("Could not dead-letter a message; it will be re-read", exc_info=True)
            return False
        self._on_dead_letter()
        logger.error(
            "Unprocessable message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "deliveries": deliveries,
                "error": dead.error,
                "dead_letter_id": dead.id,
            },
        )
        return True

    def _pause(self, msg: KafkaMessage, record: Any, seconds: float) -> None:
        """Stop fetching this partition for ``seconds``; the consumer's other partitions go on."""
        consumer = getattr(msg, "consumer", None)
        tp = TopicPartition(record.topic, record.partition)
        try:
            consumer.pause(tp)  # type: ignore[union-attr]
        except Exception:  # a rebalance took the partition away: nothing to pause
            return
        asyncio.get_running_loop().call_later(max(seconds, 0.0), _resume, consumer, tp)

    async def drain(self, consumers: Iterable[Any], grace_seconds: float) -> bool:
        """Stop fetching, then wait up to ``grace_seconds`` for in-flight messages to finish."""
        self.stopping = True
        for consumer in consumers:
            with contextlib.suppress(Exception):
                consumer.pause(*consumer.assignment())
        started = time.monotonic()
        logger.info(
            "Draining in-flight messages before shutdown",
            extra={"in_flight": self._in_flight, "grace_seconds": grace_seconds},
        )
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace_seconds)
        except TimeoutError:
            logger.warning(
                "Shutdown grace period ended with messages still in flight",
                extra={"in_flight": self._in_flight, "grace_seconds": grace_seconds},
            )
            return False
        logger.info(
            "In-flight messages finished",
            extra={"waited_seconds": round(time.monotonic() - started, 1)},
        )
        return True


def _resume(consumer: Any, tp: TopicPartition) -> None:
    with contextlib.suppress(Exception):  # no longer assigned (rebalance) or consumer stopped
        consumer.resume(tp)


def validation_summary(exc: ValidationError) -> str:
    """The validation errors without the offending input (which may be large or hostile)."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<message>'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)[:5]
    ]
    return f"ValidationError: {'; '.join(parts)}"[:2000]
