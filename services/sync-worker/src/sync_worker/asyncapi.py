"""The worker app for ``faststream docs gen`` (``make docs``): nothing connects.

``faststream docs gen --factory sync_worker.asyncapi:docs_app --out docs/asyncapi.json``. The
document comes from the real wiring in :func:`sync_worker.app.build_app` (topics, consumer
groups, message models), with a fixed server address so it does not depend on the environment.
"""

from __future__ import annotations

from event_bus.settings import KafkaSettings
from faststream import FastStream
from observability.metrics import MetricsSettings, WorkerMetrics, new_registry

from sync_worker.app import build_app
from sync_worker.settings import SyncWorkerSettings

__all__ = ["DOCS_BOOTSTRAP_SERVERS", "docs_app"]

DOCS_BOOTSTRAP_SERVERS = "kafka:9092"


def docs_app() -> FastStream:
    settings = SyncWorkerSettings(
        kafka=KafkaSettings.model_validate({"bootstrap_servers": DOCS_BOOTSTRAP_SERVERS}),
        metrics=MetricsSettings(port=0),
    )
    app, _broker, _runtime = build_app(
        settings, metrics=WorkerMetrics(new_registry(process_metrics=False))
    )
    return app
