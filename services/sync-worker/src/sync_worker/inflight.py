"""Several messages of one partition at once: the "parallel consumer" of the sync-command topic.

FastStream hands a subscriber one message at a time per consumer; with :class:`InFlight` the
handler only *admits* the message and returns, so the consumer fetches the next one while the
syncs run. The guarantees of :mod:`sync_worker.delivery` hold, with three rules added:

- **Bounded.** At most ``max_in_flight`` admitted messages per process (fewer while the event
  loop is CPU-starved: :mod:`sync_worker.adaptive`) (running, or waiting for
  the previous message of their key); when the budget is full the handler waits for a slot, so
  nothing more is fetched: there is no queue beyond the budget.
- **Per-key order.** A message starts only after the previous admitted message of the same key
  (customer id) finished, whatever its partition's other keys do.
- **Contiguous commits.** The offset committed for a partition is the end of its *contiguous*
  finished prefix: a finished message behind an unfinished one is committed only once every
  message before it finished. A crash redoes at most what was admitted and not yet committed
  (at-least-once; the processed-message ledger drops what had been settled).

Failures are retried *in place* (the message keeps its key and its slot, the handler is called
again after ``redelivery_delay_seconds``) instead of seeking back, which would re-deliver the
partition's later, already admitted messages: an outage (database, Kafka) is waited out for as
long as it lasts, a message failing for a reason of its own is tried ``max_deliveries`` times and
then dead-lettered; a message that cannot be parsed is dead-lettered at once.

**Rebalances.** The offsets of a partition are tracked in a :class:`Lease`, one per assignment of
the partition to a consumer of this process. When the partition is revoked
(:meth:`InFlight.on_partitions_revoked`, the consumers' rebalance listener) its lease commits the
finished prefix one last time and is closed: its messages not started yet are dropped, its retries
stop after the current attempt, and it never commits again. The next owner reads from the
committed offset and redoes the rest. A message of a partition the consumer fetches again from the
committed offset (a re-assignment) opens a new lease; one that arrives after a revocation the
consumer did not see (it kept the partition) seeks the partition back to the lease's lowest
unfinished offset, so that no offset is committed past a dropped message.

**Shutdown.** :meth:`InFlight.drain` (after fetching stopped): messages not started yet are
dropped (not committed: the next owner reads them), running ones are waited for within the grace
period, then the finished prefixes are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from sync_engine.failures import describe_failure

from sync_worker.adaptive import AdaptiveLimit
from sync_worker.delivery import Deliveries, NotDueYet, is_infrastructure_error, validation_summary

__all__ = ["InFlight", "Lease", "ZuoraHostBudget"]

logger = logging.getLogger("sync_worker")

T = TypeVar("T")

_REVOKE_COMMIT_SECONDS = 5.0  # the last commit of a revoked partition must not stall the rebalance


@dataclass(eq=False)
class Lease:
    """The admitted offsets of one partition during one assignment to one consumer."""

    consumer: Any
    tp: TopicPartition
    last: int = -1  # highest offset admitted
    committed: int | None = None  # last offset committed by this lease (next offset to read)
    closed: bool = False
    _order: deque[int] = field(default_factory=deque)
    _finished: set[int] = field(default_factory=set)
    _committable: int | None = None
    _commit_task: asyncio.Task[None] | None = None

    def admit(self, offset: int) -> None:
        self._order.append(offset)
        self.last = offset

    def finish(self, offset: int) -> bool:
        """Record ``offset`` as finished; True if the contiguous finished prefix grew."""
        self._finished.add(offset)
        grew = False
        while self._order and self._order[0] in self._finished:
            done = self._order.popleft()
            self._finished.discard(done)
            self._committable = done + 1
            grew = True
        return grew

    @property
    def committable(self) -> int | None:
        """The offset to commit (one past the contiguous finished prefix), if any."""
        return self._committable

    @property
    def lowest_unfinished(self) -> int | None:
        return self._order[0] if self._order else None

    @property
    def pending(self) -> int:
        return len(self._order)


class InFlight(ConsumerRebalanceListener):  # type: ignore[misc]
    """Admits messages of the sync-command topic and runs them concurrently (module docstring);
    also the rebalance listener of that topic's consumers."""

    def __init__(
        self,
        *,
        deliveries: Deliveries,
        max_in_flight: int,
        max_deliveries: int,
        redelivery_delay_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        before_start: Callable[[], Awaitable[None]] | None = None,
        target_lag_seconds: float = 0.0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._deliveries = deliveries
        self.max_in_flight = max_in_flight
        self._max_deliveries = max_deliveries
        self._delay = redelivery_delay_seconds
        self._sleep = sleep
        self._before_start = before_start or _no_wait
        # At most max_in_flight; fewer while the event loop lags (sync_worker.adaptive).
        self.slots = AdaptiveLimit(max_in_flight, target_lag_seconds=target_lag_seconds)
        self._leases: dict[TopicPartition, Lease] = {}
        self._tails: dict[tuple[str, bytes | None], asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.running = 0  # handler calls in progress (a gauge for tests and logs)
        self.peak_running = 0

    @property
    def admitted(self) -> int:
        """Messages admitted and not finished (running or waiting for their key)."""
        return len(self._tasks)

    # -- admission (the subscriber's handler) --------------------------------------------------

    async def submit(
        self,
        msg: Any,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        """Admit ``msg`` once a slot is free (backpressure), then return; it runs in a task."""
        if self._deliveries.stopping:  # fetched while the drain began: the next owner reads it
            return
        await self.slots.acquire()
        try:
            record: Any = msg.raw_message
            if self._deliveries.stopping:
                raise _NotAdmitted
            tp = TopicPartition(record.topic, record.partition)
            lease = self._lease_for(msg.consumer, tp, record.offset)
            lease.admit(record.offset)
            key = (record.topic, record.key)
            previous = self._tails.get(key)
            done = asyncio.Event()
            self._tails[key] = done
        except _NotAdmitted:
            self.slots.release()
            return
        except BaseException:
            self.slots.release()
            raise
        self._deliveries.begin()  # counted by the shutdown drain
        task = asyncio.create_task(
            self._run(msg, record, lease, key, previous, done, parse, handle),
            name=f"sync {tp.topic}[{tp.partition}]@{record.offset}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lease_for(self, consumer: Any, tp: TopicPartition, offset: int) -> Lease:
        lease = self._leases.get(tp)
        if lease is not None and lease.consumer is consumer and offset > lease.last:
            if not lease.closed:
                return lease  # the next message of the same assignment
            lowest = lease.lowest_unfinished
            if lowest is not None:
                # Revoked, yet the consumer kept the partition and went on: read again from
                # the lowest message the closed lease dropped, never past it.
                with contextlib.suppress(Exception):
                    consumer.seek(tp, lowest)
                logger.warning(
                    "Partition kept after its revocation; reading again from its lowest "
                    "unfinished offset",
                    extra={"topic": tp.topic, "partition": tp.partition, "offset": lowest},
                )
                raise _NotAdmitted
        if lease is not None:
            lease.closed = True  # another assignment: the old one never commits again
        lease = Lease(consumer, tp)
        self._leases[tp] = lease
        return lease

    # -- one message -----------------------------------------------------------------------------

    async def _run(
        self,
        msg: Any,
        record: Any,
        lease: Lease,
        key: tuple[str, bytes | None],
        previous: asyncio.Event | None,
        done: asyncio.Event,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        try:
            if previous is not None:
                await previous.wait()  # per-key order
            if lease.closed or self._deliveries.stopping:
                return  # not started: the next owner (or the next assignment) reads it
            await self._before_start()  # the fast lane (sync_worker.lanes)
            if lease.closed or self._deliveries.stopping:
                return
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
            try:
                finished = await self._deliver(msg, record, lease, parse, handle)
            finally:
                self.running -= 1
            if finished and lease.finish(record.offset):
                self._commit_soon(lease)
        except Exception:  # a bug of ours: keep the offset uncommitted, say so
            logger.exception("Parallel delivery failed", extra=_where(record))
        finally:
            done.set()
            if self._tails.get(key) is done:
                del self._tails[key]
            self.slots.release()
            self._deliveries.end()

    async def _deliver(
        self,
        msg: Any,
        record: Any,
        lease: Lease,
        parse: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> bool:
        """Handle the message until a terminal outcome (True), or until its lease closed or the
        process stops (False: not finished, not committed)."""
        where = _where(record)
        try:
            payload = parse(msg.body)
        except ValidationError as exc:
            return await self._dead_letter(record, lease, 1, validation_summary(exc))
        deliveries = 0
        while True:
            try:
                await handle(payload)
                return True
            except NotDueYet as wait:  # not raised by command handlers; honoured in place
                await self._sleep(max(wait.seconds, 0.0))
            except Exception as exc:
                if is_infrastructure_error(exc):
                    logger.warning(
                        "Message processing failed (infrastructure); it will be retried",
                        extra={**where, "error": describe_failure(exc)},
                        exc_info=True,
                    )
                else:
                    deliveries += 1
                    if deliveries >= self._max_deliveries:
                        return await self._dead_letter(
                            record, lease, deliveries, describe_failure(exc)
                        )
                    logger.exception(
                        "Message processing failed; it will be retried",
                        extra={**where, "deliveries": deliveries},
                    )
                await self._sleep(self._delay)
            if lease.closed or self._deliveries.stopping:
                return False

    async def _dead_letter(self, record: Any, lease: Lease, deliveries: int, error: str) -> bool:
        while not await self._deliveries.dead_letter_record(
            record, deliveries=deliveries, error=error
        ):
            await self._sleep(self._delay)  # Kafka is away: the message keeps its slot
            if lease.closed or self._deliveries.stopping:
                return False
        return True

    # -- commits ---------------------------------------------------------------------------------

    def _commit_soon(self, lease: Lease) -> None:
        """One commit at a time per lease; a commit in progress picks up what finished meanwhile."""
        if lease._commit_task is None or lease._commit_task.done():
            lease._commit_task = asyncio.create_task(self._commit(lease))

    async def _commit(self, lease: Lease) -> None:
        while not lease.closed:
            target = lease.committable
            if target is None or target == lease.committed:
                return
            if not await self._commit_offset(lease, target):
                return

    async def _commit_offset(self, lease: Lease, offset: int) -> bool:
        try:
            await lease.consumer.commit({lease.tp: OffsetAndMetadata(offset, "")})
        except Exception as exc:  # revoked meanwhile, or Kafka away: the next owner redoes it
            logger.warning(
                "Offset commit failed; the uncommitted messages will be read again",
                extra={
                    "topic": lease.tp.topic,
                    "partition": lease.tp.partition,
                    "offset": offset,
                    "error": describe_failure(exc),
                },
            )
            return False
        lease.committed = offset
        return True

    async def _commit_now(self, lease: Lease) -> None:
        """Wait for a commit in progress, then commit what is left (drain, revocation)."""
        if lease.closed:
            return
        if lease._commit_task is not None:
            with contextlib.suppress(Exception):
                await lease._commit_task
        target = lease.committable
        if target is not None and target != lease.committed:
            await self._commit_offset(lease, target)

    # -- rebalance listener ------------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Commit each revoked partition's finished prefix, then close its lease."""
        leases = [lease for tp in revoked if (lease := self._leases.get(tp)) and not lease.closed]
        if not leases:
            return
        commits = [asyncio.create_task(self._commit_now(lease)) for lease in leases]
        await asyncio.wait(commits, timeout=_REVOKE_COMMIT_SECONDS)
        for lease in leases:
            lease.closed = True
        logger.info(
            "Partitions revoked; their unfinished messages are left to the next owner",
            extra={
                "partitions": sorted(f"{lease.tp.topic}[{lease.tp.partition}]" for lease in leases),
                "unfinished": sum(lease.pending for lease in leases),
            },
        )

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do: a lease opens with the first message of the assignment."""

    # -- shutdown --------------------------------------------------------------------------------

    async def drain(self, grace_seconds: float) -> bool:
        """Wait for the admitted messages (those not started yet end at once), then commit what
        finished. Call after :meth:`Deliveries.drain` stopped fetching."""
        started = time.monotonic()
        tasks = set(self._tasks)
        finished = True
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=max(grace_seconds, 0.0))
            finished = not still
        await self.slots.aclose()
        leases = list(self._leases.values())
        remaining = max(grace_seconds - (time.monotonic() - started), 1.0)
        if leases:
            await asyncio.wait(
                [asyncio.create_task(self._commit_now(lease)) for lease in leases],
                timeout=remaining,
            )
        return finished


class _NotAdmitted(Exception):
    pass


def _where(record: Any) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


class ZuoraHostBudget:
    """At most ``per_host`` syncs of this process against one Zuora host at once.

    The host is the network location of the customer's base URL, read from the database once and
    remembered for ``ttl_seconds`` (a changed base URL counts against its new host after that);
    a sync waits here for its host's slot before it starts.
    """

    def __init__(
        self,
        per_host: int,
        base_url_of: Callable[[Any], Awaitable[str | None]],
        *,
        ttl_seconds: float = 3600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_host = per_host
        self._base_url_of = base_url_of
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._hosts: dict[Any, tuple[str | None, float]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def host_of(self, customer_id: Any) -> str | None:
        now = self._clock()
        cached = self._hosts.get(customer_id)
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        base_url = await self._base_url_of(customer_id)
        host = urlsplit(base_url).netloc.lower() or base_url.lower() if base_url else None
        if len(self._hosts) >= self._max_entries:
            self._hosts.clear()  # crude, bounded; refilled by one query per customer
        self._hosts[customer_id] = (host, now)
        return host

    def wrap(self, sync: Callable[[Any], Awaitable[T]]) -> Callable[[Any], Coroutine[Any, Any, T]]:
        """``sync(request)`` (a ``SyncRequest``) under its customer's host budget."""

        async def limited(request: Any) -> T:
            host = await self.host_of(request.customer_id)
            if host is None:  # no such customer: the engine says so, nothing to limit
                return await sync(request)
            slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
            async with slots:
                return await sync(request)

        return limited


async def _no_wait() -> None:
    return None
