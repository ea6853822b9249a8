"""The scheduler's /metrics: sync-all commands emitted per schedule, served over HTTP by run()."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import httpx
import pytest
from event_bus.local_broker import free_port
from event_bus.settings import KafkaSettings
from observability.metrics import MetricsSettings, SchedulerMetrics
from prometheus_client import CollectorRegistry
from sync_messages import SyncAllCustomers, SyncReason
from sync_scheduler import SchedulerSettings, SyncAllEmitter
from sync_scheduler.app import fire, run
from sync_scheduler.slots import make_trigger


async def test_fire_counts_published_and_given_up_commands() -> None:
    async def publish(message: SyncAllCustomers) -> None:
        return None

    async def unreachable(message: SyncAllCustomers) -> None:
        raise ConnectionError("kafka down")

    async def no_sleep(seconds: float) -> None:
        return None

    metrics = SchedulerMetrics(CollectorRegistry())
    trigger = make_trigger("0 * * * *", "UTC")
    now = datetime(2026, 11, 29, 14, 0, 5, tzinfo=UTC)
    assert await fire(SyncAllEmitter(publish), SyncReason.HOURLY, trigger, now=now, metrics=metrics)
    failing = SyncAllEmitter(unreachable, grace_seconds=0, sleep=no_sleep)
    assert not await fire(failing, SyncReason.NIGHTLY, trigger, now=now, metrics=metrics)
    r = metrics.registry
    published = {"reason": "hourly", "result": "published"}
    assert r.get_sample_value("zws_sync_all_emitted_total", published) == 1
    gave_up = {"reason": "nightly", "result": "gave_up"}
    assert r.get_sample_value("zws_sync_all_emitted_total", gave_up) == 1
    last = r.get_sample_value("zws_sync_all_last_emitted_timestamp_seconds", {"reason": "hourly"})
    assert last is not None and abs(last - time.time()) < 60


@pytest.mark.integration  # the metrics endpoint over real HTTP
async def test_run_serves_metrics_until_stopped() -> None:
    port = free_port()
    settings = SchedulerSettings.model_validate(
        {
            "kafka": KafkaSettings.model_validate(
                {"bootstrap_servers": f"127.0.0.1:{free_port()}"}
            ),
            "metrics": MetricsSettings(port=port),
        }
    )
    metrics = SchedulerMetrics(CollectorRegistry())
    metrics.observe_emit("hourly", published=True)
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop, metrics=metrics))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 10
            while True:
                try:
                    response = await client.get(url, timeout=2)
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "metrics server did not start"
                    await asyncio.sleep(0.05)
        assert 'zws_sync_all_emitted_total{reason="hourly",result="published"} 1.0' in (
            response.text
        )
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
    async with httpx.AsyncClient() as client:
        try:
            await client.get(url, timeout=2)
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the metrics server outlived the scheduler")
