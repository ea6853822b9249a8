"""Metrics and logs of the worker, checked after real syncs.

- the engine against the Zuora sandbox over HTTP, with the worker's metrics hooks and JSON logs;
- the handler counting retries and dead letters;
- the whole worker app on the local Kafka broker: /metrics scraped over HTTP after a sync;
- the AsyncAPI document generated from the worker's wiring.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from event_bus.broker import KafkaPublisher
from event_bus.local_broker import free_port
from event_bus.settings import KafkaSettings
from faststream.kafka import TestKafkaBroker
from observability.logging import configure_logging
from observability.metrics import MetricsSettings, WorkerMetrics
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine
from sync_engine import (
    FailureKind,
    RunStatus,
    SyncOutcome,
    SyncRequest,
    SyncSettings,
    WorkflowSyncEngine,
)
from sync_engine.outcome import SyncStats
from sync_messages import SyncCustomerWorkflows, topics
from sync_worker.app import build_app
from sync_worker.asyncapi import docs_app
from sync_worker.handlers import SyncCommandHandler
from sync_worker.metrics import engine_hooks
from sync_worker.settings import SyncWorkerSettings, WorkerSettings
from workflow_store.crypto import SecretBox
from workflow_store.customers import add_customer
from workflow_store.db import create_engine, create_session_factory
from workflow_store.migrate import upgrade_async
from workflow_store.settings import StoreSettings
from zuora_sandbox import SandboxServer, Tenant


@dataclass
class Db:
    url: str
    engine: AsyncEngine
    key: str

    @property
    def box(self) -> SecretBox:
        return SecretBox([self.key])

    async def add_customer_for(self, tenant: Tenant, base_url: str) -> uuid.UUID:
        async with create_session_factory(self.engine)() as session, session.begin():
            customer = await add_customer(
                session,
                self.box,
                name=tenant.name,
                base_url=base_url,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret,
            )
            return customer.id


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Db]:
    await upgrade_async(postgres_url)
    engine = create_engine(postgres_url)
    try:
        yield Db(postgres_url, engine, SecretBox.generate_key())
    finally:
        await engine.dispose()


def fast_sync_settings() -> SyncSettings:
    return SyncSettings(
        zuora_max_retries=1, zuora_backoff_base_seconds=0.01, zuora_backoff_cap_seconds=0.05
    )


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def json_logs() -> Any:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("sync-worker", json=True, level="INFO", stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.integration
async def test_engine_hooks_fill_the_metrics_and_logs_are_json_after_a_sync(
    db: Db, zuora_sandbox: SandboxServer, json_logs: io.StringIO
) -> None:
    tenant = zuora_sandbox.add_tenant(f"metrics-{uuid.uuid4().hex[:8]}", workflow_count=120, seed=7)
    cid = await db.add_customer_for(tenant, zuora_sandbox.base_url)
    metrics = WorkerMetrics(CollectorRegistry())
    on_outcome, on_zuora_request = engine_hooks(metrics)
    engine = WorkflowSyncEngine(
        db.engine,
        db.box,
        allowed_base_urls=(zuora_sandbox.base_url,),
        settings=fast_sync_settings(),
        on_outcome=on_outcome,
        on_zuora_request=on_zuora_request,
    )
    r = metrics.registry

    ok = await engine.sync_customer(SyncRequest(customer_id=cid, command_id="cmd-1"))
    assert ok.status is RunStatus.SUCCEEDED and ok.stats.pages == 3
    assert sample(r, "zws_syncs_total", status="succeeded", error_kind="") == 1
    assert sample(r, "zws_sync_duration_seconds_count", status="succeeded") == 1
    assert sample(r, "zws_workflows_written_total", change="created") == 120
    assert sample(r, "zws_zuora_requests_total", endpoint="token", status="200") == 1
    assert sample(r, "zws_zuora_requests_total", endpoint="list", status="200") == 3
    assert sample(r, "zws_zuora_request_duration_seconds_count", endpoint="list") == 3

    tenant.faults.fail_pages = [2]  # 500 on page 2, retried once, then a transient failure
    failed = await engine.sync_customer(SyncRequest(customer_id=cid, command_id="cmd-2"))
    assert failed.status is RunStatus.FAILED and failed.error_kind is FailureKind.TRANSIENT
    assert sample(r, "zws_syncs_total", status="failed", error_kind="transient") == 1
    assert sample(r, "zws_zuora_requests_total", endpoint="list", status="500") == 2
    assert sample(r, "zws_workflows_written_total", change="created") == 120  # nothing more

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert all({"ts", "level", "logger", "service", "message"} <= line.keys() for line in lines)
    (done,) = [line for line in lines if line["message"] == "Workflow sync completed"]
    assert done["customer_id"] == str(cid) and done["run_id"] == str(ok.run_id)
    assert done["command_id"] == "cmd-1" and done["workflows_created"] == 120
    assert done["service"] == "sync-worker" and done["logger"] == "sync_engine"
    (fail,) = [line for line in lines if line["message"] == "Workflow sync failed"]
    assert fail["run_id"] == str(failed.run_id) and fail["error_kind"] == "transient"
    assert fail["zuora_request_id"]  # the sandbox's Zuora-Request-Id of the failed page
    gave_up = [line for line in lines if "giving up" in str(line["message"])]
    assert gave_up and gave_up[0]["zuora_request_id"] == fail["zuora_request_id"]
    assert tenant.client_secret not in json_logs.getvalue()


class _Ledger:
    async def seen(self, consumer: str, message_id: str) -> bool:
        return False

    async def mark(self, consumer: str, message_id: str) -> None:
        return None

    async def settle(self, consumer: str, message_id: str, **kwargs: Any) -> None:
        return None

    async def flush(self, key: str) -> int:
        return 0


async def test_handler_counts_retries_and_dead_letters() -> None:
    kinds = [FailureKind.TRANSIENT, FailureKind.PERMANENT]

    async def sync_customer(request: SyncRequest) -> SyncOutcome:
        return SyncOutcome(
            customer_id=request.customer_id,
            status=RunStatus.FAILED,
            run_id=uuid.uuid4(),
            stats=SyncStats(),
            error_kind=kinds.pop(0),
            error_message="boom",
        )

    async def publish(topic: str, message: BaseModel, *, key: str | None) -> None:
        return None

    async def no_customers() -> list[uuid.UUID]:
        return []

    metrics = WorkerMetrics(CollectorRegistry())
    handler = SyncCommandHandler(
        sync_customer=sync_customer,
        active_customer_ids=no_customers,
        ledger=_Ledger(),
        publish=publish,
        settings=WorkerSettings(max_attempts=3),
        metrics=metrics,
    )
    command = SyncCustomerWorkflows(customer_id=uuid.uuid4(), reason="manual")
    await handler.on_command(command)  # transient: re-queued
    await handler.on_command(command.model_copy(update={"id": "other"}))  # permanent: DLQ
    assert sample(metrics.registry, "zws_sync_retries_scheduled_total") == 1
    assert sample(metrics.registry, "zws_sync_dead_lettered_total") == 1


async def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, timeout=5)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


@pytest.mark.integration
async def test_worker_serves_metrics_over_http_after_a_sync_from_kafka(
    db: Db, zuora_sandbox: SandboxServer, kafka_settings: KafkaSettings
) -> None:
    tenant = zuora_sandbox.add_tenant(f"worker-{uuid.uuid4().hex[:8]}", workflow_count=30, seed=3)
    cid = await db.add_customer_for(tenant, zuora_sandbox.base_url)
    port = free_port()
    store = StoreSettings.model_validate(
        {
            "DATABASE_URL": db.url,
            "ENCRYPTION_KEYS": db.key,
            "ZUORA_ALLOWED_BASE_URLS": zuora_sandbox.base_url,
            "APP_ENV": "test",
        }
    )
    settings = SyncWorkerSettings(
        store=store,
        kafka=kafka_settings,
        worker=WorkerSettings(concurrency=1, lag_interval_seconds=0.2),
        sync=fast_sync_settings(),
        metrics=MetricsSettings(port=port),
    )
    app, _broker, runtime = build_app(settings, metrics=WorkerMetrics(CollectorRegistry()))
    await app.start()
    publisher = KafkaPublisher(kafka_settings, component="test")
    try:
        command = SyncCustomerWorkflows(customer_id=cid, reason="manual")
        await publisher.publish_message(topics.SYNC_COMMANDS, command, key=str(cid))
        url = f"http://127.0.0.1:{port}/metrics"
        succeeded = ("zws_syncs_total", (("error_kind", ""), ("status", "succeeded")))
        lag_key = "zws_consumer_lag"
        deadline = time.monotonic() + 60  # a bound on waiting, not a timing assertion
        while True:
            samples = await _scrape(url)
            lag = {
                labels: value
                for (name, labels), value in samples.items()
                if name == lag_key and ("topic", topics.SYNC_COMMANDS) in labels
            }
            if samples.get(succeeded) == 1 and lag and sum(lag.values()) == 0:
                break
            assert time.monotonic() < deadline, f"no sync/lag in /metrics: {samples}"
            await asyncio.sleep(0.2)
    finally:
        await publisher.close()
        await app.stop()
    created = ("zws_workflows_written_total", (("change", "created"),))
    assert samples[created] == 30
    assert samples[("zws_zuora_requests_total", (("endpoint", "list"), ("status", "200")))] == 1
    assert ("zws_sync_retries_scheduled_total", ()) in samples
    assert ("zws_sync_dead_lettered_total", ()) in samples
    assert runtime.metrics.registry.get_sample_value("zws_syncs_total", dict(succeeded[1])) == 1
    with pytest.raises(httpx.ConnectError):  # the server stops with the app
        await _scrape(url)


async def test_a_malformed_message_is_still_skipped_with_the_documented_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = SyncWorkerSettings(
        store=StoreSettings.model_validate({"DATABASE_URL": "sqlite+aiosqlite:///:memory:"}),
        kafka=KafkaSettings.model_validate({"bootstrap_servers": "127.0.0.1:9"}),
        metrics=MetricsSettings(port=0),
    )
    _app, broker, runtime = build_app(settings, metrics=WorkerMetrics(CollectorRegistry()))

    async def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a malformed message reached the handler")

    runtime._handler = SyncCommandHandler(  # what start() would set, with fakes
        sync_customer=never,
        active_customer_ids=never,
        ledger=_Ledger(),
        publish=never,
        settings=WorkerSettings(),
    )
    dead_letters: list[Any] = []

    class _Publisher:
        async def publish_message(self, topic: str, message: Any, *, key: str | None) -> None:
            dead_letters.append((topic, message))

    runtime._publisher = _Publisher()  # type: ignore[assignment]
    async with TestKafkaBroker(broker) as test_broker:
        # Neither JSON nor a command: dead-lettered (acked), never an error in FastStream.
        await test_broker.publish(b"\xff not json", topics.SYNC_COMMANDS)
        await test_broker.publish({"type": "Nope"}, topics.SYNC_RETRY)
    skipped = [r for r in caplog.records if r.getMessage() == "Unprocessable message dead-lettered"]
    assert [r.topic for r in skipped] == [topics.SYNC_COMMANDS, topics.SYNC_RETRY]  # type: ignore[attr-defined]
    assert [(t, m.source_topic) for t, m in dead_letters] == [
        (topics.SYNC_DLQ, topics.SYNC_COMMANDS),
        (topics.SYNC_DLQ, topics.SYNC_RETRY),
    ]


def test_asyncapi_document_has_every_topic_with_its_message_models() -> None:
    schema = docs_app().schema.to_specification().to_jsonable()
    addresses = {channel["address"] for channel in schema["channels"].values()}
    assert addresses == set(topics.ALL_TOPICS)
    models = set(schema["components"]["schemas"])
    for model in (
        "SyncCustomerWorkflows",
        "RetrySync",
        "SyncAllCustomers",
        "CustomerCreated",
        "CustomerUpdated",
        "CustomerDeleted",
        "SyncDeadLettered",
        "UnprocessableMessage",
        "WorkflowSyncCompleted",
        "WorkflowSyncFailed",
        "WorkflowsChanged",
    ):
        assert model in models
    command = schema["components"]["schemas"]["SyncCustomerWorkflows"]
    assert command["properties"]["customer_id"]["description"]
    actions = {op["action"] for op in schema["operations"].values()}
    assert actions == {"receive", "send"}
