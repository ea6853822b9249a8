"""Baseline: the seed's design done naively, against the same sandbox and PostgreSQL.

One customer at a time; for each: a fresh token request, pages fetched one after another, and
for every workflow one ORM SELECT followed by an INSERT or UPDATE (flushed one by one), then a
commit per customer. This is what "the obvious way" costs.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sync_engine.hashing import content_hash
from sync_engine.rows import UPDATABLE_COLUMNS, workflow_row
from workflow_store.db import create_engine
from workflow_store.models import Customer, StoredWorkflow
from zuora_client import Workflow


async def naive_sync_customer(
    http: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    customer_id: uuid.UUID,
    client_id: str,
    client_secret: str,
    page_length: int = 50,
) -> dict[str, int]:
    stats = {"pages": 0, "tokens": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    token_resp = await http.post(
        "/oauth/token",
        data={
            "client_id": client_id,
            "client_secret": client_secret,
            "grant_type": "client_credentials",
        },
    )
    token_resp.raise_for_status()
    stats["tokens"] += 1
    headers = {"Authorization": f"Bearer {token_resp.json()['access_token']}"}
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        r = await http.get(
            "/workflows", params={"page": page, "page_length": page_length}, headers=headers
        )
        r.raise_for_status()
        stats["pages"] += 1
        body = r.json()
        items.extend(body.get("data") or [])
        if not body.get("data") or not (body.get("pagination") or {}).get("next_page"):
            break
        page += 1
    now = datetime.now(UTC)
    async with sessions() as session:
        for item in items:
            wf = Workflow.from_api(item)
            digest = content_hash(item)
            row = await session.scalar(
                select(StoredWorkflow).where(
                    StoredWorkflow.customer_id == customer_id, StoredWorkflow.zuora_id == wf.id
                )
            )
            # The same column mapping as the engine; only the way of writing differs.
            values = workflow_row(customer_id, wf, digest, now)
            if row is None:
                session.add(StoredWorkflow(**values))
                stats["inserted"] += 1
            elif row.content_hash != digest:
                for key in UPDATABLE_COLUMNS:
                    setattr(row, key, values[key])
                stats["updated"] += 1
            else:
                stats["unchanged"] += 1
            await session.flush()  # one statement per workflow, as the seed did
        customer = await session.get(Customer, customer_id)
        if customer is not None:
            customer.last_sync_at = now
            customer.last_sync_status = "succeeded"
            customer.last_successful_sync_at = now
        await session.commit()
    return stats


async def run_baseline(
    database_url: str, sandbox_url: str, customers: list[tuple[uuid.UUID, str, str]]
) -> dict[str, Any]:
    """Sync `customers` [(id, client_id, client_secret)] one by one; returns timing and counts."""
    engine = create_engine(database_url, pool_size=2, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    totals = {"pages": 0, "tokens": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as http:
            for customer_id, client_id, secret in customers:
                stats = await naive_sync_customer(http, sessions, customer_id, client_id, secret)
                for key, value in stats.items():
                    totals[key] += value
    finally:
        await engine.dispose()
    elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 3), "customers": len(customers), **totals}
