"""The worker's delivery records: which messages are settled, and what they still have to publish.

Settling a message is one transaction: its id goes into ``processed_messages``, the messages its
outcome publishes (retry, dead letter, result events) go into the ``outbox`` and a run that will be
retried is marked so. Only then are they published (:meth:`ProcessedLedger.flush`). A redelivery
after a failed publish therefore finds the message settled and only publishes what is left: it
never lists Zuora again, and never starts a second retry chain. Rows the worker could not publish
are also picked up by the API's outbox relay.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from event_bus.broker import json_headers
from event_bus.outbox import PublishFn, enqueue
from pydantic import BaseModel
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sync_messages import topics
from workflow_store.models import OutboxMessage, ProcessedMessage, RunStatus, SyncRun

_CLAIMER = "sync-worker"
_CLAIM_TTL = timedelta(seconds=120)  # longer than a few publishes of 10 s at most each
_OUTBOX = OutboxMessage.metadata.tables[OutboxMessage.__tablename__]
_PROCESSED = ProcessedMessage.metadata.tables[ProcessedMessage.__tablename__]

# What settling a sync publishes (only the worker writes these topics through the outbox).
SETTLED_TOPICS = (topics.SYNC_RETRY, topics.SYNC_DLQ, topics.SYNC_EVENTS)


@dataclass(frozen=True)
class Publication:
    topic: str
    message: BaseModel


def _outbox_row(publication: Publication, key: str | None, now: datetime) -> dict[str, object]:
    """The outbox row of ``publication``, as ``event_bus.outbox.enqueue`` builds it."""
    message = publication.message
    message_id = getattr(message, "id", None)
    if message_id is None:
        raise ValueError(f"{type(message).__name__} has no id: it cannot go through the outbox")
    return {
        "id": message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id)),
        "topic": publication.topic,
        "key": key,
        "payload": message.model_dump(mode="json"),
        "headers": None,
        "attempts": 0,
        "created_at": now,
    }


class ProcessedLedger:
    """Remembers which message ids a consumer settled, so redelivered duplicates are no-ops."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], publish: PublishFn) -> None:
        self._sessions = sessions
        self._publish = publish

    async def seen(self, consumer: str, message_id: str) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(ProcessedMessage.message_id).where(
                    ProcessedMessage.consumer == consumer,
                    ProcessedMessage.message_id == message_id,
                )
            )
        return found is not None

    async def mark(self, consumer: str, message_id: str) -> None:
        await self.settle(consumer, message_id, key=None, publications=())

    async def settle(
        self,
        consumer: str,
        message_id: str,
        *,
        key: str | None,
        publications: Sequence[Publication],
        retry_scheduled_run: uuid.UUID | None = None,
    ) -> None:
        """Record the message as settled with what it publishes, in one transaction."""
        try:
            async with self._sessions() as session, session.begin():
                if session.get_bind().dialect.name == "postgresql":
                    # Core statements, no ORM objects and unit of work per settled message:
                    # what event_bus.outbox.enqueue writes (the seq from the outbox sequence,
                    # in the order given).
                    now = datetime.now(UTC)
                    await session.execute(
                        insert(_PROCESSED).values(
                            consumer=consumer, message_id=message_id, processed_at=now
                        )
                    )
                    if publications:
                        await session.execute(
                            insert(_OUTBOX), [_outbox_row(p, key, now) for p in publications]
                        )
                else:  # SQLite: enqueue's max(seq) + 1 needs one INSERT per row
                    session.add(ProcessedMessage(consumer=consumer, message_id=message_id))
                    for publication in publications:
                        enqueue(
                            session, topic=publication.topic, message=publication.message, key=key
                        )
                if retry_scheduled_run is not None:
                    # An attempt that will be retried is not a failure an operator must act on.
                    await session.execute(
                        update(SyncRun)
                        .where(SyncRun.id == retry_scheduled_run)
                        .values(status=RunStatus.RETRY_SCHEDULED.value)
                    )
        except IntegrityError:
            pass  # a duplicate delivery settled it first: already recorded

    async def flush(self, key: str) -> int:
        """Publish, in order, what settled messages of ``key`` left unpublished; mark it sent.

        As the outbox relay does (event_bus.outbox): claim the rows in a short transaction, publish
        outside any transaction, then mark them sent, so the API's relay never publishes a claimed
        row at the same time. A failed publish raises, after the rows published before it were
        marked sent and the rest released.
        """
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            pending = select(OutboxMessage.id).where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.dead_at.is_(None),
                OutboxMessage.key == key,
                OutboxMessage.topic.in_(SETTLED_TOPICS),
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            )
            if session.get_bind().dialect.name == "postgresql":
                # One statement: lock the unclaimed rows (skipping any the relay holds), claim
                # them and read them back; publication order is the outbox's seq.
                claim = (
                    update(_OUTBOX)
                    .where(_OUTBOX.c.id.in_(pending.with_for_update(skip_locked=True)))
                    .values(claimed_by=_CLAIMER, claimed_until=now + _CLAIM_TTL)
                    .returning(_OUTBOX.c.id, _OUTBOX.c.topic, _OUTBOX.c.payload, _OUTBOX.c.seq)
                )
                rows = sorted((await session.execute(claim)).all(), key=lambda row: row.seq)
                claimed = [(row.id, row.topic, row.payload) for row in rows]
            else:
                stmt = select(OutboxMessage).where(OutboxMessage.id.in_(pending))
                found = await session.scalars(stmt.order_by(OutboxMessage.seq))
                claimed = [(row.id, row.topic, row.payload) for row in found]
                if claimed:
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_([row_id for row_id, _, _ in claimed]))
                        .values(claimed_by=_CLAIMER, claimed_until=now + _CLAIM_TTL)
                    )
        sent: list[uuid.UUID] = []
        failure: Exception | None = None
        for row_id, topic, payload in claimed:
            value = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            try:
                await self._publish(topic, key.encode(), value.encode(), json_headers())
            except Exception as exc:  # mark what was sent, release the rest, then report it
                failure = exc
                break
            sent.append(row_id)
        if claimed:
            async with self._sessions() as session, session.begin():
                if sent:
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(sent))
                        .values(sent_at=datetime.now(UTC), claimed_until=None)
                    )
                unsent = [row_id for row_id, _, _ in claimed if row_id not in sent]
                if unsent:
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(unsent))
                        .values(claimed_by=None, claimed_until=None)
                    )
        if failure is not None:
            raise failure
        return len(sent)
