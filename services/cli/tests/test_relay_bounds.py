"""The CLI's outbox drain keeps the relay's contract: a claim outlives the round that made it.

``OutboxRelay`` says ``claim_ttl`` must exceed the time one batch takes to publish, or another
relay (the API's) claims and publishes the same rows again while this one is still on them. A
round publishes its batch one row at a time, each bounded by the publish timeout, so the worst
round is ``batch_size * publish_timeout``. A unit test through the module's seams: no Kafka.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from event_bus.outbox import RoundResult
from zuora_sync_cli import relay


class _Publisher:
    def __init__(self, *args: Any, publish_timeout: float, **kwargs: Any) -> None:
        self.publish_timeout = publish_timeout

    async def close(self) -> None:
        return None


async def test_the_drain_claims_no_more_rows_than_its_claim_lets_it_publish(
    monkeypatch: Any,
) -> None:
    made: dict[str, Any] = {}

    class _Relay:
        def __init__(self, sessions: Any, publisher: _Publisher, **kwargs: Any) -> None:
            made.update(kwargs, publisher=publisher)
            self.last_round = RoundResult()

        async def run_once(self) -> int:
            self.last_round = RoundResult(claimed=1, sent=1)
            return 1

    unsent = iter([1, 0])

    async def _unsent(ctx: Any, ids: Any) -> int:
        return next(unsent)

    async def _topics(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(relay, "_unsent", _unsent)
    monkeypatch.setattr(relay, "ensure_topics", _topics)
    monkeypatch.setattr(relay, "KafkaPublisher", _Publisher)
    monkeypatch.setattr(relay, "OutboxRelay", _Relay)
    ctx = SimpleNamespace(
        settings=SimpleNamespace(kafka=SimpleNamespace(bootstrap_servers="127.0.0.1:9")),
        sessions=None,
    )

    assert await relay.deliver(ctx, [uuid.uuid4()]) is None  # type: ignore[arg-type]

    batch = made.get("batch_size", 100)  # OutboxRelay's default when none is given
    worst_round = batch * made["publisher"].publish_timeout
    assert made["claim_ttl"] > worst_round
