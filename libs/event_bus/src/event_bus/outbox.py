"""Transactional outbox: write messages with the business change, publish them afterwards.

A writer calls :func:`enqueue` inside its own transaction; the row commits (or rolls back)
together with the change it describes. An :class:`OutboxRelay` then publishes pending rows to
Kafka, waits for the broker's ack and marks them sent. Delivery is at-least-once (a crash between
the ack and the commit publishes a row again), so consumers dedupe on the message id.

Order: rows are published in ``created_at`` order and a failed publish ends the batch, so the
messages of one key reach Kafka in the order they were enqueued. To keep that true with several
relays (one per API replica) on PostgreSQL, a relay claims the batch under a transaction-level
advisory lock (a relay that finds it taken skips the round) and ``SELECT ... FOR UPDATE SKIP
LOCKED``, so no row is ever claimed twice at the same time. On SQLite (the single-process
embedded run) a plain select is used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from workflow_store.models import OutboxMessage

from event_bus.broker import json_headers

__all__ = [
    "OutboxRelay",
    "PublishFn",
    "RawProducer",
    "enqueue",
    "pending_count",
]

log = logging.getLogger(__name__)

PublishFn = Callable[[str, bytes | None, bytes, Sequence[tuple[str, bytes]]], Awaitable[None]]
"""``async publish(topic, key, value, headers)``: returns once the broker acknowledged."""

# pg_try_advisory_xact_lock(int4, int4): the two-key form never collides with the one-key
# (bigint) locks used elsewhere in the product.
_RELAY_LOCK = (0x5A57, 1)  # ("ZW", outbox relay)

_MAX_ERROR_CHARS = 2000


@runtime_checkable
class RawProducer(Protocol):
    """The part of :class:`aiokafka.AIOKafkaProducer` the relay uses."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...


_clock_lock = threading.Lock()
_last_created_at = datetime.min.replace(tzinfo=UTC)


def _next_created_at() -> datetime:
    """Now, but strictly after the previous value handed out by this process.

    Two rows enqueued back to back can read the same microsecond; ordering by ``created_at``
    would then not be the enqueue order.
    """
    global _last_created_at
    with _clock_lock:
        now = datetime.now(UTC)
        if now <= _last_created_at:
            now = _last_created_at + timedelta(microseconds=1)
        _last_created_at = now
        return now


def enqueue(
    session: AsyncSession,
    *,
    topic: str,
    message: BaseModel,
    key: str | None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Add ``message`` to the outbox in the caller's session (no flush, no commit).

    The row's id is the message's ``id`` (a UUID), its payload ``message.model_dump(mode="json")``.
    It is published only if the caller's transaction commits.
    """
    message_id = getattr(message, "id", None)
    if message_id is None:
        raise ValueError(f"{type(message).__name__} has no id: it cannot go through the outbox")
    session.add(
        OutboxMessage(
            id=message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id)),
            topic=topic,
            key=key,
            payload=message.model_dump(mode="json"),
            headers=dict(headers) if headers else None,
            created_at=_next_created_at(),
            attempts=0,
        )
    )


async def pending_count(session: AsyncSession) -> int:
    """How many outbox rows are not sent yet (the outbox-backlog metric)."""
    stmt = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())


def _as_publish_fn(target: PublishFn | RawProducer) -> PublishFn:
    if isinstance(target, RawProducer):
        producer = target

        async def publish(
            topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
        ) -> None:
            await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))

        return publish
    return target


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_MAX_ERROR_CHARS]


class OutboxRelay:
    """Publishes pending outbox rows to Kafka and marks them sent.

    ``publisher`` is a started :class:`aiokafka.AIOKafkaProducer` (anything with
    ``send_and_wait``) or an async ``publish(topic, key, value, headers)`` callable such as
    :class:`event_bus.broker.KafkaPublisher`, which reconnects by itself after an outage.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        publisher: PublishFn | RawProducer,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._session_factory = session_factory
        self._publish = _as_publish_fn(publisher)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._last_failure: BaseException | None = None

    @property
    def last_failure(self) -> BaseException | None:
        """The publish error that ended the latest :meth:`run_once`, if any."""
        return self._last_failure

    def wake(self) -> None:
        """Publish soon: call after committing a transaction that enqueued messages."""
        self._wake.set()

    async def pending_count(self, session: AsyncSession | None = None) -> int:
        """Unsent rows, counted in ``session`` or in a session of the relay's own."""
        if session is not None:
            return await pending_count(session)
        async with self._session_factory() as own:
            return await pending_count(own)

    async def run_once(self) -> int:
        """Publish up to ``batch_size`` pending rows in order; return how many were sent.

        A failed publish records ``attempts``/``last_error`` on that row, ends the batch (the
        rows after it wait, keeping per-key order) and is kept in :attr:`last_failure`.
        Database errors propagate.
        """
        self._last_failure = None
        sent = 0
        async with self._session_factory() as session, session.begin():
            postgres = session.get_bind().dialect.name == "postgresql"
            if postgres:
                got = await session.scalar(select(func.pg_try_advisory_xact_lock(*_RELAY_LOCK)))
                if not got:  # another relay is publishing; it keeps the order
                    return 0
            stmt = (
                select(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(self.batch_size)
            )
            if postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = (await session.scalars(stmt)).all()
            for row in rows:
                try:
                    await self._publish(
                        row.topic,
                        row.key.encode() if row.key is not None else None,
                        _payload_bytes(row.payload),
                        json_headers(row.headers),
                    )
                except Exception as exc:
                    row.attempts = (row.attempts or 0) + 1
                    row.last_error = _describe(exc)
                    self._last_failure = exc
                    break
                row.sent_at = datetime.now(UTC)
                sent += 1
        return sent

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set. Never raises (except on cancellation).

        Polls every ``poll_interval`` (or at once after :meth:`wake`); while Kafka or the
        database fails, backs off exponentially up to ``max_backoff`` and logs the outage once
        when it starts and once when it ends.
        """
        backoff = 0.0
        outage_since: datetime | None = None
        while not stop.is_set():
            self._wake.clear()
            failure: BaseException | None
            try:
                sent = await self.run_once()
                failure = self._last_failure
            except Exception as exc:
                sent, failure = 0, exc
            if failure is not None:
                if outage_since is None:
                    outage_since = datetime.now(UTC)
                    log.warning(
                        "Outbox relay cannot publish (%s); retrying with backoff up to %.1fs",
                        _describe(failure),
                        self.max_backoff,
                    )
                else:
                    log.debug("Outbox relay still failing: %s", _describe(failure))
                backoff = min(max(backoff * 2, self.poll_interval, 0.05), self.max_backoff)
                await self._sleep(stop, backoff, wakeable=False)
                continue
            if outage_since is not None:
                down_for = (datetime.now(UTC) - outage_since).total_seconds()
                log.info("Outbox relay recovered after %.1fs", down_for)
                outage_since = None
            backoff = 0.0
            if sent >= self.batch_size:
                await asyncio.sleep(0)  # more rows are likely waiting: go again at once
                continue
            await self._sleep(stop, self.poll_interval, wakeable=True)

    async def _sleep(self, stop: asyncio.Event, seconds: float, *, wakeable: bool) -> None:
        waiters = [asyncio.ensure_future(stop.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def _payload_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
