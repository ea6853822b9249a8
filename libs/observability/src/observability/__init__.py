"""Structured logging and Prometheus metrics shared by the services (see README.md)."""

from observability.logging import configure_logging
from observability.metrics import (
    ApiMetrics,
    MetricsServer,
    MetricsSettings,
    SchedulerMetrics,
    SnapshotGauge,
    WorkerMetrics,
    new_registry,
    start_metrics_server,
)

__all__ = [
    "ApiMetrics",
    "MetricsServer",
    "MetricsSettings",
    "SchedulerMetrics",
    "SnapshotGauge",
    "WorkerMetrics",
    "configure_logging",
    "new_registry",
    "start_metrics_server",
]
