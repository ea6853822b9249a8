# ruff: noqa: T201, ASYNC109 - prints figures; bounded waits take a timeout
"""The measured scenarios (issue 6). Each returns a dict of figures; none asserts a timing."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from event_bus.broker import KafkaPublisher
from sync_messages import RunStatus, SyncAllCustomers, SyncReason, topics

from bench.stack import Sampler, Stack, TenantSpec, postgres_cpu_seconds

# A customer is done for the benchmark once its run left "running" (a retry is another run).
TERMINAL = tuple(s.value for s in RunStatus if s is not RunStatus.RUNNING)
FAILED = [RunStatus.FAILED.value, RunStatus.RETRY_SCHEDULED.value]


# --------------------------------------------------------------------------- DB write accounting


def db_mark(stack: Stack) -> dict[str, Any]:
    """A point to count workflow writes from: txid (for xmin) + row count + server time."""
    with stack.connect() as conn:
        txid, now = conn.execute("SELECT txid_current() % 4294967296, now()").fetchone()  # type: ignore[misc]
        count = conn.execute("SELECT count(*) FROM workflows").fetchone()[0]  # type: ignore[index]
    return {"txid": int(txid), "at": now, "count": int(count)}


def db_writes_since(stack: Stack, mark: dict[str, Any]) -> dict[str, int]:
    """Exact workflow rows written since `mark`: tuples with a newer xmin are inserted or updated
    (told apart by first_seen_at); deleted = before + inserted - after."""
    with stack.connect() as conn:
        row = conn.execute(
            "SELECT"
            " count(*) FILTER (WHERE xmin::text::bigint >= %(t)s AND first_seen_at >= %(at)s),"
            " count(*) FILTER (WHERE xmin::text::bigint >= %(t)s AND first_seen_at < %(at)s),"
            " count(*) FROM workflows",
            {"t": mark["txid"], "at": mark["at"]},
        ).fetchone()
    assert row is not None
    inserted, updated, after = int(row[0]), int(row[1]), int(row[2])
    deleted = mark["count"] + inserted - after
    return {
        "inserted": inserted,
        "updated": updated,
        "deleted": deleted,
        "total": inserted + updated + deleted,
        "rows_after": after,
    }


# --------------------------------------------------------------------------- scenario 1/2/3/6


async def publish_sync_all(stack: Stack, label: str) -> tuple[float, str]:
    publisher = KafkaPublisher(stack.kafka, component="bench")
    message = SyncAllCustomers.for_slot(SyncReason.HOURLY, f"bench-{label}-{uuid.uuid4().hex[:8]}")
    try:
        t_pub = time.time()
        await publisher.publish_message(topics.SYNC_ALL, message, key=message.id)
    finally:
        await publisher.close()
    return t_pub, message.id


async def run_sync_all(
    stack: Stack, specs: list[TenantSpec], label: str, *, timeout: float = 600.0
) -> dict[str, Any]:
    """Publish one SyncAllCustomers and wait until every customer has a finished run."""
    names = [s.name for s in specs]
    n = len(specs)
    ids = [s.customer_id for s in specs]
    stats0 = await stack.sandbox_stats(names)
    totals0 = await stack.sandbox_totals()
    mark = db_mark(stack)
    procs = {p.name: p.pid for p in stack.workers}
    assert stack.sandbox is not None
    assert stack.broker is not None
    procs["sandbox"] = stack.sandbox.pid
    procs["broker"] = stack.broker.pid
    pg0 = postgres_cpu_seconds()
    query = (
        "SELECT count(DISTINCT customer_id) FILTER (WHERE status = ANY(%(t)s)),"
        " count(*) FILTER (WHERE status = %(succeeded)s),"
        " count(*) FILTER (WHERE status = ANY(%(failed)s)),"
        " max(finished_at), coalesce(sum(pages), 0)"
        " FROM sync_runs WHERE started_at >= %(since)s AND customer_id = ANY(%(ids)s)"
    )
    row: Any = None
    with Sampler(procs) as sampler, stack.connect() as conn:
        t_pub, _ = await publish_sync_all(stack, label)
        since = datetime.fromtimestamp(t_pub, UTC)
        deadline = time.monotonic() + timeout
        while True:
            row = conn.execute(
                query,
                {
                    "t": list(TERMINAL),
                    "succeeded": RunStatus.SUCCEEDED.value,
                    "failed": FAILED,
                    "since": since,
                    "ids": ids,
                },
            ).fetchone()
            if row[0] >= n:
                break
            if time.monotonic() > deadline:
                print(f"  [{label}] TIMEOUT: {row[0]}/{n} customers done", flush=True)
                break
            for p in stack.workers:
                if not p.alive:
                    raise RuntimeError(f"{p.name} died:\n{p.log()[-3000:]}")
            await asyncio.sleep(0.2)
        observed = time.time() - t_pub
    pg_cpu = postgres_cpu_seconds() - pg0
    done, succeeded, failed, last_finished, run_pages = row
    wall = (last_finished.timestamp() - t_pub) if last_finished else observed
    writes = db_writes_since(stack, mark)
    in_flight = runs_in_flight(stack, since, ids)
    stats1 = await stack.sandbox_stats(names)
    totals1 = await stack.sandbox_totals()
    zuora = {k: stats1[k] - stats0[k] for k in stats0}
    workflows = sum(stack.tenants[nm].workflow_count for nm in names)
    proc_figs = sampler.figures()
    workers = {k: v for k, v in proc_figs.items() if k.startswith("worker")}
    sandbox = sandbox_figures(totals0, totals1, proc_figs.get("sandbox", {}), wall)
    result = {
        "customers": n,
        "customers_done": int(done),
        "succeeded": int(succeeded),
        "failed": int(failed),
        "workers": len(stack.workers),
        "worker_concurrency": stack.worker_concurrency,
        "partitions": stack.partitions,
        "workflows": workflows,
        "wall_s": round(wall, 3),
        "observed_s": round(observed, 3),
        "workflows_per_s": round(workflows / wall, 1) if wall > 0 else None,
        "zuora_pages": zuora["list_requests"],
        "zuora_token_requests": zuora["token_requests"],
        "zuora_export_requests": zuora["export_requests"],
        "zuora_versions_requests": zuora["versions_requests"],
        "zuora_requests": sum(zuora.values()),
        "run_pages": int(run_pages),
        "db_workflow_rows": writes,
        "processes": proc_figs,
        "worker_cpu_s_total": round(sum(v["cpu_s"] for v in workers.values()), 2),
        "worker_peak_rss_mb_max": max((v["peak_rss_mb"] for v in workers.values()), default=0),
        "postgres_cpu_s": round(pg_cpu, 2),
        "sandbox": sandbox,
        "in_flight": in_flight,
        "worker_max_in_flight_setting": stack.max_in_flight,
        "sandbox_latency_ms": stack.latency_ms,
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(
        f"  [{label}] {n} customers / {workflows} workflows with {len(stack.workers)} workers: "
        f"{wall:.2f} s, {result['workflows_per_s']} wf/s, pages={zuora['list_requests']} "
        f"tokens={zuora['token_requests']}, rows={writes['total']} "
        f"(ins {writes['inserted']} upd {writes['updated']} del {writes['deleted']}), "
        f"succeeded {succeeded} failed {failed}, worker cpu={result['worker_cpu_s_total']} s, "
        f"peak rss={result['worker_peak_rss_mb_max']} MB, in flight max "
        f"{in_flight['max']} mean {in_flight['mean']}, sandbox "
        f"{sandbox['cpu_ms_per_request']} CPU-ms/request",
        flush=True,
    )
    return result


def sandbox_figures(
    before: dict[str, Any], after: dict[str, Any], proc: dict[str, float], wall_s: float
) -> dict[str, Any]:
    """What the sandbox served during a scenario, from its own counters (every tenant's Zuora
    requests; admin calls not counted) and its process's CPU (psutil delta)."""
    requests = int(after["requests"]) - int(before["requests"])
    cpu_s = float(proc.get("cpu_s", 0.0))
    out: dict[str, Any] = {
        "requests": requests,
        "req_per_s": round(requests / wall_s, 1) if wall_s > 0 else None,
        "cpu_s": round(cpu_s, 2),
        "cpu_ms_per_request": round(cpu_s * 1000 / requests, 3) if requests else None,
        "peak_rss_mb": proc.get("peak_rss_mb"),
        "fast": before.get("fast") is not None,
    }
    if before.get("fast") and after.get("fast"):
        hits = int(after["fast"]["hits"]) - int(before["fast"]["hits"])
        out["fast_hits"] = hits
        out["fast_fallbacks"] = int(after["fast"]["fallbacks"]) - int(before["fast"]["fallbacks"])
        out["fast_pages_rendered"] = int(after["fast"]["pages_rendered"]) - int(
            before["fast"]["pages_rendered"]
        )
    return out


def runs_in_flight(stack: Stack, since: datetime, ids: list[uuid.UUID | None]) -> dict[str, Any]:
    """Measured concurrency of a scenario's sync runs: the most ``sync_runs`` intervals
    (started_at..finished_at) overlapping at one instant, and the mean (sum of the runs'
    durations / the span from the first start to the last finish)."""
    with stack.connect() as conn:
        rows = conn.execute(
            "SELECT started_at, finished_at FROM sync_runs"
            " WHERE started_at >= %s AND customer_id = ANY(%s) AND finished_at IS NOT NULL",
            (since, ids),
        ).fetchall()
    if not rows:
        return {"max": 0, "mean": 0.0, "runs": 0}
    events = sorted([(r[0], 1) for r in rows] + [(r[1], -1) for r in rows])
    level = peak = 0
    for _, step in events:  # a finish sorts before a start at the same instant (-1 < 1)
        level += step
        peak = max(peak, level)
    busy = sum((r[1] - r[0]).total_seconds() for r in rows)
    span = (max(r[1] for r in rows) - min(r[0] for r in rows)).total_seconds()
    return {
        "max": peak,
        "mean": round(busy / span, 1) if span > 0 else 0.0,
        "runs": len(rows),
        "run_p50_s": round(_pct([(r[1] - r[0]).total_seconds() for r in rows], 0.5), 3),
    }


def plan_churn(
    specs: list[TenantSpec], *, change: float, add: float, delete: float, seed: int = 3
) -> dict[str, dict[str, int]]:
    """Spread change/add/delete shares of all workflows over tenants (deletes never reach the
    deletion guard: at most a third of a tenant's workflows)."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    total = sum(s.workflow_count for s in specs)
    units = [s.name for s in specs for _ in range(s.workflow_count)]
    n_change, n_delete, n_add = round(total * change), round(total * delete), round(total * add)
    picked = rng.sample(units, min(len(units), n_change + n_delete))
    plan: dict[str, dict[str, int]] = {s.name: {"change": 0, "add": 0, "delete": 0} for s in specs}
    counts = {s.name: s.workflow_count for s in specs}
    leftover = 0
    for i, name in enumerate(picked):
        if i < n_change:
            plan[name]["change"] += 1
        elif plan[name]["delete"] + 1 <= counts[name] // 3:
            plan[name]["delete"] += 1
        else:
            leftover += 1
            plan[name]["change"] += 1  # keep the total of touched rows; rare
    weights = [max(1, s.workflow_count) for s in specs]
    for name in rng.choices([s.name for s in specs], weights=weights, k=n_add):
        plan[name]["add"] += 1
    return {k: v for k, v in plan.items() if any(v.values())}


async def apply_churn(stack: Stack, plan: dict[str, dict[str, int]]) -> dict[str, int]:
    sem = asyncio.Semaphore(16)
    totals = {"changed": 0, "added": 0, "deleted": 0}
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=60) as client:

        async def one(name: str, body: dict[str, int]) -> None:
            async with sem:
                r = await client.post(f"/_sandbox/tenants/{name}/churn", json={**body, "seed": 5})
                r.raise_for_status()
                res = r.json()
                for k in totals:
                    totals[k] += len(res[k])
                spec = stack.tenants[name]
                spec.workflow_count += len(res["added"]) - len(res["deleted"])

        await asyncio.gather(*(one(n, b) for n, b in plan.items()))
    return totals


# --------------------------------------------------------------------------- scenario 4 / 5


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


async def created_to_readable(
    stack: Stack,
    specs: list[TenantSpec],
    *,
    spacing: float = 0.2,
    timeout: float = 60.0,
    poll: float = 0.05,
    page_size: int = 50,
) -> dict[str, Any]:
    """POST each customer (one every `spacing` s) and poll its workflow list until it shows
    the full total; latency = POST sent -> first GET that returns the total."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    latencies: list[float] = []
    create_ms: list[float] = []
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as client:

        async def one(i: int, spec: TenantSpec) -> None:
            await asyncio.sleep(i * spacing)
            t0 = time.perf_counter()
            r = await client.post(
                "/customers",
                json={
                    "name": spec.name,
                    "base_url": stack.sandbox_url,
                    "client_id": spec.client_id,
                    "client_secret": spec.client_secret,
                },
            )
            if r.status_code != 201:
                failures.append(f"{spec.name}: {r.status_code} {r.text[:200]}")
                return
            create_ms.append((time.perf_counter() - t0) * 1000)
            spec.customer_id = uuid.UUID(r.json()["id"])
            url = f"/customers/{spec.customer_id}/workflows"
            while time.perf_counter() - t0 < timeout:
                g = await client.get(url, params={"page_size": page_size})
                if g.status_code == 200 and g.json()["total"] == spec.workflow_count:
                    latencies.append(time.perf_counter() - t0)
                    return
                await asyncio.sleep(poll)
            failures.append(f"{spec.name}: not readable within {timeout:.0f}s")

        await asyncio.gather(*(one(i, s) for i, s in enumerate(specs)))
    result = {
        "customers": len(specs),
        "readable": len(latencies),
        "spacing_s": spacing,
        "poll_s": poll,
        "poll_page_size": page_size,
        "p50_s": round(_pct(latencies, 0.5), 3),
        "p95_s": round(_pct(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3) if latencies else None,
        "post_p50_ms": round(_pct(create_ms, 0.5), 1),
        "failures": failures[:10],
    }
    print(
        f"  [created->readable] {len(latencies)}/{len(specs)} readable: "
        f"p50 {result['p50_s']} s, p95 {result['p95_s']} s",
        flush=True,
    )
    return result


def run_loadgen(url: str, key: str, **opts: Any) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__).with_name("loadgen.py")), "--url", url, "--key", key]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr[-1500:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures
