from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from event_bus import KafkaPublisher, KafkaSettings, ensure_topics
from event_bus.testing import consume_records
from sync_messages import SyncAllCustomers, SyncReason
from sync_messages.topics import SYNC_ALL
from sync_scheduler import SchedulerSettings, SyncAllEmitter
from sync_scheduler.app import build_scheduler
from sync_scheduler.emitter import kafka_publish

SLOT_TIME = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


@pytest.mark.integration
async def test_two_replicas_same_slot_publish_the_same_id(kafka_settings: KafkaSettings) -> None:
    await ensure_topics(kafka_settings, [SYNC_ALL])
    publishers = [KafkaPublisher(kafka_settings, component=f"scheduler-{i}") for i in range(2)]
    try:
        emitters = [SyncAllEmitter(kafka_publish(p)) for p in publishers]
        results = await asyncio.gather(*(e.emit(SyncReason.NIGHTLY, SLOT_TIME) for e in emitters))
    finally:
        for publisher in publishers:
            await publisher.close()
    assert results == [True, True]
    records = await consume_records(kafka_settings.bootstrap_servers, [SYNC_ALL], expected=2)
    messages = [SyncAllCustomers.model_validate_json(r.value) for r in records]
    assert len(messages) == 2
    assert (
        messages[0].id
        == messages[1].id
        == SyncAllCustomers.for_slot(SyncReason.NIGHTLY, "2026-11-29T02:00Z").id
    )
    # Keyed by the id: both copies land in one partition, so one consumer dedupes them in order.
    assert records[0].partition == records[1].partition
    assert {r.key for r in records} == {messages[0].id.encode()}


def test_scheduler_jobs() -> None:
    async def publish(message: SyncAllCustomers) -> None:  # pragma: no cover - never fired
        raise AssertionError

    settings = SchedulerSettings.model_validate({"timezone": "Europe/Berlin"})
    scheduler = build_scheduler(settings, SyncAllEmitter(publish))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"sync-all-hourly", "sync-all-nightly"}
    nightly = jobs["sync-all-nightly"]
    assert nightly.args[1] == "nightly"
    assert str(nightly.trigger.timezone) == "Europe/Berlin"
    assert scheduler._job_defaults["coalesce"] is True
    assert scheduler._job_defaults["max_instances"] == 1
    assert scheduler._job_defaults["misfire_grace_time"] == 600


@pytest.mark.e2e
@pytest.mark.parametrize("broker_up", [True, False], ids=["broker-up", "broker-down"])
def test_main_exits_cleanly_on_sigterm(
    broker_up: bool, kafka_bootstrap: str, tmp_path: Path
) -> None:
    from event_bus.local_broker import free_port

    bootstrap = kafka_bootstrap if broker_up else f"127.0.0.1:{free_port()}"
    ready = tmp_path / "scheduler.ready"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LOG_LEVEL": "INFO",
        "METRICS_PORT": "0",
        "READY_FILE": str(ready),
    }
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_scheduler.main"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():  # written once the jobs are planned, Kafka up or not
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no ready file:\n{log.read_text()}"
            time.sleep(0.1)
        time.sleep(0.5)  # let the topic creation run (or fail) in the background
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "Scheduler stopped" in output
    assert "Traceback" not in output
    assert not ready.exists()  # removed when stopping


def test_console_script_is_registered() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="zuora-sync-scheduler")
    assert script.value == "sync_scheduler.main:main"
