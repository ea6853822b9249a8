# ruff: noqa: T201 - prints figures
"""Profile the sync path (pyinstrument): one customer with 5,000 workflows, synced in-process by
WorkflowSyncEngine against the sandbox process and PostgreSQL - a first sync (5,000 inserts) and
a no-change re-sync. Writes bench/results/profile-*.txt and returns the timings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pyinstrument import Profiler
from sync_engine import SyncRequest, SyncSettings, WorkflowSyncEngine
from workflow_store.crypto import SecretBox
from workflow_store.db import create_engine

from bench.stack import Stack, TenantSpec


async def profile_sync(
    stack: Stack, spec: TenantSpec, out_dir: Path, *, repeats: int = 3
) -> dict[str, Any]:
    assert spec.customer_id is not None
    db = create_engine(stack.database_url)
    engine = WorkflowSyncEngine(
        db,
        SecretBox([stack.encryption_key]),
        allowed_base_urls=[stack.sandbox_url],
        settings=SyncSettings(),
    )
    timings: dict[str, Any] = {"workflows": spec.workflow_count}
    try:
        for label in ("first_sync", "no_change_resync"):
            profiler = Profiler(interval=0.005, async_mode="enabled")
            best = None
            for i in range(1 if label == "first_sync" else repeats):
                if i == 0:
                    profiler.start()
                t = time.perf_counter()
                outcome = await engine.sync_customer(
                    SyncRequest(customer_id=spec.customer_id, reason="manual")
                )
                elapsed = time.perf_counter() - t
                if i == 0:
                    profiler.stop()
                best = elapsed if best is None else min(best, elapsed)
                assert outcome.status.value == "succeeded", outcome
            timings[f"{label}_s"] = round(best or 0.0, 3)
            text = profiler.output_text(unicode=False, color=False, show_all=True)
            (out_dir / f"profile-{label}.txt").write_text(text)
            print(f"  [profile] {label}: {best:.3f} s", flush=True)
    finally:
        await db.dispose()
    return timings
