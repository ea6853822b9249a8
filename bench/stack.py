# ruff: noqa: T201 - prints warnings; bounded waits take a timeout
"""The real processes a benchmark runs against: PostgreSQL database, local broker, sandbox,
sync workers, customer API - plus psutil sampling of their CPU and memory.

Everything binds to 127.0.0.1, every wait is bounded, and every process started here is stopped
(its whole process group) when the stack closes: the processes are run by the repository's one
supervisor, :mod:`devstack.procs`, as in ``make run`` and the e2e tests.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from devstack.procs import (
    Child,
    Supervisor,
    WaitTimeout,
    api_service,
    sandbox_service,
    worker_service,
)
from event_bus.local_broker import LocalBroker, free_port, start_local_broker
from event_bus.settings import KafkaSettings
from event_bus.topics import ensure_topics
from workflow_store.crypto import SecretBox
from workflow_store.migrate import upgrade_async

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")


def pg_dsn(dbname: str) -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={dbname}"


def sqlalchemy_url(dbname: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


# --------------------------------------------------------------------------- processes


def process_tree_cpu_seconds(p: psutil.Process) -> float:
    """CPU seconds (user + system) of ``p`` and its descendants; 0 once it is gone."""
    try:
        t = p.cpu_times()
        total = t.user + t.system
        for child in p.children(recursive=True):
            try:
                ct = child.cpu_times()
                total += ct.user + ct.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


class Sampler:
    """Samples RSS of a set of pids every `interval` s in a thread; CPU from cpu_times deltas.

    Sampling reads only /proc/PID/statm (cheap); the child walk for CPU is done twice, at
    start and end, so the sampler itself does not steal CPU from a 2-core machine.
    """

    def __init__(self, procs: dict[str, int], interval: float = 0.2) -> None:
        self._ps = {name: psutil.Process(pid) for name, pid in procs.items()}
        self._interval = interval
        self.peak_rss: dict[str, int] = dict.fromkeys(procs, 0)
        self._cpu0: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for name, p in self._ps.items():
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            if rss > self.peak_rss[name]:
                self.peak_rss[name] = rss

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._cpu0 = {name: process_tree_cpu_seconds(p) for name, p in self._ps.items()}
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sample()
        self.cpu = {
            name: process_tree_cpu_seconds(p) - self._cpu0[name] for name, p in self._ps.items()
        }

    def figures(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "cpu_s": round(self.cpu.get(name, 0.0), 2),
                "peak_rss_mb": round(self.peak_rss[name] / 2**20, 1),
            }
            for name in self._ps
        }


def postgres_cpu_seconds() -> float:
    """CPU seconds of every postgres process on the machine (a shared server: indicative)."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        try:
            if (p.info["name"] or "").startswith("postgres"):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


# --------------------------------------------------------------------------- the stack


@dataclass
class TenantSpec:
    name: str
    workflow_count: int
    seed: int
    client_id: str = ""
    client_secret: str = ""
    customer_id: uuid.UUID | None = None


def spread_counts(n: int, *, mean: float = 100.0, cap: int = 500, seed: int = 7) -> list[int]:
    """Workflow counts per customer: exponential with the given mean, clipped to [0, cap]."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    return [min(cap, int(rng.expovariate(1.0 / mean))) for _ in range(n)]


@dataclass
class Stack:
    workdir: Path
    latency_ms: float = 20.0
    partitions: int = 16
    worker_concurrency: int = 8
    page_length: int = 50
    # The sandbox in fast mode (pre-rendered pages and tokens, zuora_sandbox/fast.py): it must
    # not be what the benchmark measures.
    fast_sandbox: bool = True
    # Sync commands one worker process works on at once (the parallel consumer, issue 13):
    # WORKER_MAX_IN_FLIGHT; a worker that does not know the variable ignores it.
    max_in_flight: int = 32
    dbname: str = field(default_factory=lambda: f"bench_{os.getpid()}_{secrets.token_hex(4)}")
    encryption_key: str = field(default_factory=SecretBox.generate_key)
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    broker: LocalBroker | None = None
    sandbox: Child | None = None
    sandbox_url: str = ""
    workers: list[Child] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)  # of the running workers
    api: Child | None = None
    api_url: str = ""
    tenants: dict[str, TenantSpec] = field(default_factory=dict)
    supervisor: Supervisor = field(init=False, repr=False)
    _workers_stopped_at: float | None = field(default=None, init=False, repr=False)
    #: Times the bench waited for a PostgreSQL connection ("too many clients").
    connection_waits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor.in_dir(self.service_env, self.workdir)

    @property
    def database_url(self) -> str:
        return sqlalchemy_url(self.dbname)

    @property
    def kafka(self) -> KafkaSettings:
        assert self.broker is not None
        return KafkaSettings(
            bootstrap_servers=self.broker.bootstrap_servers,
            topic_partitions=self.partitions,
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        await upgrade_async(self.database_url)
        self.broker = start_local_broker(log_file=self.workdir / "broker.log")
        await ensure_topics(self.kafka)
        port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        sandbox = sandbox_service(
            port,
            "--latency-ms",
            str(self.latency_ms),
            "--log-level",
            "warning",
            *(["--fast"] if self.fast_sandbox else []),
        )
        self.sandbox = await self.supervisor.run(sandbox)

    def close(self) -> None:
        self.stop_api()
        self.stop_workers()
        self.supervisor.stop_all()  # the sandbox
        if self.broker is not None:
            self.broker.stop()
        try:
            with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"warning: could not drop {self.dbname}: {exc}", file=sys.stderr)

    def service_env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "WORKER_", "SYNC_", "DATABASE_", "API_"))
        }
        assert self.broker is not None
        env.update(
            {
                "APP_ENV": "production",
                "DATABASE_URL": self.database_url,
                "ENCRYPTION_KEYS": self.encryption_key,
                "ZUORA_ALLOWED_BASE_URLS": self.sandbox_url,
                "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
                "KAFKA_SESSION_TIMEOUT_MS": "2000",
                "KAFKA_HEARTBEAT_INTERVAL_MS": "300",
                "KAFKA_TOPIC_PARTITIONS": str(self.partitions),
                "WORKER_CONCURRENCY": str(self.worker_concurrency),
                "WORKER_MAX_IN_FLIGHT": str(self.max_in_flight),
                "SYNC_PAGE_LENGTH": str(self.page_length),
                # The loopback sandbox has no per-IP token limit, and the bench measures our
                # code: lift the token limiters (60/min each by default, README Configuration).
                "SYNC_ZUORA_TOKEN_REQUESTS_PER_MINUTE": "1000000",
                "ZUORA_TOKEN_REQUESTS_PER_MINUTE": "1000000",
                "API_KEYS": self.api_key,
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    async def start_workers(self, count: int, **env: str) -> list[Child]:
        """``count`` fresh workers with ``env`` on top of the service environment. A restart
        waits past the session timeout first, and is tried once more if the new workers do not
        come up: on the local broker, joins racing the old members' expiry were seen to hang
        (13 of 16 command partitions assigned, the workers never ready)."""
        for attempt in (1, 2):
            restart = bool(self.workers) or self._workers_stopped_at is not None
            self.stop_workers()
            if restart:  # past the old members' session timeout, however they were stopped
                since = time.monotonic() - (self._workers_stopped_at or 0.0)
                await asyncio.sleep(max(0.0, (5 if attempt == 1 else 15) - since))
            try:
                return await self._start_workers(count, env)
            except WaitTimeout:
                if attempt == 2:
                    raise
                print(f"warning: workers not ready (restart={restart}); trying once more")
        raise AssertionError("unreachable")

    async def _start_workers(self, count: int, env: dict[str, str]) -> list[Child]:
        base = len(list(self.workdir.glob("worker-*.log")))
        procs = [  # all at once: most of a worker's start is its imports
            self.supervisor.start(worker_service(self.workdir, name=f"worker-{base + i}"), **env)
            for i in range(count)
        ]
        self.workers = procs  # stopped by close() even when one does not come up
        self.worker_env = dict(env)
        for proc in procs:
            await self.supervisor.wait_ready_async(proc)
        # Let the consumer groups settle (every join rebalances the group's members).
        await asyncio.sleep(2.5)
        return procs

    def stop_workers(self) -> None:
        if self.workers:
            self.supervisor.stop(self.workers)
            self._workers_stopped_at = time.monotonic()
        self.workers = []

    async def start_api(self) -> Child:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api = await self.supervisor.run(
            api_service(port),
            LOG_LEVEL="WARNING",
            API_WORKERS=os.environ.get("BENCH_API_WORKERS", "2"),
        )
        return self.api

    def stop_api(self) -> None:
        if self.api is not None:
            self.supervisor.stop([self.api])
            self.api = None

    # -- sandbox tenants -----------------------------------------------------------------------

    async def add_tenants(self, specs: list[TenantSpec], concurrency: int = 16) -> None:
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=60) as client:

            async def one(spec: TenantSpec) -> None:
                async with sem:
                    r = await client.post(
                        "/_sandbox/tenants",
                        json={
                            "name": spec.name,
                            "workflow_count": spec.workflow_count,
                            "seed": spec.seed,
                        },
                    )
                    r.raise_for_status()
                    body = r.json()
                    spec.client_id, spec.client_secret = body["client_id"], body["client_secret"]
                    self.tenants[spec.name] = spec

            await asyncio.gather(*(one(s) for s in specs))

    async def sandbox_admin(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """One call of the sandbox's admin API (``/_sandbox/...``), its JSON answer."""
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=300) as client:
            r = await client.request(method, f"/_sandbox/{path}", **kw)
            r.raise_for_status()
            body: dict[str, Any] = r.json()
            return body

    async def set_latency(self, latency_ms: float) -> None:
        """The sandbox's latency per request, changed at run time (``PATCH /_sandbox/config``)."""
        await self.sandbox_admin("PATCH", "config", json={"latency_ms": latency_ms})
        self.latency_ms = latency_ms

    async def warm(self, names: list[str], batch: int = 250) -> dict[str, Any]:
        """Generate these tenants' workflows and render their pages (``POST /_sandbox/warm``,
        a batch of tenants per call: each call stays well inside its timeout) now, so that no
        measured scenario pays the sandbox's lazy generation."""
        pages = 0
        for i in range(0, len(names), batch):
            body = await self.sandbox_admin(
                "POST",
                "warm",
                json={"names": names[i : i + batch], "page_length": self.page_length},
            )
            pages += int(body["pages"])
        return {"pages": pages}

    async def sandbox_totals(self) -> dict[str, Any]:
        """The sandbox's own counters: every tenant's requests, and its fast path's."""
        return await self.sandbox_admin("GET", "stats")

    async def sandbox_stats(self, names: list[str], concurrency: int = 32) -> dict[str, int]:
        """Sum of the per-tenant request counters of these tenants."""
        sem = asyncio.Semaphore(concurrency)
        totals = {
            "token_requests": 0,
            "list_requests": 0,
            "get_requests": 0,
            "export_requests": 0,
            "versions_requests": 0,
        }
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=60) as client:

            async def one(name: str) -> None:
                async with sem:
                    r = await client.get(f"/_sandbox/tenants/{name}/stats")
                    r.raise_for_status()
                    for k in totals:
                        totals[k] += int(r.json()[k])

            await asyncio.gather(*(one(n) for n in names))
        return totals

    async def sandbox_counts(self, names: list[str], concurrency: int = 32) -> dict[str, int]:
        sem = asyncio.Semaphore(concurrency)
        out: dict[str, int] = {}
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=60) as client:

            async def one(name: str) -> None:
                async with sem:
                    r = await client.get(f"/_sandbox/tenants/{name}")
                    r.raise_for_status()
                    out[name] = int(r.json()["workflow_count"])

            await asyncio.gather(*(one(n) for n in names))
        return out

    # -- database ------------------------------------------------------------------------------

    def connect(self, wait_s: float = 60.0) -> psycopg.Connection[Any]:
        """A connection to the bench database. PostgreSQL's connections can run out while the
        workers run many syncs at once (each holds two, and their pools keep them): wait for
        one (bounded), rather than lose the scenario's figures."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return psycopg.connect(pg_dsn(self.dbname), autocommit=True)
            except psycopg.OperationalError as exc:
                if "too many clients" not in str(exc) or time.monotonic() > deadline:
                    raise
                self.connection_waits += 1
                time.sleep(0.5)

    def reset_data(self) -> None:
        """Empty every table (a fresh start for the next scenario)."""
        with self.connect() as conn:
            conn.execute(
                "TRUNCATE workflows, sync_runs, processed_messages, outbox, customers CASCADE"
            )

    def insert_customers(self, specs: list[TenantSpec]) -> None:
        """The customers rows of these tenants (secrets encrypted, as the API would store them)."""
        box = SecretBox([self.encryption_key])
        rows = []
        for spec in specs:
            spec.customer_id = uuid.uuid4()
            rows.append(
                (
                    spec.customer_id,
                    spec.name,
                    self.sandbox_url,
                    spec.client_id,
                    box.encrypt(spec.client_secret),
                )
            )
        with self.connect() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO customers (id, name, base_url, client_id, client_secret_encrypted,"
                " active, credential_status, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, true, 'unknown', now(), now())",
                rows,
            )
