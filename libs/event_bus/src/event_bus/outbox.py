"""Transactional outbox: write messages with the business change, publish them afterwards.

A writer calls :func:`enqueue` inside its own transaction; the row commits (or rolls back)
together with the change it describes. An :class:`OutboxRelay` then publishes pending rows to
Kafka, waits for the broker's ack and marks them sent. Delivery is at-least-once (a crash between
the ack and the mark publishes a row again), so consumers dedupe on the message id.

Order comes from the database (``outbox.seq``), never from a writer's clock. A round has three
steps, and no transaction is open while Kafka is talked to:

1. *claim* (one short transaction): the next rows in ``seq`` order whose key has no earlier row
   that is unavailable (claimed by a relay, or waiting before its next attempt) get
   ``claimed_until = now + claim_ttl``. On PostgreSQL claims are taken under a transaction-level
   advisory lock, so two relays (one per API replica) never claim at the same moment, and a
   claimed row is invisible to the other relay until its claim expires;
2. *publish* the claimed rows in order. A row that fails holds back only the later rows of its
   own key (per-key order is kept); the other keys go on;
3. *mark* (one short transaction): sent rows get ``sent_at``; a failed row gets ``attempts + 1``,
   ``last_error`` and a retry time (exponential, ``retry_delay`` up to ``max_retry_delay``). A
   row that has failed ``max_attempts`` times, in a round in which other rows were published
   (so the broker is up and the row itself is the problem), is *parked* (``dead_at``): logged at
   ERROR, counted through ``on_parked``, and no longer holding its key back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from tenacity import AsyncRetrying, retry_if_result, wait_exponential
from workflow_store.models import OutboxMessage

from event_bus.broker import json_headers

__all__ = [
    "OutboxRelay",
    "PublishFn",
    "RawProducer",
    "RoundResult",
    "enqueue",
    "parked_count",
    "pending_count",
    "unsent_count",
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
    row = OutboxMessage(
        id=message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id)),
        topic=topic,
        key=key,
        payload=message.model_dump(mode="json"),
        headers=dict(headers) if headers else None,
        attempts=0,
    )
    if session.get_bind().dialect.name != "postgresql":
        # No sequences on SQLite, but its writers are serialised: max + 1, evaluated by the
        # INSERT itself, is unique and in commit order.
        row.seq = select(func.coalesce(func.max(OutboxMessage.seq), 0) + 1).scalar_subquery()
    session.add(row)


def _pending() -> ColumnElement[bool]:
    return and_(OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None))


async def pending_count(session: AsyncSession) -> int:
    """How many outbox rows wait to be published (the outbox-backlog metric; parked rows not)."""
    stmt = select(func.count()).select_from(OutboxMessage).where(_pending())
    return int((await session.execute(stmt)).scalar_one())


async def unsent_count(session: AsyncSession, ids: Sequence[uuid.UUID]) -> int:
    """How many of the rows ``ids`` are not sent yet (a writer waiting for its own messages)."""
    stmt = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.sent_at.is_(None))
    )
    return int((await session.execute(stmt)).scalar_one())


async def parked_count(session: AsyncSession) -> int:
    """How many outbox rows were parked after too many failed attempts."""
    stmt = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dead_at.is_not(None))
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


@dataclass(frozen=True)
class _Claimed:
    """What a round needs of a claimed row (plain values: no session is open while publishing)."""

    id: uuid.UUID
    topic: str
    key: str | None
    payload: Any
    headers: dict[str, Any] | None
    attempts: int


@dataclass
class RoundResult:
    """What one :meth:`OutboxRelay.run_once` did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    parked: int = 0
    failure: BaseException | None = field(default=None, repr=False)


class OutboxRelay:
    """Publishes pending outbox rows to Kafka and marks them sent (see the module docstring).

    ``publisher`` is a started :class:`aiokafka.AIOKafkaProducer` (anything with
    ``send_and_wait``) or an async ``publish(topic, key, value, headers)`` callable such as
    :class:`event_bus.broker.KafkaPublisher`, which reconnects by itself after an outage.
    ``retry_delay`` (default: ``poll_interval``) is the wait before a failed row's second
    attempt; it doubles per attempt up to ``max_retry_delay``. ``claim_ttl`` must exceed the time
    one batch takes to publish, or another relay may publish the same rows again (a duplicate,
    never a loss). ``on_parked(topic)`` is called for each parked row (a metric).
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        publisher: PublishFn | RawProducer,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        max_backoff: float = 10.0,
        max_attempts: int = 10,
        retry_delay: float | None = None,
        max_retry_delay: float = 60.0,
        claim_ttl: float = 120.0,
        on_parked: Callable[[str], None] | None = None,
        relay_id: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._session_factory = session_factory
        self._publish = _as_publish_fn(publisher)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.retry_delay = poll_interval if retry_delay is None else retry_delay
        self.max_retry_delay = max_retry_delay
        self.claim_ttl = claim_ttl
        self.relay_id = relay_id or f"relay-{uuid.uuid4().hex[:12]}"
        self._on_parked = on_parked
        self._wake = asyncio.Event()
        self._last = RoundResult()

    @property
    def last_failure(self) -> BaseException | None:
        """The last publish error of the latest :meth:`run_once`, if any."""
        return self._last.failure

    @property
    def last_round(self) -> RoundResult:
        return self._last

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
        """Claim, publish and mark one batch; return how many rows were sent.

        Publish errors are recorded on their rows (see :attr:`last_round`); database errors
        propagate (claimed rows are then released by their claim's expiry).
        """
        self._last = RoundResult()
        claimed = await self._claim()
        result = RoundResult(claimed=len(claimed))
        sent: list[uuid.UUID] = []
        failed: list[tuple[_Claimed, BaseException]] = []
        held_back: list[uuid.UUID] = []
        failed_keys: set[str] = set()
        for row in claimed:
            if row.key is not None and row.key in failed_keys:
                held_back.append(row.id)  # an earlier row of its key failed: keep the order
                continue
            try:
                await self._publish(
                    row.topic,
                    row.key.encode() if row.key is not None else None,
                    _payload_bytes(row.payload),
                    json_headers(row.headers),
                )
            except Exception as exc:
                failed.append((row, exc))
                result.failure = exc
                if row.key is not None:
                    failed_keys.add(row.key)
                continue
            sent.append(row.id)
        result.sent, result.failed = len(sent), len(failed)
        if claimed:
            result.parked = await self._mark(sent, failed, held_back)
        self._last = result
        return result.sent

    async def _claim(self) -> list[_Claimed]:
        async with self._session_factory() as session, session.begin():
            postgres = session.get_bind().dialect.name == "postgresql"
            if postgres:
                got = await session.scalar(select(func.pg_try_advisory_xact_lock(*_RELAY_LOCK)))
                if not got:  # another relay is claiming right now; next round
                    return []
            now = await _now(session)
            earlier = aliased(OutboxMessage)
            key_held_back = exists().where(
                earlier.key == OutboxMessage.key,
                earlier.sent_at.is_(None),
                earlier.dead_at.is_(None),
                earlier.seq < OutboxMessage.seq,
                earlier.claimed_until > now,
            )
            stmt = (
                select(OutboxMessage)
                .where(
                    _pending(),
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
                    ~key_held_back,
                )
                .order_by(OutboxMessage.seq, OutboxMessage.id)
                .limit(self.batch_size)
            )
            rows = (await session.scalars(stmt)).all()
            if not rows:
                return []
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id for row in rows]))
                .values(
                    claimed_by=self.relay_id,
                    claimed_until=now + timedelta(seconds=self.claim_ttl),
                )
            )
            return [
                _Claimed(row.id, row.topic, row.key, row.payload, row.headers, row.attempts or 0)
                for row in rows
            ]

    async def _mark(
        self,
        sent: Sequence[uuid.UUID],
        failed: Sequence[tuple[_Claimed, BaseException]],
        held_back: Sequence[uuid.UUID],
    ) -> int:
        """Record the round's outcome; returns how many rows were parked."""
        broker_up = bool(sent)  # only then is a failing row's own fault evident
        parked: list[str] = []
        async with self._session_factory() as session, session.begin():
            now = await _now(session)
            if sent:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(sent))
                    .values(sent_at=now, claimed_by=None, claimed_until=None)
                )
            if held_back:
                await session.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id.in_(held_back),
                        OutboxMessage.claimed_by == self.relay_id,
                    )
                    .values(claimed_by=None, claimed_until=None)
                )
            for row, exc in failed:
                attempts = row.attempts + 1
                park = broker_up and attempts >= self.max_attempts
                values: dict[str, Any] = {
                    "attempts": attempts,
                    "last_error": _describe(exc),
                    "claimed_by": None,
                    "claimed_until": None if park else now + self._retry_after(attempts),
                }
                if park:
                    values["dead_at"] = now
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
                )
                if park:
                    parked.append(row.topic)
                    log.error(
                        "Outbox message parked after %d failed attempts: id=%s topic=%s key=%s "
                        "error=%s (later messages of its key go on; see the README to requeue)",
                        attempts,
                        row.id,
                        row.topic,
                        row.key,
                        _describe(exc),
                    )
                elif broker_up and attempts == 1:
                    log.warning(
                        "Outbox message failed while others were published: id=%s topic=%s "
                        "key=%s error=%s (retried; parked after %d attempts)",
                        row.id,
                        row.topic,
                        row.key,
                        _describe(exc),
                        self.max_attempts,
                    )
        if self._on_parked is not None:
            for topic in parked:  # after the commit: the metric counts what is really parked
                self._on_parked(topic)
        return len(parked)

    def _retry_after(self, attempts: int) -> timedelta:
        delay = min(self.retry_delay * 2 ** min(attempts - 1, 30), self.max_retry_delay)
        return timedelta(seconds=max(0.0, delay))

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set. Never raises (except on cancellation).

        Polls every ``poll_interval`` (or at once after :meth:`wake`). A round in which nothing
        could be published but something failed (Kafka or the database down) starts an outage:
        rounds are retried with an exponential backoff (``poll_interval`` doubling up to
        ``max_backoff``, not woken early) until one publishes something; it is logged once when
        it starts and once when it ends. Rows failing while others are published are the rows'
        own problem: they wait for their retry time and do not slow the relay.
        """
        while not stop.is_set():
            self._wake.clear()
            result = await self._round()
            if result.failure is not None and result.sent == 0:
                await self._ride_out_outage(stop, result.failure)
                continue
            if result.claimed >= self.batch_size:
                await asyncio.sleep(0)  # more rows are likely waiting: go again at once
                continue
            await self._sleep(stop, self.poll_interval, wakeable=True)

    async def _round(self) -> RoundResult:
        try:
            await self.run_once()
        except Exception as exc:
            return RoundResult(failure=exc)
        return self._last

    async def _ride_out_outage(self, stop: asyncio.Event, failure: BaseException) -> None:
        """Retry rounds with backoff until one publishes something (or ``stop`` is set).

        A round that publishes nothing without failing (every row waiting for its retry time)
        does not end the outage: only a sent row says the broker is back.
        """
        since = datetime.now(UTC)
        log.warning(
            "Outbox relay cannot publish (%s); retrying with backoff up to %.1fs",
            _describe(failure),
            self.max_backoff,
        )

        def still_down(result: RoundResult) -> bool:
            if result.sent == 0 and result.failure is not None:
                log.debug("Outbox relay still failing: %s", _describe(result.failure))
            return result.sent == 0

        async def sleep(seconds: float) -> None:
            await self._sleep(stop, seconds, wakeable=False)

        first = max(self.poll_interval, 0.05)
        retrying = AsyncRetrying(
            # after the n-th retried round: first * 2**n (the first wait is taken below)
            wait=wait_exponential(multiplier=2 * first, max=self.max_backoff),
            retry=retry_if_result(still_down),
            stop=lambda _state: stop.is_set(),
            sleep=sleep,
            retry_error_callback=lambda state: None,  # stopped during the outage
        )

        async def round_after_the_wait() -> RoundResult:
            self._wake.clear()
            return await self._round()

        # The first wait comes before the first retry: tenacity sleeps between attempts only.
        await sleep(min(first, self.max_backoff))
        if stop.is_set():
            return
        recovered: RoundResult | None = await retrying(round_after_the_wait)
        if recovered is not None and recovered.sent:
            down_for = (datetime.now(UTC) - since).total_seconds()
            log.info("Outbox relay recovered after %.1fs", down_for)

    async def _sleep(self, stop: asyncio.Event, seconds: float, *, wakeable: bool) -> None:
        waiters = [asyncio.ensure_future(stop.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


async def _now(session: AsyncSession) -> datetime:
    """The database's clock on PostgreSQL (one clock for every relay), else this host's."""
    if session.get_bind().dialect.name == "postgresql":
        value = await session.scalar(select(func.now()))
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return datetime.now(UTC)


def _payload_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
