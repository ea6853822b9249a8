"""Old delivery records and sync runs are pruned by index; recent ones, pending outbox rows,
failures (for longer) and each customer's latest run are kept."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from workflow_store.models import Customer, OutboxMessage, ProcessedMessage, SyncRun
from workflow_store.retention import prune_delivery_records

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def outbox(sent_at: datetime | None, created_at: datetime) -> OutboxMessage:
    return OutboxMessage(
        id=uuid.uuid4(), topic="t", key=None, payload={}, created_at=created_at, sent_at=sent_at
    )


async def test_prunes_only_old_processed_and_sent_rows(session: AsyncSession) -> None:
    old, recent = NOW - timedelta(days=10), NOW - timedelta(hours=1)
    session.add_all(
        [
            ProcessedMessage(consumer="c", message_id="old", processed_at=old),
            ProcessedMessage(consumer="c", message_id="recent", processed_at=recent),
            outbox(sent_at=old, created_at=old),  # sent long ago: pruned
            outbox(sent_at=recent, created_at=old),  # sent recently: kept
            outbox(sent_at=None, created_at=old),  # still pending: never pruned
        ]
    )
    await session.commit()

    result = await prune_delivery_records(session, older_than=NOW - timedelta(days=7))
    await session.commit()

    assert (result.processed_messages, result.sent_outbox_messages) == (1, 1)
    ids = set(await session.scalars(select(ProcessedMessage.message_id)))
    assert ids == {"recent"}
    assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 2
    pending = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
    )
    assert pending == 1


def run(customer: Customer, status: str, started_at: datetime) -> SyncRun:
    return SyncRun(
        id=uuid.uuid4(),
        customer_id=customer.id,
        reason="hourly",
        status=status,
        started_at=started_at,
    )


async def _customer(session: AsyncSession, name: str) -> Customer:
    customer = Customer(
        id=uuid.uuid4(),
        name=name,
        base_url="https://rest.zuora.com",
        client_id="c",
        client_secret_encrypted="x",
    )
    session.add(customer)
    await session.flush()
    return customer


async def test_prunes_old_sync_runs_keeping_failures_longer_and_each_latest(
    session: AsyncSession,
) -> None:
    # Audit A9: nothing ever deleted sync_runs.
    busy, quiet = await _customer(session, "busy"), await _customer(session, "quiet")
    days = [NOW - timedelta(days=d) for d in (60, 40, 20, 1)]
    kept = {
        "recent": run(busy, "succeeded", days[3]),
        "failed-40d": run(busy, "failed", days[1]),
        "blocked-20d": run(busy, "deletes_blocked", days[2]),
        "running-60d": run(busy, "running", days[0]),
        "quiet-latest": run(quiet, "succeeded", days[0]),  # old, but quiet's only run
    }
    pruned = {
        "old-ok": run(busy, "succeeded", days[1]),
        "old-skip": run(busy, "skipped", days[0]),
        "old-failed": run(busy, "failed", days[0]),
    }
    session.add_all([*kept.values(), *pruned.values()])
    await session.commit()

    result = await prune_delivery_records(
        session,
        older_than=NOW - timedelta(days=7),
        runs_older_than=NOW - timedelta(days=30),
        failed_runs_older_than=NOW - timedelta(days=50),
    )
    await session.commit()

    assert result.sync_runs == len(pruned) and not result.skipped
    left = set(await session.scalars(select(SyncRun.id)))
    assert left == {r.id for r in kept.values()}


async def test_prune_statements_use_indexes(postgres_url: str) -> None:
    # Audit A9: the pruner seq-scanned the ledger and the outbox on every replica, every hour.
    from sqlalchemy import event
    from workflow_store.db import create_engine, create_session_factory
    from workflow_store.migrate import upgrade_async

    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    deletes: list[tuple[str, Any]] = []

    def capture(conn: object, cursor: object, statement: str, params: Any, *a: object) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            await prune_delivery_records(
                session, older_than=NOW, runs_older_than=NOW, failed_runs_older_than=NOW
            )
    finally:
        await engine.dispose()
    assert len(deletes) == 4
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        conn.execute("SET enable_seqscan = off")  # a seq scan now means: no usable index
        for statement, params in deletes:
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + statement, params))
            assert "Seq Scan" not in plan, plan
            # ... and the age cut-off is an index condition, not a filter over a full index
            assert re.search(r"Index Cond: .*\((processed_at|sent_at|started_at) < ", plan), plan


async def test_a_second_pruner_skips_while_one_prunes(postgres_url: str) -> None:
    from workflow_store.db import create_engine, create_session_factory
    from workflow_store.migrate import upgrade_async

    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as first, first.begin(), sessions() as second, second.begin():
            assert not (await prune_delivery_records(first, older_than=NOW)).skipped
            assert (await prune_delivery_records(second, older_than=NOW)).skipped
    finally:
        await engine.dispose()
