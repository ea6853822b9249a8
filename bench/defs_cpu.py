# ruff: noqa: T201 - prints figures
"""CPU of the definitions path, in-process: one customer with N workflows synced by
WorkflowSyncEngine against the sandbox process and PostgreSQL, first sync with definitions,
then the same with definitions disabled (the difference is what definitions cost), plus the
time spent in the export fetch+parse and in ``store_definitions``.

    uv run python -m bench.defs_cpu [--workflows 1000] [--repeats 2]

Process CPU (``time.process_time``) of this process only: the sandbox and PostgreSQL are other
processes. Each repeat starts from an empty database; the sandbox's definitions cache is warm
after the first repeat (its generation cost is the sandbox's, not ours).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sync_engine.adapters.sql as step_module
from pyinstrument import Profiler
from sync_engine import DefinitionSettings, SyncRequest, SyncSettings, WorkflowSyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine

from bench.stack import Stack, TenantSpec


def _timed(fn: Callable[..., Awaitable[Any]], bucket: dict[str, float], key: str) -> Any:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        try:
            return await fn(*args, **kwargs)
        finally:
            bucket[key] = bucket.get(key, 0.0) + time.process_time() - t

    return wrapper


async def measure(workflows: int, repeats: int, profile: Path | None = None) -> dict[str, Any]:
    stack = Stack(workdir=Path(tempfile.mkdtemp(prefix="zws-defs-")), latency_ms=0.0)
    out: dict[str, Any] = {"workflows": workflows}
    buckets: dict[str, float] = {}
    profile_text = ""
    # store_definitions as the SQL adapter calls it: CPU of this process while it runs (it
    # awaits the database: the driver's work is included, PostgreSQL's is not).
    original = getattr(step_module, "store_definitions")  # noqa: B009 - not re-exported
    setattr(step_module, "store_definitions", _timed(original, buckets, "store"))  # noqa: B010
    try:
        await stack.start()
        spec = TenantSpec("defs", workflows, 4242)
        await stack.add_tenants([spec])
        db = create_engine(stack.database_url)
        try:
            for enabled in (True, False):
                label = "with_definitions" if enabled else "without_definitions"
                engine = WorkflowSyncEngine(
                    db,
                    SecretBox([stack.encryption_key]),
                    allowed_base_urls=[stack.sandbox_url],
                    settings=SyncSettings(),
                    definition_settings=DefinitionSettings(enabled=enabled),
                )
                best: dict[str, float] | None = None
                for _ in range(repeats):
                    stack.reset_data()
                    stack.insert_customers([spec])
                    assert spec.customer_id is not None
                    buckets.clear()
                    profiler = Profiler(interval=0.002) if profile is not None and enabled else None
                    if profiler is not None:
                        profiler.start()
                    t, c = time.perf_counter(), time.process_time()
                    outcome = await engine.sync_customer(
                        SyncRequest(customer_id=spec.customer_id, reason="manual")
                    )
                    if profiler is not None:
                        profiler.stop()
                        profile_text = profiler.output_text(unicode=False, color=False)
                    figs = {
                        "wall_s": time.perf_counter() - t,
                        "cpu_s": time.process_time() - c,
                        "store_cpu_s": buckets.get("store", 0.0),
                    }
                    assert outcome.status.value == "succeeded", outcome
                    if best is None or figs["cpu_s"] < best["cpu_s"]:
                        best = figs
                assert best is not None
                out[label] = {k: round(v, 3) for k, v in best.items()}
                print(f"  {label}: {out[label]}", flush=True)
        finally:
            await db.dispose()
    finally:
        stack.close()
    out["profile_text"] = profile_text
    w, wo = out["with_definitions"], out["without_definitions"]
    per = 1000 / workflows
    out["definitions_cpu_s_per_1000_workflows"] = round((w["cpu_s"] - wo["cpu_s"]) * per, 2)
    out["store_cpu_s_per_1000_workflows"] = round(w["store_cpu_s"] * per, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument text output")
    args = parser.parse_args()
    out = asyncio.run(measure(args.workflows, args.repeats, args.profile))
    text = out.pop("profile_text")
    if args.profile is not None:
        args.profile.write_text(text)
    print(out)


if __name__ == "__main__":
    main()
