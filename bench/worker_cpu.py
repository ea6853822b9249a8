# ruff: noqa: T201 - prints figures
"""Worker CPU per customer, in-process: the handler path a sync worker runs for each
``SyncCustomerWorkflows`` command (ledger check, customer lock, engine, settle into the outbox,
flush of the outbox) against a real PostgreSQL database and the sandbox as a separate process
(latency 0 ms by default), for ``--customers`` customers of ~100 workflows each (exponential,
mean 100, clipped to 0-500, as ``make bench``): a first sync of every customer, then a
no-change re-sync of every customer.

    uv run python -m bench.worker_cpu [--customers 200] [--concurrency 1] [--profile DIR]

Figures: CPU-ms per customer of THIS process (``time.process_time``: the worker's share; the
sandbox and PostgreSQL are other processes and are reported beside it, from psutil), wall time
and the load average. Publishing is a no-op recorder (Kafka is not in the path measured; the
outbox rows are still written, claimed and marked sent). Definitions are off by default, as in
``make bench`` scenarios 1-3 (``--definitions`` turns them on). With ``--profile DIR`` a second
round (fresh data) runs under cProfile and writes ``DIR/worker-cpu-{first,resync}.txt``
(cProfile on CPU time: cumulative and own time per function).
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from devstack.procs import Supervisor, sandbox_service
from event_bus.local_broker import free_port
from pydantic import BaseModel
from sync_engine import DefinitionSettings, SyncSettings, WorkflowSyncEngine
from sync_messages import SyncCustomerWorkflows, SyncReason
from sync_worker.handlers import SyncCommandHandler
from sync_worker.ledger import ProcessedLedger
from sync_worker.settings import WorkerSettings
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async

from bench.stack import Stack, TenantSpec, pg_dsn, postgres_cpu_seconds, spread_counts


class _Published:
    """The Kafka publish, as a counter (the path measured ends at the producer's door)."""

    def __init__(self) -> None:
        self.count = 0

    async def raw(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
        self.count += 1

    async def message(self, topic: str, message: BaseModel, *, key: str | None) -> None:
        self.count += 1


async def _round(
    handler: SyncCommandHandler, customer_ids: Sequence[uuid.UUID], concurrency: int
) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(cid: uuid.UUID) -> None:
        async with sem:
            await handler.on_command(
                SyncCustomerWorkflows(
                    id=str(uuid.uuid4()),
                    customer_id=cid,
                    reason=SyncReason.HOURLY,
                    requested_at=datetime.now(UTC),
                )
            )

    await asyncio.gather(*(one(c) for c in customer_ids))


def _run_counts(stack: Stack) -> dict[str, int]:
    with stack.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*),"
            " (SELECT count(*) FROM workflows), (SELECT count(*) FROM outbox WHERE sent_at IS NULL)"
            " FROM sync_runs"
        ).fetchone()
    assert row is not None
    return {"succeeded": row[0], "runs": row[1], "workflows": row[2], "outbox_unsent": row[3]}


_AREAS = (  # (area, path fragments), first match wins: where the CPU goes, by own time
    ("sqlalchemy", ("/sqlalchemy/",)),
    ("psycopg", ("/psycopg/", "/psycopg_pool/")),
    ("httpx+httpcore+h11", ("/httpx/", "/httpcore/", "/h11/", "/anyio/")),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("asyncio+greenlet+selectors", ("/asyncio/", "selectors.py", "greenlet")),
    ("zuora_client", ("/zuora_client/",)),
    ("sync_engine", ("/sync_engine/",)),
    ("sync_worker+event_bus+messages", ("/sync_worker/", "/event_bus/", "/sync_messages/")),
    ("workflow_store", ("/workflow_store/",)),
)


def _by_area(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        where = f"{filename}:{name}"
        area = next((a for a, parts in _AREAS if any(p in where for p in parts)), None)
        if area is None:
            area = "builtins (orjson, hashlib, ...)" if filename == "~" else "other python"
        totals[area] = totals.get(area, 0.0) + tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])


def _profile_text(profiler: cProfile.Profile, cpu: float, customers: int) -> str:
    buffer = io.StringIO()
    buffer.write(f"CPU {cpu * 1000 / customers:.1f} ms per customer under cProfile\n")
    stats = pstats.Stats(profiler, stream=buffer)
    areas = _by_area(stats)
    total = sum(t for _, t in areas) or 1.0
    buffer.write("own time by area (share of the profiled CPU):\n")
    for area, seconds in areas:
        buffer.write(f"  {area:34s} {seconds * 1000 / customers:7.2f} ms  {seconds / total:6.1%}\n")
    stats.strip_dirs()
    stats.sort_stats("cumulative").print_stats(70)
    stats.sort_stats("tottime").print_stats(40)
    return buffer.getvalue()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="zws-worker-cpu-"))
    stack = Stack(workdir=workdir, latency_ms=args.latency_ms)
    supervisor = Supervisor.in_dir(lambda: dict(os.environ), workdir)
    counts = spread_counts(args.customers, seed=args.seed)
    specs = [TenantSpec(f"w{i}", n, 1000 + i) for i, n in enumerate(counts)]
    warm = [TenantSpec(f"warm{i}", 100, 9000 + i) for i in range(3)]
    out: dict[str, Any] = {
        "customers": args.customers,
        "workflows": sum(counts),
        "concurrency": args.concurrency,
        "definitions": args.definitions,
        "latency_ms": args.latency_ms,
    }
    try:
        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{stack.dbname}"')
        await upgrade_async(stack.database_url)
        port = free_port()
        stack.sandbox_url = f"http://127.0.0.1:{port}"
        sandbox = await supervisor.run(
            sandbox_service(port, "--latency-ms", str(args.latency_ms), "--log-level", "warning")
        )
        sandbox_proc = psutil.Process(sandbox.pid)
        await stack.add_tenants([*warm, *specs])
        db = create_engine(stack.database_url, pool_size=args.concurrency + 2, max_overflow=4)
        sessions = create_session_factory(db)
        published = _Published()
        engine = WorkflowSyncEngine(
            db,
            SecretBox([stack.encryption_key]),
            allowed_base_urls=[stack.sandbox_url],
            settings=SyncSettings(
                zuora_token_requests_per_minute=1_000_000, zuora_token_burst=1000
            ),
            definition_settings=DefinitionSettings(enabled=args.definitions),
        )

        async def no_customers() -> Sequence[uuid.UUID]:
            return []

        handler = SyncCommandHandler(
            sync_customer=engine.sync_customer,
            active_customer_ids=no_customers,
            ledger=ProcessedLedger(sessions, published.raw),
            publish=published.message,
            settings=WorkerSettings(),
        )
        rounds = 2 if args.profile is not None else 1
        try:
            for round_no in range(rounds):
                profiling = round_no == 1
                stack.reset_data()
                stack.insert_customers([*warm, *specs])
                warm_ids = [s.customer_id for s in warm if s.customer_id is not None]
                ids = [s.customer_id for s in specs if s.customer_id is not None]
                await _round(handler, warm_ids, 1)  # imports, caches, pools, statement caches
                await _round(handler, warm_ids, 1)
                for phase in ("first", "resync"):
                    profiler = None
                    if profiling:  # CPU time, not wall time: the machine is shared
                        profiler = cProfile.Profile(time.process_time)
                        profiler.enable()
                    load = os.getloadavg()
                    pg0, sb0 = postgres_cpu_seconds(), sum(sandbox_proc.cpu_times()[:2])
                    t, c = time.perf_counter(), time.process_time()
                    await _round(handler, ids, args.concurrency)
                    cpu, wall = time.process_time() - c, time.perf_counter() - t
                    pg1, sb1 = postgres_cpu_seconds(), sum(sandbox_proc.cpu_times()[:2])
                    if profiler is not None:
                        profiler.disable()
                        text = _profile_text(profiler, cpu, len(ids))
                        args.profile.mkdir(parents=True, exist_ok=True)
                        (args.profile / f"worker-cpu-{phase}.txt").write_text(text)
                        print(f"  profile written: {args.profile}/worker-cpu-{phase}.txt")
                        continue
                    n = len(ids)
                    figs = {
                        "worker_cpu_ms_per_customer": round(cpu * 1000 / n, 2),
                        "worker_cpu_ms_per_1000_workflows": round(cpu * 1e6 / sum(counts), 1),
                        "wall_s": round(wall, 2),
                        "sandbox_cpu_ms_per_customer": round((sb1 - sb0) * 1000 / n, 2),
                        "postgres_cpu_ms_per_customer": round((pg1 - pg0) * 1000 / n, 2),
                        "loadavg_before": [round(x, 2) for x in load],
                        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                        **_run_counts(stack),
                    }
                    out[phase] = figs
                    print(f"  {phase}: {json.dumps(figs)}", flush=True)
        finally:
            await engine.aclose()
            await db.dispose()
        out["published"] = published.count
    finally:
        supervisor.stop_all()
        try:
            with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{stack.dbname}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"warning: could not drop {stack.dbname}: {exc}", file=sys.stderr)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1, help="syncs in flight at once")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--definitions", action="store_true", help="fetch definitions too")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output dir")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    out = asyncio.run(measure(args))
    print(json.dumps(out, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
