"""The metric families, the snapshot gauge and the /metrics HTTP server."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from observability.metrics import (
    ApiMetrics,
    MetricsSettings,
    SchedulerMetrics,
    SnapshotGauge,
    WorkerMetrics,
    new_registry,
    start_metrics_server,
)
from prometheus_client import CollectorRegistry, generate_latest


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_worker_metrics_count_syncs_requests_retries_and_dead_letters() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    r = metrics.registry
    assert value(r, "zws_syncs_total", status="succeeded", error_kind="") == 0  # pre-created
    metrics.observe_sync(
        status="succeeded", error_kind=None, duration_seconds=0.3, created=3, updated=1
    )
    metrics.observe_sync(status="failed", error_kind="transient", duration_seconds=1.0)
    metrics.observe_zuora_request(endpoint="list", status="200", duration_seconds=0.02)
    metrics.observe_zuora_request(endpoint="token", status="transport_error", duration_seconds=5)
    metrics.retry_scheduled()
    metrics.dead_letter()
    assert value(r, "zws_syncs_total", status="succeeded", error_kind="") == 1
    assert value(r, "zws_syncs_total", status="failed", error_kind="transient") == 1
    assert value(r, "zws_sync_duration_seconds_count", status="succeeded") == 1
    assert value(r, "zws_workflows_written_total", change="created") == 3
    assert value(r, "zws_workflows_written_total", change="updated") == 1
    assert value(r, "zws_workflows_written_total", change="deleted") == 0
    assert value(r, "zws_zuora_requests_total", endpoint="list", status="200") == 1
    assert value(r, "zws_zuora_requests_total", endpoint="token", status="transport_error") == 1
    assert value(r, "zws_zuora_request_duration_seconds_count", endpoint="list") == 1
    assert value(r, "zws_sync_retries_scheduled_total") == 1
    assert value(r, "zws_sync_dead_lettered_total") == 1


def test_snapshot_gauge_replaces_the_whole_set() -> None:
    registry = CollectorRegistry()
    gauge = SnapshotGauge("zws_test_lag", "Lag.", ["topic", "partition"], registry=registry)
    gauge.replace({("t", "0"): 5, ("t", "1"): 0})
    assert value(registry, "zws_test_lag", topic="t", partition="0") == 5
    gauge.replace({("t", "1"): 2})
    assert value(registry, "zws_test_lag", topic="t", partition="0") is None  # revoked: gone
    assert value(registry, "zws_test_lag", topic="t", partition="1") == 2


def test_freshness_is_an_age_computed_at_scrape_time() -> None:
    now = [1_000.0]
    metrics = ApiMetrics(CollectorRegistry(), clock=lambda: now[0])
    metrics.freshness.replace({("c-1",): 900.0})
    age = "zws_customer_last_success_age_seconds"
    assert value(metrics.customer_registry, age, customer_id="c-1") == 100
    now[0] = 1_060.0
    assert value(metrics.customer_registry, age, customer_id="c-1") == 160


def test_per_customer_series_only_in_the_per_customer_exposition() -> None:
    metrics = ApiMetrics(CollectorRegistry())
    metrics.freshness.replace({("c-1",): 900.0})
    assert b"c-1" not in metrics.exposition()
    assert b"zws_outbox_pending" in metrics.exposition()
    assert b'customer_id="c-1"' in metrics.exposition(per_customer=True)


def test_scheduler_metrics() -> None:
    metrics = SchedulerMetrics(CollectorRegistry())
    metrics.observe_emit("hourly", published=True)
    metrics.observe_emit("nightly", published=False)
    r = metrics.registry
    assert value(r, "zws_sync_all_emitted_total", reason="hourly", result="published") == 1
    assert value(r, "zws_sync_all_emitted_total", reason="nightly", result="gave_up") == 1
    assert (value(r, "zws_sync_all_last_emitted_timestamp_seconds", reason="hourly") or 0) > 0


def test_new_registry_has_process_metrics_and_registries_are_independent() -> None:
    one, two = WorkerMetrics(new_registry()), WorkerMetrics(new_registry())
    one.retry_scheduled()
    assert value(two.registry, "zws_sync_retries_scheduled_total") == 0
    text = generate_latest(one.registry).decode()
    assert "process_cpu_seconds_total" in text or "python_info" in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration  # a real HTTP server on a loopback port
def test_metrics_server_serves_the_registry_and_port_zero_disables_it() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.dead_letter()
    assert start_metrics_server(metrics.registry, default_port=0) is None
    server = start_metrics_server(
        metrics.registry, default_port=9100, settings=MetricsSettings(port=_free_port())
    )
    assert server is not None and server.host == "127.0.0.1"
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
        assert "zws_sync_dead_lettered_total 1.0" in body
    finally:
        server.close()


@pytest.mark.integration  # a real HTTP server on a loopback port
def test_a_taken_port_is_a_warning_not_a_crash() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        server = start_metrics_server(
            CollectorRegistry(), default_port=9100, settings=MetricsSettings(port=port)
        )
    assert server is None


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "0")
    monkeypatch.setenv("METRICS_HOST", "0.0.0.0")
    settings = MetricsSettings()
    assert settings.port == 0 and settings.host == "0.0.0.0"
