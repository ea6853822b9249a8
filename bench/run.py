# ruff: noqa: T201 - a benchmark prints its figures
"""Run the benchmark scenarios of issue 6 and write bench/results/latest.{json,md}.

    uv run python -m bench.run            # full (make bench)
    uv run python -m bench.run --smoke    # small (make bench-smoke)
    uv run python -m bench.run --only defs --definitions-every 1   # one section, all customers

Real processes on 127.0.0.1: a throw-away PostgreSQL database, the local Kafka-compatible broker,
the Zuora sandbox (latency per request, default 20 ms), sync-worker and customer-api processes.
Prints figures; never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench import read_api, report, ui_pages
from bench.baseline import run_baseline
from bench.floor import run_floor
from bench.profile_sync import profile_sync
from bench.scenarios import (
    apply_churn,
    created_to_readable,
    plan_churn,
    run_loadgen,
    run_sync_all,
    sandbox_figures,
)
from bench.stack import Sampler, Stack, TenantSpec, pg_dsn, postgres_cpu_seconds, spread_counts

RESULTS = Path(__file__).with_name("results")


@dataclass
class Config:
    name: str
    customers: int  # scenario 1
    baseline_every: int  # baseline runs on every k-th customer of scenario 1, extrapolated
    scaling_sizes: list[int]
    scaling_workers: list[int]
    created_customers: int
    reader_workflows: int
    load_requests: int
    load_rate: float
    load_concurrency: int
    profile_workflows: int
    budget_s: float  # the run skips the remaining scaling points beyond this
    # The definitions scenario syncs every k-th customer of scenario 1 (1: all of them) and
    # extrapolates its cost to all of scenario 1's workflows (labelled so in the report).
    definitions_every: int = 10
    scaling_workers_customers: int = 0  # customers of the worker-count series (0: scenario 1's)
    # The UI pages' server time (bench/ui_pages.py): customers, workflows, renders per page.
    ui_pages: tuple[int, int, int] = (1000, 100_000, 60)
    latency_ms: float = 20.0
    workers: int = 2
    worker_concurrency: int = 8
    partitions: int = 16
    # Issue 13. Sync commands per worker process at once (WORKER_MAX_IN_FLIGHT; 2 workers x 32 =
    # the floor's 64 tenants at once); the realistic-latency scenario (latency, customers); the
    # customers created while a sync-all runs (and one every k s); the workflows of the customer
    # whose sync-worker peak RSS is measured; the scale point's customers (`make bench-scale`).
    max_in_flight: int = 32
    high_latency_ms: float = 250.0
    latency_customers: int = 1000
    underload_customers: int = 30
    underload_spacing_s: float = 0.5
    rss_workflows: int = 5000
    scale_customers: int = 5000
    fast_sandbox: bool = True
    notes: list[str] = field(default_factory=list)


FULL = Config(
    name="full",
    customers=1000,
    baseline_every=10,
    scaling_sizes=[100, 300, 1000],  # 5,000: the `scale` section (make bench-scale)
    scaling_workers=[1, 2, 4],
    scaling_workers_customers=300,
    created_customers=50,
    reader_workflows=1000,
    load_requests=4000,
    load_rate=300.0,
    load_concurrency=16,
    profile_workflows=5000,
    budget_s=1050.0,  # from the start of the run: later sections (scaling) skip points past it
    definitions_every=10,
)
SMOKE = Config(
    name="smoke",
    customers=40,
    baseline_every=8,
    scaling_sizes=[20, 40],
    scaling_workers=[1, 2],
    created_customers=4,
    reader_workflows=1000,
    load_requests=300,
    load_rate=300.0,
    load_concurrency=8,
    profile_workflows=0,
    budget_s=75.0,
    ui_pages=(100, 10_000, 10),
    definitions_every=8,
    latency_customers=16,
    underload_customers=4,
    underload_spacing_s=0.3,
    rss_workflows=1000,
    scale_customers=60,
    # CI shares PostgreSQL (max_connections 100) with the other test runs (e2e stacks, the API):
    # small pools there. The smoke run exercises the paths, not the figures.
    max_in_flight=8,
)

#: Sections of a run, for --only (scaling needs s1's figures), in the order they run.
SECTIONS = (
    "floor",
    "baseline",
    "s1",
    "latency",
    "underload",
    "rss",
    "scale",
    "defs",
    "reads",
    "profile",
    "scaling",
    "ui",
)
#: What `make bench` runs; `scale` (5,000 customers) is `make bench-scale` (--only scale).
DEFAULT_SECTIONS = tuple(x for x in SECTIONS if x != "scale")
# The listing scenarios (1, 2, 3, 6) measure the listing path alone, comparable with the runs
# before workflow definitions existed; the definitions scenario measures what they add.
LISTING_ONLY = {"SYNC_DEFINITIONS_ENABLED": "false"}


def _tenant_specs(prefix: str, counts: list[int], seed_base: int) -> list[TenantSpec]:
    return [
        TenantSpec(name=f"{prefix}-{i:05d}", workflow_count=c, seed=seed_base + i)
        for i, c in enumerate(counts, start=1)
    ]


async def run(cfg: Config, workdir: Path, only: set[str] | None = None) -> dict[str, Any]:
    started = time.monotonic()
    # The smoke run exercises every section (scale at its small size); `make bench` all but
    # `scale` (make bench-scale).
    default = set(SECTIONS) if cfg.name == "smoke" else set(DEFAULT_SECTIONS)
    chosen = only if only is not None else default

    def wanted(section: str) -> bool:
        return section in chosen

    results: dict[str, Any] = {"config": {k: v for k, v in vars(cfg).items() if k != "notes"}}
    notes = cfg.notes
    stack = Stack(
        workdir=workdir,
        latency_ms=cfg.latency_ms,
        partitions=cfg.partitions,
        worker_concurrency=cfg.worker_concurrency,
        fast_sandbox=cfg.fast_sandbox,
        max_in_flight=cfg.max_in_flight,
    )
    section_times: dict[str, float] = {}

    def timed(section: str, t0: float) -> None:
        section_times[section] = round(time.monotonic() - t0, 1)
        print(f"  ({section}: {section_times[section]} s)", flush=True)

    try:
        await stack.start()
        results["machine"] = report.machine_info(pg_dsn(stack.dbname))
        sizes = [cfg.customers, *cfg.scaling_sizes]
        if wanted("scale"):
            sizes.append(cfg.scale_customers)
        specs = _tenant_specs("cust", spread_counts(max(sizes)), 1000)
        created = _tenant_specs(
            "new", [max(1, c) for c in spread_counts(cfg.created_customers, seed=11)], 900_000
        )
        under = _tenant_specs(
            "load", [max(1, c) for c in spread_counts(cfg.underload_customers, seed=13)], 800_000
        )
        reader = TenantSpec(name="reader", workflow_count=cfg.reader_workflows, seed=424242)
        big = TenantSpec(name="rss-big", workflow_count=cfg.rss_workflows, seed=5555)
        extra = [reader, *created, *under, big]
        if cfg.profile_workflows:
            extra.append(TenantSpec("profiled", cfg.profile_workflows, 777))
        s1_specs = specs[: cfg.customers]
        t = time.perf_counter()
        await stack.add_tenants(s1_specs + extra)  # the rest only if a scaling point needs them
        warm = await stack.warm([sp.name for sp in s1_specs + extra])
        print(
            f"sandbox ({'fast' if cfg.fast_sandbox else 'normal'} mode): "
            f"{len(s1_specs) + len(extra)} tenants, {warm['pages']} pages rendered in "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
        creds = lambda ss: [(s.customer_id, s.client_id, s.client_secret) for s in ss]  # noqa: E731
        floor_concurrency = cfg.workers * cfg.max_in_flight

        # -- floor -----------------------------------------------------------------------------
        if wanted("floor"):
            t0 = time.monotonic()
            print(f"floor: bare concurrent httpx ({floor_concurrency} tenants at once) + one COPY")
            results["floor"] = await _floor(stack, s1_specs, floor_concurrency)
            timed("floor", t0)

        # -- baseline --------------------------------------------------------------------------
        if wanted("baseline"):
            t0 = time.monotonic()
            results["baseline"] = await _baseline(cfg, stack, s1_specs, creds)
            timed("baseline", t0)

        # -- scenario 1, 2, 3 ------------------------------------------------------------------
        s1: dict[str, Any] | None = None
        if wanted("s1"):
            t0 = time.monotonic()
            s1 = await _listing_scenarios(cfg, stack, s1_specs, results)
            timed("s1", t0)

        # -- realistic latency (issue 13): ours and the floor at 250 ms ------------------------
        if wanted("latency"):
            t0 = time.monotonic()
            try:
                results["latency"] = await _latency_scenario(
                    cfg, stack, s1_specs[: cfg.latency_customers], floor_concurrency
                )
            except Exception as exc:
                notes.append(f"latency scenario failed: {exc!r}"[:2000])
                print(f"  latency scenario FAILED: {exc!r}", flush=True)
                traceback.print_exc()
            finally:
                await stack.set_latency(cfg.latency_ms)
            timed("latency", t0)

        # -- created -> readable while a sync-all runs (issue 13) ------------------------------
        if wanted("underload"):
            t0 = time.monotonic()
            try:
                results["s4_under_load"] = await _under_load(cfg, stack, s1_specs, under)
            except Exception as exc:
                notes.append(f"created-under-load scenario failed: {exc!r}"[:2000])
                print(f"  created-under-load FAILED: {exc!r}", flush=True)
                traceback.print_exc()
            timed("underload", t0)

        # -- sync-worker peak RSS, one big customer (issue 13) ---------------------------------
        if wanted("rss"):
            t0 = time.monotonic()
            try:
                results["worker_rss"] = await _worker_rss(cfg, stack, big)
            except Exception as exc:
                notes.append(f"worker RSS scenario failed: {exc!r}"[:2000])
                print(f"  worker RSS FAILED: {exc!r}", flush=True)
            timed("rss", t0)

        # -- the scale point: 5,000 customers (make bench-scale) -------------------------------
        if wanted("scale"):
            t0 = time.monotonic()
            try:
                results["scale"] = await _scale(cfg, stack, specs[: cfg.scale_customers])
            except Exception as exc:
                notes.append(f"scale point failed: {exc!r}"[:2000])
                print(f"  scale point FAILED: {exc!r}", flush=True)
                traceback.print_exc()
            timed("scale", t0)
        # -- definitions -----------------------------------------------------------------------
        if wanted("defs"):
            t0 = time.monotonic()
            try:
                results["definitions"] = await _definitions_scenario(cfg, stack, s1_specs)
            except Exception as exc:
                notes.append(f"definitions scenario failed: {exc!r}"[:2000])
                print(f"  definitions scenario FAILED: {exc!r}", flush=True)
                traceback.print_exc()
            timed("defs", t0)

        # -- scenario 4, 5 ---------------------------------------------------------------------
        if wanted("reads"):
            t0 = time.monotonic()
            await _ensure_workers(cfg, stack, {})  # scenario 4: workers as the product runs them
            try:
                await _read_scenarios(cfg, stack, created, reader, results)
            except Exception as exc:  # a broken scenario must not lose the others' figures
                notes.append(f"scenario 4/5 failed: {exc!r}"[:2000])
                print(f"  scenario 4/5 FAILED: {exc!r}", flush=True)
            timed("reads", t0)
        stack.stop_api()

        # -- profile ---------------------------------------------------------------------------
        if cfg.profile_workflows and wanted("profile"):
            t0 = time.monotonic()
            print(f"profile: one customer with {cfg.profile_workflows} workflows (pyinstrument)")
            stack.reset_data()
            prof = stack.tenants["profiled"]
            stack.insert_customers([prof])
            try:
                results["profile"] = await profile_sync(stack, prof, RESULTS)
            except Exception as exc:
                notes.append(f"profile failed: {exc!r}"[:1000])
            stack.reset_data()
            timed("profile", t0)
        # -- scenario 6: scaling ---------------------------------------------------------------
        if wanted("scaling") and s1 is None:
            notes.append("scaling skipped: it needs scenario 1 (--only without s1)")
        elif wanted("scaling"):
            assert s1 is not None
            t0 = time.monotonic()
            results["s6_scaling"] = await _scaling(cfg, stack, specs, s1, started)
            timed("scaling", t0)

        stack.stop_workers()

    finally:
        stack.close()
    # Last, with the stack's processes gone: the pages' server time wants a quiet machine.
    if wanted("ui"):
        t0 = time.monotonic()
        customers, workflows, repeat = cfg.ui_pages
        print(f"UI pages: {customers} customers, {workflows} workflows, {repeat} renders per page")
        try:
            results["ui_pages"] = await ui_pages.measure(
                customers=customers, workflows=workflows, repeat=repeat
            )
            print(f"  {results['ui_pages']['pages_ms']}", flush=True)
        except Exception as exc:
            notes.append(f"UI pages failed: {exc!r}"[:1000])
            print(f"  UI pages FAILED: {exc!r}", flush=True)
        timed("ui", t0)
    if stack.connection_waits:
        notes.append(
            f"the bench waited {stack.connection_waits} times for a PostgreSQL connection (too "
            f"many clients: {cfg.workers} workers x WORKER_MAX_IN_FLIGHT={cfg.max_in_flight} x 2 "
            "connections per sync, against max_connections)"
        )
    results["runtime_s"] = round(time.monotonic() - started, 1)
    results["section_seconds"] = section_times
    results["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["notes"] = notes
    results["sections"] = sorted(chosen)
    return results


async def _floor(stack: Stack, specs: list[TenantSpec], concurrency: int) -> dict[str, Any]:
    """The floor on these customers, with the sandbox's and PostgreSQL's CPU beside its own."""
    stack.reset_data()
    stack.insert_customers(specs)
    assert stack.sandbox is not None
    totals0 = await stack.sandbox_totals()
    pg0 = postgres_cpu_seconds()
    with Sampler({"sandbox": stack.sandbox.pid}) as sampler:
        floor = await run_floor(
            pg_dsn(stack.dbname),
            stack.sandbox_url,
            [(s.customer_id, s.client_id, s.client_secret) for s in specs],  # type: ignore[misc]
            concurrency=concurrency,
        )
    floor["postgres_cpu_s"] = round(postgres_cpu_seconds() - pg0, 2)
    totals1 = await stack.sandbox_totals()
    floor["sandbox"] = sandbox_figures(
        totals0, totals1, sampler.figures()["sandbox"], floor["fetch_seconds"]
    )
    floor["sandbox_latency_ms"] = stack.latency_ms
    floor["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(f"  {floor}", flush=True)
    return floor


async def _ensure_workers(cfg: Config, stack: Stack, env: dict[str, str]) -> None:
    if not stack.workers or stack.worker_env != env or len(stack.workers) != cfg.workers:
        await stack.start_workers(cfg.workers, **env)


async def _latency_scenario(
    cfg: Config, stack: Stack, specs: list[TenantSpec], floor_concurrency: int
) -> dict[str, Any]:
    """Issue 13: Zuora at ``high_latency_ms`` per request (pages and tokens): a first sync-all
    of these customers by the workers (``max_in_flight`` syncs each), and the floor at the same
    in-flight budget (``workers x max_in_flight`` tenants at once)."""
    await stack.set_latency(cfg.high_latency_ms)
    print(
        f"latency: sandbox at {cfg.high_latency_ms:.0f} ms, {len(specs)} customers; floor at "
        f"{floor_concurrency} tenants at once, then ours ({cfg.workers} workers x "
        f"WORKER_MAX_IN_FLIGHT={cfg.max_in_flight})",
        flush=True,
    )
    floor = await _floor(stack, specs, floor_concurrency)
    stack.reset_data()
    stack.insert_customers(specs)
    await _ensure_workers(cfg, stack, LISTING_ONLY)
    ours = await run_sync_all(stack, specs, "latency", timeout=900.0)
    return {"latency_ms": cfg.high_latency_ms, "floor": floor, "ours": ours}


async def _under_load(
    cfg: Config, stack: Stack, s1_specs: list[TenantSpec], created: list[TenantSpec]
) -> dict[str, Any]:
    """Issue 13: customers created over HTTP (one every ``underload_spacing_s``) while a first
    sync-all of scenario 1's customers runs; created -> readable p50 / p95 / max."""
    print(
        f"created -> readable under load: {len(created)} customers created over HTTP while a "
        f"first sync-all of {len(s1_specs)} customers runs",
        flush=True,
    )
    stack.reset_data()
    stack.insert_customers(s1_specs)
    await _ensure_workers(cfg, stack, LISTING_ONLY)
    if stack.api is None:
        await stack.start_api()
    sync_all = asyncio.create_task(run_sync_all(stack, s1_specs, "under-load", timeout=900.0))
    await asyncio.sleep(1.0)  # the fan-out has queued the sync-all's commands
    with stack.connect() as conn:
        row = conn.execute("SELECT count(*) FROM sync_runs").fetchone()
    runs_at_start = int(row[0]) if row else 0
    # Polled every 0.1 s with pages of 1 (the total is all it needs): the polls must not be
    # the load (30 customers polling pages of 50 every 0.1 s would be ~300 page renders/s).
    readable = await created_to_readable(
        stack, created, spacing=cfg.underload_spacing_s, timeout=120.0, poll=0.1, page_size=1
    )
    with stack.connect() as conn:
        row = conn.execute(
            "SELECT count(DISTINCT customer_id) FROM sync_runs"
            " WHERE customer_id = ANY(%s) AND finished_at IS NOT NULL",
            ([sp.customer_id for sp in s1_specs],),
        ).fetchone()
    s1_done_when_readable = int(row[0]) if row else 0
    background = await sync_all  # the API stays up for the reads section
    return {
        **readable,
        "sync_all_customers": len(s1_specs),
        "sync_all_runs_when_created_started": runs_at_start,
        "sync_all_done_when_all_readable": s1_done_when_readable,
        "sync_all_still_running": s1_done_when_readable < len(s1_specs),
        "sync_all": {
            k: background[k]
            for k in ("wall_s", "customers_done", "failed", "worker_cpu_s_total", "in_flight")
        },
        "load_avg_1m_at_end": background["load_avg_1m_at_end"],
    }


async def _worker_rss(cfg: Config, stack: Stack, big: TenantSpec) -> dict[str, Any]:
    """Issue 13: peak RSS of a real sync-worker process syncing one customer of
    ``rss_workflows`` workflows: a first sync, then a no-change re-sync. The running workers
    (listing only, as the CLI figure it replaces; definitions: the `defs` section) are kept:
    a restart on the local broker can hang a join for minutes, and a worker that has already
    synced scenario 1 is the conservative case (its heap has grown, never shrunk)."""
    print(f"worker RSS: sync-worker processes, one customer of {big.workflow_count} workflows")
    stack.reset_data()
    stack.insert_customers([big])
    await _ensure_workers(cfg, stack, LISTING_ONLY)
    idle = max(psutil.Process(w.pid).memory_info().rss for w in stack.workers) / 2**20
    first = await run_sync_all(stack, [big], "rss-first", timeout=600.0)
    resync = await run_sync_all(stack, [big], "rss-resync", timeout=600.0)
    return {
        "workflows": big.workflow_count,
        "idle_rss_mb": round(idle, 1),
        "first_sync_peak_rss_mb": first["worker_peak_rss_mb_max"],
        "resync_peak_rss_mb": resync["worker_peak_rss_mb_max"],
        "peak_rss_mb": max(first["worker_peak_rss_mb_max"], resync["worker_peak_rss_mb_max"]),
        "first_sync_wall_s": first["wall_s"],
        "resync_wall_s": resync["wall_s"],
        "first_sync_worker_cpu_s": first["worker_cpu_s_total"],
        "resync_worker_cpu_s": resync["worker_cpu_s_total"],
        "succeeded": first["succeeded"] + resync["succeeded"],
        "workers": len(stack.workers),
        "definitions": False,
        "load_avg_1m_at_end": resync["load_avg_1m_at_end"],
    }


async def _scale(cfg: Config, stack: Stack, specs: list[TenantSpec]) -> dict[str, Any]:
    """Issue 13: the 5,000-customer point - a first sync-all and a no-change re-sync."""
    missing = [sp for sp in specs if sp.name not in stack.tenants]
    if missing:
        t = time.perf_counter()
        await stack.add_tenants(missing)
        await stack.warm([sp.name for sp in missing])
        print(f"  {len(missing)} more tenants in {time.perf_counter() - t:.1f} s", flush=True)
    print(f"scale: first sync-all and no-change re-sync of {len(specs)} customers")
    stack.reset_data()
    stack.insert_customers(specs)
    await _ensure_workers(cfg, stack, LISTING_ONLY)
    first = await run_sync_all(stack, specs, "scale-first", timeout=900.0)
    resync = await run_sync_all(stack, specs, "scale-resync", timeout=900.0)
    return {"customers": len(specs), "first_sync": first, "no_change_resync": resync}


async def _baseline(
    cfg: Config, stack: Stack, s1_specs: list[TenantSpec], creds: Any
) -> dict[str, Any]:
    subset = s1_specs[:: cfg.baseline_every]
    print(f"baseline: naive sync of {len(subset)} customers (every {cfg.baseline_every}th)")
    stack.reset_data()
    stack.insert_customers(subset)
    base = await run_baseline(stack.database_url, stack.sandbox_url, creds(subset))
    sub_wf = sum(s.workflow_count for s in subset)
    all_wf = sum(s.workflow_count for s in s1_specs)
    base["workflows"] = sub_wf
    base["extrapolated_customers"] = len(s1_specs)
    base["extrapolated_s"] = round(base["seconds"] * len(s1_specs) / len(subset), 2)
    base["extrapolated_by_workflows_s"] = round(base["seconds"] * all_wf / max(1, sub_wf), 2)
    print(f"  {base}", flush=True)
    return base


async def _listing_scenarios(
    cfg: Config, stack: Stack, s1_specs: list[TenantSpec], results: dict[str, Any]
) -> dict[str, Any]:
    stack.reset_data()
    stack.insert_customers(s1_specs)
    await stack.start_workers(cfg.workers, **LISTING_ONLY)
    print(
        f"scenario 1 (listing only, definitions off): sync-all of {len(s1_specs)} customers, "
        f"{cfg.workers} workers"
    )
    s1 = await run_sync_all(stack, s1_specs, "s1")
    results["s1_sync_all"] = s1
    print("scenario 2: no-change re-sync")
    results["s2_no_change"] = await run_sync_all(stack, s1_specs, "s2")
    print("scenario 3: 1 % changed, 0.5 % added, 0.5 % deleted")
    plan = plan_churn(s1_specs, change=0.01, add=0.005, delete=0.005)
    churn = await apply_churn(stack, plan)
    s3 = await run_sync_all(stack, s1_specs, "s3")
    s3["churn"] = churn
    s3["changes_expected"] = sum(churn.values())
    s3["rows_equal_changes"] = (
        s3["db_workflow_rows"]["updated"] == churn["changed"]
        and s3["db_workflow_rows"]["inserted"] == churn["added"]
        and s3["db_workflow_rows"]["deleted"] == churn["deleted"]
    )
    results["s3_churn"] = s3
    print(f"  churn applied {churn}; rows equal changes: {s3['rows_equal_changes']}")
    return s1


async def _scaling(
    cfg: Config, stack: Stack, specs: list[TenantSpec], s1: dict[str, Any], started: float
) -> list[dict[str, Any]]:
    notes = cfg.notes
    scaling: list[dict[str, Any]] = []
    # Cheapest first; a point is skipped when its estimate (scenario 1's time scaled by
    # customers, / workers) would overrun the budget - the report says so.
    per_worker_n = cfg.scaling_workers_customers or cfg.customers
    points = sorted(
        {(n, cfg.workers) for n in cfg.scaling_sizes}
        | {(per_worker_n, w) for w in cfg.scaling_workers},
        key=lambda p: (p[0] / p[1] ** 0.5, p[1]),
    )
    for n, w in points:
        if (n, w) == (cfg.customers, cfg.workers):
            scaling.append({"customers": n, "workers": w, **_point(s1)})
            continue
        estimate = 12 + s1["wall_s"] * n / cfg.customers * cfg.workers / min(w, 2)
        estimate += 0.01 * sum(1 for sp in specs[:n] if sp.name not in stack.tenants)
        left = cfg.budget_s - (time.monotonic() - started)
        if estimate > left:
            notes.append(
                f"scaling point {n} customers x {w} workers skipped: estimated "
                f"{estimate:.0f} s > {left:.0f} s left of the {cfg.budget_s:.0f} s budget"
            )
            print(f"  skipping {n} x {w}: estimate {estimate:.0f} s > {left:.0f} s left")
            continue
        print(f"scenario 6: {n} customers, {w} workers")
        stack.stop_workers()
        missing = [sp for sp in specs[:n] if sp.name not in stack.tenants]
        if missing:
            await stack.add_tenants(missing)
        stack.reset_data()
        stack.insert_customers(specs[:n])
        await stack.start_workers(w, **LISTING_ONLY)
        try:
            r = await run_sync_all(stack, specs[:n], f"scale-{n}x{w}", timeout=max(30.0, left))
        except Exception as exc:
            notes.append(f"scaling point {n} x {w} failed: {exc!r}"[:1000])
            continue
        scaling.append({"customers": n, "workers": w, **_point(r)})
    return scaling


_DEF_KEYS = (
    "customers",
    "customers_done",
    "succeeded",
    "failed",
    "workflows",
    "wall_s",
    "zuora_requests",
    "zuora_pages",
    "zuora_export_requests",
    "zuora_versions_requests",
    "worker_cpu_s_total",
    "worker_peak_rss_mb_max",
    "postgres_cpu_s",
    "load_avg_1m_at_end",
)


def _def_figures(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: r[k] for k in _DEF_KEYS}
    out["sandbox_cpu_s"] = r["processes"].get("sandbox", {}).get("cpu_s")
    out.update(report.cpu_costs(r))
    return out


async def _definitions_scenario(
    cfg: Config, stack: Stack, s1_specs: list[TenantSpec]
) -> dict[str, Any]:
    """Workflow definitions (issue 11): the same customers synced twice from an empty database,
    listing only (definitions off) and with definitions (the product's default), each first
    sync followed by a no-change re-sync. The difference of the first syncs is what fetching
    and storing the definitions costs; the re-syncs show what they cost once stored (no export
    asked). Every k-th customer of scenario 1 (``definitions_every``); with k > 1 the cost is
    extrapolated to scenario 1's workflows by workflow count, and labelled so."""
    every = max(1, cfg.definitions_every)
    sample = s1_specs[::every]
    sample_wf = sum(s.workflow_count for s in sample)
    all_wf = sum(s.workflow_count for s in s1_specs)
    print(
        f"definitions: {len(sample)} of {len(s1_specs)} customers (every {every}th), "
        f"{sample_wf} workflows, listing only then with definitions"
    )
    runs: dict[str, dict[str, Any]] = {}
    for mode, env in (("listing_only", LISTING_ONLY), ("with_definitions", {})):
        stack.reset_data()
        stack.insert_customers(sample)
        # Workers already running as wanted (scenario 1's, listing only) are kept: fewer restarts.
        if not stack.workers or stack.worker_env != env or len(stack.workers) != cfg.workers:
            await stack.start_workers(cfg.workers, **env)
        first = await run_sync_all(stack, sample, f"defs-first-{mode}", timeout=1500.0)
        resync = await run_sync_all(stack, sample, f"defs-resync-{mode}", timeout=600.0)
        runs[f"first_sync_{mode}"] = _def_figures(first)
        runs[f"resync_{mode}"] = _def_figures(resync)
        with stack.connect() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM workflow_definitions),"
                " (SELECT count(*) FROM workflow_tasks), (SELECT count(*) FROM workflow_linkages)"
            ).fetchone()
        assert row is not None
        runs[f"stored_{mode}"] = {"definitions": row[0], "tasks": row[1], "linkages": row[2]}
    with_defs, without = runs["first_sync_with_definitions"], runs["first_sync_listing_only"]
    cost = {
        key: round(with_defs[key] - without[key], 2)
        for key in (
            "wall_s",
            "zuora_requests",
            "zuora_export_requests",
            "worker_cpu_s_total",
            "postgres_cpu_s",
        )
    }
    cost["sandbox_cpu_s"] = round(
        (with_defs["sandbox_cpu_s"] or 0) - (without["sandbox_cpu_s"] or 0), 2
    )
    cost["worker_cpu_s_per_1000_workflows"] = round(
        cost["worker_cpu_s_total"] * 1000 / max(1, sample_wf), 2
    )
    scale = all_wf / max(1, sample_wf)
    result: dict[str, Any] = {
        "every": every,
        "sample_customers": len(sample),
        "sample_workflows": sample_wf,
        "customers": len(s1_specs),
        "workflows": all_wf,
        "measured_on_all": every == 1,
        **runs,
        "first_sync_cost": cost,
    }
    if every > 1:
        result["first_sync_cost_extrapolated"] = {
            "factor": round(scale, 3),
            "zuora_export_requests": round(cost["zuora_export_requests"] * scale),
            "wall_s": round(cost["wall_s"] * scale, 1),
            "worker_cpu_s_total": round(cost["worker_cpu_s_total"] * scale, 1),
        }
    print(f"  definitions' first-sync cost on the sample: {cost}", flush=True)
    return result


async def _read_scenarios(
    cfg: Config,
    stack: Stack,
    created: list[TenantSpec],
    reader: TenantSpec,
    results: dict[str, Any],
) -> None:
    print("scenario 4: customers created over HTTP -> readable")
    if stack.api is None:
        await stack.start_api()
    results["s4_created_readable"] = await created_to_readable(stack, created)
    await created_to_readable(stack, [reader], spacing=0)
    url = f"{stack.api_url}/customers/{reader.customer_id}/workflows?page_size=50"
    print("scenario 5: read API under bounded load (separate process)")
    closed = run_loadgen(
        url,
        stack.api_key,
        mode="closed",
        requests=cfg.load_requests,
        concurrency=cfg.load_concurrency,
        max_seconds=30 if cfg.name == "full" else 6,
    )
    print(f"  closed loop: {closed}", flush=True)
    rate = run_loadgen(
        url,
        stack.api_key,
        mode="rate",
        rate=cfg.load_rate,
        requests=int(cfg.load_rate * (10 if cfg.name == "full" else 2)),
        concurrency=cfg.load_concurrency,
        max_seconds=15 if cfg.name == "full" else 4,
    )
    print(f"  open loop at {cfg.load_rate:.0f} req/s: {rate}", flush=True)
    results["s5_read_api"] = {"closed_loop": closed, "fixed_rate": rate}
    print("scenario 5b: read API (wrk) against pgbench of the same SQL")
    try:
        results["s5_read_ceiling"] = await asyncio.to_thread(
            read_api.measure,
            workflows=cfg.reader_workflows,
            seconds=10 if cfg.name == "full" else 3,
            api_workers=int(os.environ.get("BENCH_API_WORKERS", "2")),
        )
        print(f"  {results['s5_read_ceiling']}", flush=True)
    except Exception as exc:  # wrk / pgbench missing, or a failed start: report, keep the rest
        cfg.notes.append(f"scenario 5b failed: {exc!r}"[:1000])
        print(f"  scenario 5b FAILED: {exc!r}", flush=True)


def _point(r: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "workflows",
        "wall_s",
        "workflows_per_s",
        "zuora_pages",
        "worker_cpu_s_total",
        "worker_peak_rss_mb_max",
        "customers_done",
    )
    return {k: r[k] for k in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="the small CI variant")
    parser.add_argument("--latency-ms", type=float, default=None, help="sandbox latency")
    parser.add_argument("--customers", type=int, default=None, help="scenario 1 size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        type=lambda v: {x.strip() for x in v.split(",") if x.strip()},
        default=None,
        help=f"comma-separated sections to run ({', '.join(SECTIONS)}); their figures replace "
        "those sections in the existing results file, the others are kept (and say when they "
        "were measured)",
    )
    parser.add_argument(
        "--definitions-every",
        type=int,
        default=None,
        help="definitions scenario on every k-th customer of scenario 1 (1: all, measured)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="WORKER_MAX_IN_FLIGHT of the bench's workers (full: 32, smoke: 8); the floor runs "
        "at workers x this many tenants at once",
    )
    args = parser.parse_args()
    if args.only is not None and not args.only <= set(SECTIONS):
        parser.error(f"--only: unknown section(s) {sorted(args.only - set(SECTIONS))}")
    cfg = SMOKE if args.smoke else FULL
    if args.latency_ms is not None:
        cfg.latency_ms = args.latency_ms
    if args.customers is not None:
        cfg.customers = args.customers
        cfg.scaling_sizes = sorted({*cfg.scaling_sizes, args.customers})
    if args.max_in_flight is not None:
        cfg.max_in_flight = max(1, args.max_in_flight)
    if args.definitions_every is not None:
        cfg.definitions_every = max(1, args.definitions_every)
    args.out.mkdir(parents=True, exist_ok=True)
    keep = os.environ.get("BENCH_KEEP_LOGS")
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="zws-bench-"))
    print(f"benchmark '{cfg.name}' (logs in {workdir})", flush=True)
    try:
        results = asyncio.run(run(cfg, workdir, args.only))
    except Exception:
        traceback.print_exc()
        for log in sorted(workdir.glob("*.log")):
            print(f"===== {log.name} (tail) =====\n{log.read_text(errors='replace')[-2500:]}")
        return 1
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)  # logs are kept on failure or on request
    if args.only is not None:
        results = report.merge_sections(results, args.out)
    paths = report.write(results, args.out, plot_png=not args.smoke)
    print(report.markdown(results))
    print("wrote " + ", ".join(str(p) for p in paths))
    print(
        f"total: {results['runtime_s']} s ({results['runtime_s'] / 60:.1f} min) for sections "
        f"{', '.join(results.get('sections', []))}; per section {results.get('section_seconds')};"
        f" load avg at end {results.get('load_avg_at_end')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
