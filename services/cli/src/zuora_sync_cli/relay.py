"""Delivering what a command queued in the outbox, so the CLI works with no API running.

The CLI writes its events and sync commands to the outbox like the API (one delivery
semantics); the API process relays the outbox continuously. After its commit, a CLI command
also runs a bounded drain with the same relay code (:class:`event_bus.outbox.OutboxRelay`,
whose claims keep two relays from sending one row at once): it returns as soon as its own rows
are sent, by itself or by a running API. If Kafka cannot be reached within the bound, the rows
stay queued and the command says so; the API's relay sends them when it runs.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence

from event_bus.broker import KafkaPublisher
from event_bus.outbox import OutboxRelay, unsent_count
from event_bus.topics import ensure_topics

from zuora_sync_cli.context import CliContext

__all__ = ["DRAIN_SECONDS", "deliver", "deliver_and_report"]

DRAIN_SECONDS = 5.0
"""How long a command tries to hand its messages to Kafka before leaving them to the API."""

_PUBLISH_TIMEOUT = 3.0
# A round publishes its batch one row at a time, each up to _PUBLISH_TIMEOUT: a small batch keeps
# a round (and so the drain) near DRAIN_SECONDS when Kafka stalls, and lets the claim outlive it.
_BATCH = 10
_CLAIM_TTL = _PUBLISH_TIMEOUT * (_BATCH + 1)
_MAX_ROUNDS = 500
_PAUSE = 0.1


async def _unsent(ctx: CliContext, ids: Sequence[uuid.UUID]) -> int:
    async with ctx.sessions() as session:
        return await unsent_count(session, ids)


async def deliver(ctx: CliContext, ids: Sequence[uuid.UUID]) -> str | None:
    """Relay until the rows ``ids`` are sent (by us or another relay) or the bound is spent;
    returns None when they are all sent, else why not (for one line on stderr)."""
    if not ids or not await _unsent(ctx, ids):
        return None
    settings = ctx.settings.kafka
    try:
        # Topics a first publish auto-creates get the broker's default partitions: ensure ours,
        # once, as the API's relay does (this also finds a broker that is down, fast).
        await ensure_topics(settings, wait_seconds=0, request_timeout_ms=2000)
    except Exception as exc:
        return f"Kafka at {settings.bootstrap_servers} not reachable ({type(exc).__name__})"
    publisher = KafkaPublisher(settings, component="cli", publish_timeout=_PUBLISH_TIMEOUT)
    # A claim longer than the slowest round (else the API's relay publishes rows this one is
    # still on), yet short: rows of a killed command go back to the API's relay within seconds,
    # not after the default two minutes (rows that fail are released at once anyway).
    relay = OutboxRelay(
        ctx.sessions,
        publisher,
        batch_size=_BATCH,
        claim_ttl=_CLAIM_TTL,
        relay_id=f"cli-{uuid.uuid4().hex[:12]}",
    )
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        for _ in range(_MAX_ROUNDS):
            try:
                await relay.run_once()
            except Exception as exc:  # the database: the rows stay queued for the API
                return f"relay round failed ({type(exc).__name__})"
            failure = relay.last_round.failure
            if not await _unsent(ctx, ids):
                return None
            if failure is not None and relay.last_round.sent == 0:
                return f"Kafka refused the messages ({type(failure).__name__})"
            if time.monotonic() >= deadline:
                break
            if relay.last_round.claimed == 0:
                # Another relay (the API's) holds the rows: give it a moment.
                await asyncio.sleep(_PAUSE)
        return f"not sent within {DRAIN_SECONDS:.0f}s"
    finally:
        await publisher.close()


async def deliver_and_report(ctx: CliContext, ids: Sequence[uuid.UUID]) -> None:
    """:func:`deliver`, and one line on stderr if something is left queued."""
    problem = await deliver(ctx, ids)
    if problem is not None:
        sys.stderr.write(
            f"zuora-sync: note: {len(ids)} message(s) queued in the outbox, not yet on Kafka: "
            f"{problem}; the customer API's outbox relay sends them when it runs\n"
        )
