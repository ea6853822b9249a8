"""Real processes for end-to-end tests: sync workers, the customer API, schedulers.

Every process gets its environment from `Stack.env()`, logs to a file under the test's tmp dir
(printed on failure), and is stopped - or SIGKILLed - by the test or at teardown.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PYTHON = sys.executable


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(5)

    def kill(self) -> None:
        if self.alive:
            self.popen.kill()
        self.popen.wait(5)


@dataclass
class Stack:
    database_url: str
    kafka_bootstrap: str
    sandbox_url: str
    encryption_key: str
    workdir: Path
    api_key: str = "e2e-api-key"
    overrides: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

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
        log_path = self.workdir / f"{name}.log"
        handle = log_path.open("ab")
        popen = subprocess.Popen(
            [PYTHON, "-m", module, *args],
            env=self.env(**env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        process = Process(name=name, popen=popen, log_path=log_path)
        self.processes.append(process)
        return process

    async def start_worker(self, name: str = "worker", **env: str) -> Process:
        """Start a worker and wait until all its consumers joined their groups."""
        process = self.start(name, "sync_worker.main", **env)

        async def ready() -> bool:
            return "FastStream app started successfully" in process.log()

        await wait_until(ready, timeout=60, what=f"{name} to start", process=process)
        return process

    async def start_api(self, port: int, name: str = "api", **env: str) -> Process:
        process = self.start(name, "customer_api.main", API_PORT=str(port), **env)
        async with httpx.AsyncClient() as client:

            async def up() -> bool:
                try:
                    r = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                except httpx.HTTPError:
                    return False
                return r.status_code == 200

            await wait_until(up, timeout=30, what=f"{name} to answer /healthz", process=process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} =====\n{p.log()[-6000:]}" for p in self.processes)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    process: Process | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        if process is not None and not process.alive:
            raise AssertionError(
                f"{process.name} exited while waiting for {what}:\n{process.log()}"
            )
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
