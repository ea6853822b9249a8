"""Floor: what the hardware allows - every sandbox page fetched by a bare concurrent httpx loop,
then every row written by ONE bulk COPY. No validation, no reconciliation, no bookkeeping.

Its own CPU (the process running it: the fetch loop and the COPY's client side) is measured with
``getrusage`` and reported per customer and per 1,000 workflows, beside the workers' (issue 13).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import resource
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from workflow_store.models import StoredWorkflow

# Every column but the generated id, from the table: a row without a value for one is a KeyError
# (a copy of the list here once lost `priority`).
COLUMNS = tuple(c.name for c in StoredWorkflow.__table__.columns if c.name != "id")


async def fetch_all(
    sandbox_url: str,
    tenants: list[tuple[uuid.UUID, str, str]],
    *,
    concurrency: int = 64,
    page_length: int = 50,
) -> tuple[list[tuple[uuid.UUID, bytes]], dict[str, int]]:
    """Pages of every tenant (token, then page chain), `concurrency` tenants at a time.

    One httpx client of ONE connection per tenant in flight (taken from a pool of
    `concurrency`): a single client with 64 connections spends most of its CPU scanning its pool
    (httpcore's `_assign_requests_to_connections` is O(connections x requests): 20-40 CPU-ms per
    request measured at 64), which is not what a floor should cost. The clients share one SSL
    context, as the worker's do (zuora_client)."""
    pages: list[tuple[uuid.UUID, bytes]] = []
    counts = {"pages": 0, "tokens": 0, "max_in_flight": 0}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    ssl_context = httpx.create_ssl_context()  # one for all (~50 CPU-ms each), as the worker does
    pool: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    clients = [
        httpx.AsyncClient(base_url=sandbox_url, timeout=60, limits=limits, verify=ssl_context)
        for _ in range(max(1, min(concurrency, len(tenants))))
    ]
    for c in clients:
        pool.put_nowait(c)
    try:
        await _fetch(pool, tenants, pages, counts, page_length)
    finally:
        for c in clients:
            await c.aclose()
    return pages, counts


async def _fetch(
    pool: asyncio.Queue[httpx.AsyncClient],
    tenants: list[tuple[uuid.UUID, str, str]],
    pages: list[tuple[uuid.UUID, bytes]],
    counts: dict[str, int],
    page_length: int,
) -> None:
    in_flight = 0

    async def send(http: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
        # A pooled keep-alive connection can be closed (or reset) by the server just as it is
        # reused; even a bare loop must resend then (bounded: 3 tries).
        for attempt in range(3):
            try:
                return await http.request(method, url, **kw)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def one(customer_id: uuid.UUID, client_id: str, secret: str) -> None:
        nonlocal in_flight
        http = await pool.get()
        in_flight += 1
        counts["max_in_flight"] = max(counts["max_in_flight"], in_flight)
        try:
            await chain(http, customer_id, client_id, secret)
        finally:
            in_flight -= 1
            pool.put_nowait(http)

    async def chain(
        http: httpx.AsyncClient, customer_id: uuid.UUID, client_id: str, secret: str
    ) -> None:
        r = await send(
            http,
            "POST",
            "/oauth/token",
            data={
                "client_id": client_id,
                "client_secret": secret,
                "grant_type": "client_credentials",
            },
        )
        r.raise_for_status()
        counts["tokens"] += 1
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        page = 1
        while True:
            r = await send(
                http,
                "GET",
                "/workflows",
                params={"page": page, "page_length": page_length},
                headers=headers,
            )
            r.raise_for_status()
            counts["pages"] += 1
            pages.append((customer_id, r.content))
            if b'"next_page"' not in r.content:
                break
            page += 1

    await asyncio.gather(*(one(*t) for t in tenants))


def copy_rows(dsn: str, pages: list[tuple[uuid.UUID, bytes]]) -> int:
    now = datetime.now(UTC)
    n = 0
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY workflows ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for customer_id, content in pages:
                for item in json.loads(content)["data"]:
                    raw = json.dumps(item, separators=(",", ":"))
                    v: dict[str, Any] = item.get("active_version") or {}
                    row = {
                        "customer_id": customer_id,
                        "zuora_id": item["id"],
                        "name": item["name"],
                        "description": item.get("description"),
                        "status": item.get("status"),
                        "active_version_id": v.get("id"),
                        "active_version": None
                        if v.get("version") is None
                        else str(v.get("version")),
                        "active_version_status": v.get("status"),
                        "active_version_type": v.get("type"),
                        "callout_trigger": item.get("calloutTrigger"),
                        "ondemand_trigger": item.get("ondemandTrigger"),
                        "scheduled_trigger": item.get("scheduledTrigger"),
                        "interval": item.get("interval") or None,
                        "timezone": item.get("timezone"),
                        "priority": item.get("priority"),
                        "zuora_created_at": item.get("createdAt"),
                        "zuora_updated_at": item.get("updatedAt"),
                        "raw": raw,
                        "content_hash": hashlib.sha256(raw.encode()).hexdigest(),
                        "first_seen_at": now,
                        "last_changed_at": now,
                    }
                    copy.write_row(tuple(row[name] for name in COLUMNS))
                    n += 1
        conn.commit()
    return n


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process, every thread."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


async def run_floor(
    dsn: str, sandbox_url: str, tenants: list[tuple[uuid.UUID, str, str]], concurrency: int = 64
) -> dict[str, Any]:
    c0, t0 = _cpu_s(), time.perf_counter()
    pages, counts = await fetch_all(sandbox_url, tenants, concurrency=concurrency)
    c1, t1 = _cpu_s(), time.perf_counter()
    rows = await asyncio.to_thread(copy_rows, dsn, pages)
    c2, t2 = _cpu_s(), time.perf_counter()
    cpu_ms = (c2 - c0) * 1000
    return {
        "seconds": round(t2 - t0, 3),
        "fetch_seconds": round(t1 - t0, 3),
        "copy_seconds": round(t2 - t1, 3),
        "rows": rows,
        "customers": len(tenants),
        "concurrency": concurrency,
        "client_cpu_s": round(cpu_ms / 1000, 2),
        "client_fetch_cpu_s": round(c1 - c0, 2),
        "client_copy_cpu_s": round(c2 - c1, 2),
        "client_cpu_ms_per_customer": round(cpu_ms / len(tenants), 2) if tenants else None,
        "client_cpu_ms_per_1000_workflows": round(cpu_ms * 1000 / rows, 1) if rows else None,
        **counts,
    }
