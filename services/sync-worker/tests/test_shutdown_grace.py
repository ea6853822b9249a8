"""A3: the worker's shutdown grace fits the grace its orchestrators give it (deploy files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sync_worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[3]
# After the drain, FastStream waits <= 5 s for what is left, then the consumers leave their groups
# and the producer flushes: keep this much of the orchestrator's grace for it.
MARGIN_SECONDS = 10


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_kubernetes_grace_covers_the_worker_drain() -> None:
    config = load("deploy/k8s/base/configmap.yaml")["data"]
    deployment = load("deploy/k8s/base/sync-worker-deployment.yaml")
    pod_grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    worker = WorkerSettings.model_validate(
        {k.removeprefix("WORKER_").lower(): v for k, v in config.items() if k.startswith("WORKER_")}
    )
    assert worker.shutdown_grace_seconds >= 60  # long syncs are let finish, not cut at 15 s
    assert worker.shutdown_grace_seconds + MARGIN_SECONDS <= pod_grace


def test_compose_grace_covers_the_worker_drain() -> None:
    service = load("docker-compose.yml")["services"]["sync-worker"]
    stop_grace = int(str(service["stop_grace_period"]).removesuffix("s"))
    grace = float(service["environment"]["WORKER_SHUTDOWN_GRACE_SECONDS"])
    assert grace + MARGIN_SECONDS <= stop_grace


def test_connection_budget_counts_every_subscriber() -> None:
    """A10: the in-flight sync commands; priority commands, retries and customer events with
    ``concurrency`` consumers each; the fan-out; one session each, plus the one connection every
    customer lock of the process shares, the sweep and the pruner."""
    worker = WorkerSettings(concurrency=4, max_in_flight=32)
    assert worker.subscribers == 32 + 3 * 4 + 1
    assert worker.database_pool_size == 45 + 3
    assert WorkerSettings(concurrency=2, max_in_flight=8).database_pool_size == 15 + 3
    # WORKER_MAX_IN_FLIGHT=0: one command per consumer
    assert WorkerSettings(concurrency=4, max_in_flight=0).database_pool_size == 17 + 3
