# ruff: noqa: T201 - a benchmark prints its figures
"""Server time of the UI's dashboard and workflows list at 1,000 customers / 100,000 workflows.

Issue 12 asks these pages to "render from the database only" and stay under 50 ms of server time
at that volume. This seeds a throw-away PostgreSQL database with COPY (seconds), then renders each
page in-process N times through the whole ASGI app (routing, session cookie check, queries,
templates) with httpx's ASGI transport, and prints p50 / p95 / max. No network, no browser: what
is measured is the server's share of a page view. `make bench` runs it at full size and
`make bench-smoke` at a small one (bench/run.py, "UI pages" in the report); on its own:

    uv run --frozen python -m bench.ui_pages [--customers 1000] [--workflows 100000] [-n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from customer_api.app import create_app
from customer_api.settings import ApiSettings
from event_bus.settings import KafkaSettings
from workflow_store.crypto import SecretBox
from workflow_store.migrate import upgrade_async
from workflow_store.settings import StoreSettings

from bench.stack import pg_dsn, sqlalchemy_url

API_KEY = "bench-ui-key-" + secrets.token_hex(8)
STATUSES = ("Active", "Inactive")
RUN_STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "skipped", "deletes_blocked")


def _workflow_counts(customers: int, workflows: int, rng: random.Random) -> list[int]:
    """A skewed spread (a few big tenants, many small) summing exactly to `workflows`."""
    weights = [rng.expovariate(1.0) for _ in range(customers)]
    scale = workflows / sum(weights)
    counts = [int(w * scale) for w in weights]
    for index in range(workflows - sum(counts)):
        counts[index % customers] += 1
    return counts


def _customer_rows(
    customers: int, box: SecretBox, now: datetime, rng: random.Random
) -> list[tuple[Any, ...]]:
    secret = box.encrypt("bench-secret")
    rows = []
    for index in range(customers):
        synced = now - timedelta(minutes=rng.randint(1, 300))
        rows.append(
            (
                uuid.uuid4(),
                f"Tenant {index:04d}",
                "https://rest.test.zuora.com",
                f"client-{index}",
                secret,
                rng.random() > 0.05,
                "valid",
                rng.choice(("succeeded", "succeeded", "failed")),
                synced,
                synced if rng.random() > 0.1 else None,
                now - timedelta(days=30),
                now,
            )
        )
    return rows


def _workflow_rows(
    customer_ids: list[uuid.UUID], counts: list[int], now: datetime, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    zuora_id = 10_000
    for customer_id, count in zip(customer_ids, counts, strict=True):
        for _ in range(count):
            zuora_id += 1
            raw = json.dumps({"id": zuora_id, "name": f"Workflow {zuora_id}"})
            updated = now - timedelta(hours=rng.randint(1, 5000))
            trigger = rng.randrange(3)
            yield (
                customer_id,
                zuora_id,
                f"{rng.choice(('Invoice', 'Payment', 'Usage', 'Dunning'))} workflow {zuora_id}",
                "seeded by bench/ui_pages.py",
                rng.choice(STATUSES),
                zuora_id * 10,
                "1.0",
                "Active",
                "Workflow::Setup",
                trigger == 0,
                trigger == 1,
                trigger == 2,
                "0 * * * *" if trigger == 2 else None,
                "UTC",
                "Medium",
                updated - timedelta(days=30),
                updated,
                raw,
                secrets.token_hex(32),
                now,
                now,
            )


WORKFLOW_COLUMNS = (
    "customer_id, zuora_id, name, description, status, active_version_id, active_version,"
    " active_version_status, active_version_type, callout_trigger, ondemand_trigger,"
    " scheduled_trigger, interval, timezone, priority, zuora_created_at, zuora_updated_at, raw,"
    " content_hash, first_seen_at, last_changed_at"
)


def seed(dbname: str, *, customers: int, workflows: int, runs_per_customer: int) -> None:
    rng = random.Random(12)  # noqa: S311 - benchmark data
    now = datetime.now(UTC)
    box = SecretBox([SecretBox.generate_key()])
    customer_rows = _customer_rows(customers, box, now, rng)
    customer_ids = [row[0] for row in customer_rows]
    counts = _workflow_counts(customers, workflows, rng)
    with psycopg.connect(pg_dsn(dbname)) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY customers (id, name, base_url, client_id, client_secret_encrypted, active,"
            " credential_status, last_sync_status, last_sync_at, last_successful_sync_at,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for row in customer_rows:
                copy.write_row(row)
        with cur.copy(f"COPY workflows ({WORKFLOW_COLUMNS}) FROM STDIN") as copy:
            for row in _workflow_rows(customer_ids, counts, now, rng):
                copy.write_row(row)
        with cur.copy(
            "COPY sync_runs (id, customer_id, reason, attempt, forced, status, pages, created,"
            " updated, deleted, unchanged, total, started_at, finished_at, duration_ms)"
            " FROM STDIN"
        ) as copy:
            for customer_id, count in zip(customer_ids, counts, strict=True):
                for index in range(runs_per_customer):
                    started = now - timedelta(hours=index * 3 + rng.random())
                    copy.write_row(
                        (
                            uuid.uuid4(),
                            customer_id,
                            "scheduled",
                            1,
                            False,
                            rng.choice(RUN_STATUSES),
                            1 + count // 50,
                            0,
                            0,
                            0,
                            count,
                            count,
                            started,
                            started + timedelta(seconds=2),
                            2000,
                        )
                    )
        conn.commit()
        # What autovacuum would have done by the time anyone looks: statistics for the planner
        # and the visibility map (index-only scans for the counts).
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    dbname = f"bench_ui_{secrets.token_hex(4)}"
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield dbname
    finally:
        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    quantiles = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": round(quantiles[49], 2),
        "p95": round(quantiles[94], 2),
        "max": round(ordered[-1], 2),
    }


async def time_pages(
    database_url: str, paths: list[str], repeat: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per page: wall-clock ms of each render, and this process's CPU ms of each (the app's
    Python side plus the in-process client's; PostgreSQL's work is in the wall time only). On a
    shared machine the wall time grows with the load; the CPU time much less."""
    async with ui_client(database_url) as client:
        timings: dict[str, list[float]] = {path: [] for path in paths}
        cpu: dict[str, list[float]] = {path: [] for path in paths}
        for path in paths:  # warm-up: first template compile, connection pool, plan cache
            response = await client.get(path)
            response.raise_for_status()
        for _ in range(repeat):
            for path in paths:
                cpu_started = time.process_time()
                started = time.perf_counter()
                response = await client.get(path)
                timings[path].append((time.perf_counter() - started) * 1000)
                cpu[path].append((time.process_time() - cpu_started) * 1000)
                response.raise_for_status()
        return timings, cpu


@contextlib.asynccontextmanager
async def ui_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (lifespan running), signed in to the UI as a browser would be."""
    settings = ApiSettings(
        store=StoreSettings(
            DATABASE_URL=database_url, ENCRYPTION_KEYS=SecretBox.generate_key(), APP_ENV="test"
        ),
        API_KEYS=API_KEY,
        OUTBOX_RELAY_ENABLED=False,
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/ui/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None, "the sign-in form has no token"
            signed_in = await client.post(
                "/ui/login",
                data={"api_key": API_KEY, "csrf_token": token.group(1), "next": "/ui/"},
                headers={"Origin": "http://bench"},
            )
            assert signed_in.status_code == 303, signed_in.text
            yield client


PATHS = (
    "/ui/",
    "/ui/workflows",
    "/ui/workflows?page=20",
    "/ui/workflows?sort=name",
    "/ui/workflows?sort=-updated",
    "/ui/workflows?q=invoice&sort=-updated&page=3",
)


async def measure(
    *, customers: int, workflows: int, runs_per_customer: int = 20, repeat: int = 60
) -> dict[str, Any]:
    """Seed a scratch database, render each page ``repeat`` times: server time p50/p95/max per
    page, with the load average before and after (a shared machine's figures need it)."""
    with scratch_database() as dbname:
        await upgrade_async(sqlalchemy_url(dbname))
        started = time.perf_counter()
        seed(dbname, customers=customers, workflows=workflows, runs_per_customer=runs_per_customer)
        seed_s = round(time.perf_counter() - started, 1)
        load_before = [round(x, 2) for x in os.getloadavg()]
        timings, cpu = await time_pages(sqlalchemy_url(dbname), list(PATHS), repeat)
    return {
        "customers": customers,
        "workflows": workflows,
        "runs": customers * runs_per_customer,
        "renders_per_page": repeat,
        "seed_s": seed_s,
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "pages_ms": {
            path: {**percentiles(samples), "cpu_p50": round(statistics.median(cpu[path]), 2)}
            for path, samples in timings.items()
        },
    }


async def main_async(args: argparse.Namespace) -> None:
    result = await measure(
        customers=args.customers,
        workflows=args.workflows,
        runs_per_customer=args.runs_per_customer,
        repeat=args.repeat,
    )
    print(f"seeded {result['customers']} customers, {result['workflows']} workflows,")
    print(f"  {result['runs']} runs in {result['seed_s']} s")
    print(f"load average before {result['load_avg_before']}, after {result['load_avg_after']}")
    print(f"server time over {args.repeat} renders each (ms):")
    for path, figures in result["pages_ms"].items():
        cells = "  ".join(f"{name} {value:>7}" for name, value in figures.items())
        print(f"  {path:<50} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--runs-per-customer", type=int, default=20)
    parser.add_argument("-n", "--repeat", type=int, default=200)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
