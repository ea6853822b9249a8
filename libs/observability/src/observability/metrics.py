"""Prometheus metrics of the product (every name starts with ``zws_``) and their exposure.

Each process owns one :class:`~prometheus_client.CollectorRegistry` (see :func:`new_registry`)
instead of the global one, so an app factory can be called many times in one process (tests)
and each test reads a registry of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from sync_messages.vocabulary import TERMINAL_RUN_STATUSES, FailureKind, RunStatus

from observability.settings import EnvSettings

__all__ = [
    "CONTENT_TYPE_LATEST",
    "ApiMetrics",
    "MetricsServer",
    "MetricsSettings",
    "SchedulerMetrics",
    "SnapshotGauge",
    "WorkerMetrics",
    "generate_latest",
    "new_registry",
    "start_metrics_server",
]

log = logging.getLogger(__name__)

# Label values: the product's vocabulary (the contracts package: no database layer here).
SYNC_STATUSES: tuple[str, ...] = TERMINAL_RUN_STATUSES
FAILURE_KINDS: tuple[str, ...] = tuple(FailureKind)
CHANGES = ("created", "updated", "deleted")
ZUORA_ENDPOINTS = ("token", "list", "get", "export", "versions")  # zuora_client RequestEvent

# Syncs take from milliseconds (skipped) to minutes (10,000 workflows, rate limited).
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def new_registry(*, process_metrics: bool = True) -> CollectorRegistry:
    """A registry with the standard process/platform/GC collectors (as the global one has)."""
    registry = CollectorRegistry(auto_describe=True)
    if process_metrics:
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            # The default collectors are stateless readers of the process: sharing them is fine.
            registry.register(collector)
    return registry


class SnapshotGauge(Collector):
    """A labelled gauge family whose whole set of values is replaced at once.

    For values computed elsewhere (a database query, a Kafka consumer): :meth:`replace` swaps in
    the new snapshot atomically, so a scrape never sees half of one and half of another, and
    series that disappeared (a revoked partition, a deleted customer) go away. ``transform``
    turns a stored value into the exposed one at scrape time (e.g. a timestamp into an age).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str],
        *,
        registry: CollectorRegistry | None,
        transform: Callable[[float], float] | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._transform = transform
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def replace(self, values: Mapping[tuple[str, ...], float]) -> None:
        snapshot = dict(values)
        for labels in snapshot:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {labels}")
        with self._lock:
            self._values = snapshot

    def values(self) -> dict[tuple[str, ...], float]:
        with self._lock:
            return dict(self._values)

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in self.values().items():
            family.add_metric(list(labels), self._transform(value) if self._transform else value)
        yield family


class WorkerMetrics:
    """What a sync worker exposes: syncs, written workflows, Zuora requests, retries, DLQ, lag."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        self.syncs = Counter(
            "zws_syncs",
            "Sync attempts by outcome; error_kind (transient/permanent) is set for failed ones.",
            ["status", "error_kind"],
            registry=r,
        )
        self.sync_duration = Histogram(
            "zws_sync_duration_seconds",
            "Wall time of one sync attempt, by outcome.",
            ["status"],
            buckets=SYNC_BUCKETS,
            registry=r,
        )
        self.workflows_written = Counter(
            "zws_workflows_written",
            "Workflow rows written to the local store, by kind of change.",
            ["change"],
            registry=r,
        )
        self.zuora_requests = Counter(
            "zws_zuora_requests",
            "HTTP requests sent to Zuora (retries included), by endpoint and status "
            "(HTTP status code, or 'transport_error' when no response arrived).",
            ["endpoint", "status"],
            registry=r,
        )
        self.zuora_request_duration = Histogram(
            "zws_zuora_request_duration_seconds",
            "Latency of one HTTP request to Zuora, by endpoint.",
            ["endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.retries_scheduled = Counter(
            "zws_sync_retries_scheduled",
            "Transiently failed syncs re-queued on the retry topic.",
            registry=r,
        )
        self.dead_lettered = Counter(
            "zws_sync_dead_lettered",
            "Syncs sent to the dead-letter topic (permanent failure or attempts exhausted).",
            registry=r,
        )
        self.consumer_lag = SnapshotGauge(
            "zws_consumer_lag",
            "Messages not yet consumed by this process: highwater - position, per assigned "
            "partition (refreshed periodically).",
            ["topic", "partition"],
            registry=r,
        )
        # Series exist (at 0) from the start, so rate() and alerts work before the first event.
        for status in SYNC_STATUSES:
            for kind in FAILURE_KINDS if status == RunStatus.FAILED else ("",):
                self.syncs.labels(status=status, error_kind=kind)
            self.sync_duration.labels(status=status)
        for change in CHANGES:
            self.workflows_written.labels(change=change)
        for endpoint in ZUORA_ENDPOINTS:
            self.zuora_request_duration.labels(endpoint=endpoint)

    def observe_sync(
        self,
        *,
        status: str,
        error_kind: str | None,
        duration_seconds: float,
        created: int = 0,
        updated: int = 0,
        deleted: int = 0,
    ) -> None:
        kind = (error_kind or FailureKind.PERMANENT) if status == RunStatus.FAILED else ""
        self.syncs.labels(status=status, error_kind=kind).inc()
        self.sync_duration.labels(status=status).observe(max(0.0, duration_seconds))
        for change, count in (("created", created), ("updated", updated), ("deleted", deleted)):
            if count:
                self.workflows_written.labels(change=change).inc(count)

    def observe_zuora_request(self, *, endpoint: str, status: str, duration_seconds: float) -> None:
        self.zuora_requests.labels(endpoint=endpoint, status=status).inc()
        self.zuora_request_duration.labels(endpoint=endpoint).observe(max(0.0, duration_seconds))

    def retry_scheduled(self) -> None:
        self.retries_scheduled.inc()

    def dead_letter(self) -> None:
        self.dead_lettered.inc()


class ApiMetrics:
    """What the customer API exposes: outbox backlog and freshness (both refreshed per scrape).

    Series labelled by customer live in :attr:`customer_registry`, apart from the aggregates in
    :attr:`registry`, so they can be served only to an authenticated scraper (customer ids are
    not for anonymous callers).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        customer_registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else new_registry()
        self.customer_registry = (
            customer_registry if customer_registry is not None else CollectorRegistry()
        )
        r = self.registry
        self.outbox_pending = Gauge(
            "zws_outbox_pending",
            "Outbox rows not yet published to Kafka (the backlog of the outbox relay).",
            registry=r,
        )
        self.freshness = SnapshotGauge(
            "zws_customer_last_success_age_seconds",
            "Seconds since the start of each active customer's last successful sync.",
            ["customer_id"],
            registry=self.customer_registry,
            transform=lambda started: max(0.0, clock() - started),
        )
        self.outbox_parked = Counter(
            "zws_outbox_parked",
            "Outbox rows parked by this process's relay after failing OUTBOX_MAX_ATTEMPTS times "
            "while other rows were published (alert on any increase; see the README).",
            ["topic"],
            registry=r,
        )
        self.never_synced = Gauge(
            "zws_customers_never_synced",
            "Active customers without any successful sync yet.",
            registry=r,
        )
        self.refresh_failures = Counter(
            "zws_metrics_refresh_failures",
            "Scrapes whose database-backed values could not be refreshed (stale values served).",
            registry=r,
        )

    def exposition(self, *, per_customer: bool = False) -> bytes:
        """The aggregates, plus the per-customer series when ``per_customer``."""
        text = generate_latest(self.registry)
        if per_customer:
            text += generate_latest(self.customer_registry)
        return text


class SchedulerMetrics:
    """What the scheduler exposes: sync-all commands emitted per schedule."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        self.emitted = Counter(
            "zws_sync_all_emitted",
            "Scheduled sync-all commands, by schedule (reason) and result (published: Kafka "
            "acknowledged it; gave_up: Kafka stayed unreachable for the whole publish grace).",
            ["reason", "result"],
            registry=self.registry,
        )
        self.last_emitted = Gauge(
            "zws_sync_all_last_emitted_timestamp_seconds",
            "Unix time of the last sync-all command Kafka acknowledged, by schedule.",
            ["reason"],
            registry=self.registry,
        )

    def observe_emit(self, reason: str, *, published: bool) -> None:
        self.emitted.labels(reason=reason, result="published" if published else "gave_up").inc()
        if published:
            self.last_emitted.labels(reason=reason).set_to_current_time()


class MetricsSettings(EnvSettings):
    """Where a non-HTTP service (worker, scheduler) serves ``/metrics``."""

    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")

    port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the /metrics HTTP server; 0 disables it. Default: the "
        "service's own (sync-worker 9100, scheduler 9101).",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address the /metrics server binds; 0.0.0.0 in containers.",
    )


@dataclass
class MetricsServer:
    """A running ``/metrics`` HTTP server (a daemon thread)."""

    server: Any
    thread: threading.Thread
    host: str
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    registry: CollectorRegistry,
    *,
    default_port: int,
    settings: MetricsSettings | None = None,
) -> MetricsServer | None:
    """Serve ``registry`` on ``METRICS_HOST:METRICS_PORT`` in a background thread.

    Returns None when disabled (port 0) or when the port is taken: metrics are not worth a
    crash (a second worker on one machine logs a warning and runs without its own endpoint).
    """
    settings = settings if settings is not None else MetricsSettings()
    port = settings.port if settings.port is not None else default_port
    if port == 0:
        log.info("Metrics HTTP server disabled (METRICS_PORT=0)")
        return None
    try:
        server, thread = start_http_server(port, addr=settings.host, registry=registry)
    except OSError as exc:
        log.warning(
            "Metrics HTTP server not started: cannot bind %s:%d (%s); set METRICS_PORT to a "
            "free port or 0",
            settings.host,
            port,
            exc.strerror or exc,
            extra={"metrics_host": settings.host, "metrics_port": port},
        )
        return None
    bound = int(server.server_address[1])
    log.info(
        "Metrics served on http://%s:%d/metrics",
        settings.host,
        bound,
        extra={"metrics_host": settings.host, "metrics_port": bound},
    )
    return MetricsServer(server=server, thread=thread, host=settings.host, port=bound)
