"""Real processes for end-to-end tests: sync workers, the customer API, schedulers.

Started through the repository's one supervisor (:mod:`devstack.procs`, as ``make run`` and the
benchmarks): every process gets its environment from `Stack.env()`, logs to a file under the
test's tmp dir (printed on failure), is ready when it says so (the API's ``/readyz``, the
worker's ready file), and is stopped - or SIGKILLed - by the test or at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.procs import (
    Child,
    Service,
    Supervisor,
    api_service,
    python_module,
    wait_until_async,
    worker_service,
)

Process = Child
"""A process of the stack: ``stop(timeout)`` (SIGTERM, exit code), ``kill()``, ``log()``."""


@dataclass
class Stack:
    database_url: str
    kafka_bootstrap: str
    sandbox_url: str
    encryption_key: str
    workdir: Path
    api_key: str = "e2e-api-key"
    overrides: dict[str, str] = field(default_factory=dict)
    supervisor: Supervisor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor.in_dir(self.env, self.workdir)

    @property
    def processes(self) -> list[Process]:
        return self.supervisor.children

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "WORKER_", "SYNC_"))
        }
        env.update(
            {
                "APP_ENV": "test",
                "DATABASE_URL": self.database_url,
                "ENCRYPTION_KEYS": self.encryption_key,
                "ZUORA_ALLOWED_BASE_URLS": self.sandbox_url,
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
                "KAFKA_SESSION_TIMEOUT_MS": "2000",
                "KAFKA_HEARTBEAT_INTERVAL_MS": "300",
                "KAFKA_TOPIC_PARTITIONS": "4",
                "WORKER_CONCURRENCY": "2",
                # The parallel consumer on, with few connections: e2e tests share PostgreSQL.
                "WORKER_MAX_IN_FLIGHT": "8",
                "WORKER_RETRY_BACKOFF_SECONDS": "2",
                "WORKER_REDELIVERY_DELAY_SECONDS": "0.5",
                "SYNC_ZUORA_MAX_RETRIES": "1",
                "SYNC_ZUORA_BACKOFF_BASE_SECONDS": "0.05",
                "SYNC_ZUORA_BACKOFF_CAP_SECONDS": "0.2",
                "SYNC_LOCK_WAIT_SECONDS": "5",
                # The loopback sandbox has no per-IP token limit: tests with dozens of customers
                # must not wait on the 60/min production default (README Configuration).
                "SYNC_ZUORA_TOKEN_REQUESTS_PER_MINUTE": "100000",
                "ZUORA_TOKEN_REQUESTS_PER_MINUTE": "100000",
                "API_KEYS": self.api_key,
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.overrides)
        env.update(extra)
        return env

    def start(self, name: str, module: str, *args: str, **env: str) -> Process:
        """Start ``python -m module args`` without waiting for it."""
        return self.supervisor.start(Service(name, python_module(module, *args)), **env)

    async def start_worker(self, name: str = "worker", **env: str) -> Process:
        """Start a worker and wait until its consumers have started (its ready file)."""
        return await self.supervisor.run(worker_service(self.workdir, name=name), **env)

    async def start_api(self, port: int, name: str = "api", **env: str) -> Process:
        """Start the customer API on ``port`` and wait until ``/readyz`` answers."""
        return await self.supervisor.run(api_service(port, name=name), **env)

    def stop_all(self) -> None:
        self.supervisor.stop_all()

    def logs(self) -> str:
        return self.supervisor.logs()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    process: Process | None = None,
) -> None:
    """The tests' spelling of :func:`devstack.procs.wait_until_async`."""
    await wait_until_async(what, predicate, timeout=timeout, child=process, interval=interval)
