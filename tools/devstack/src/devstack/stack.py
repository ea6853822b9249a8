"""Start the embedded stack in order, watch it, stop it.

broker -> topics -> sandbox -> migrations -> API -> worker + scheduler -> demo customers -> banner.
Each step waits until its piece is ready (:mod:`devstack.procs`: a health check, a listening port
or a ready file, never a log line) and raises :class:`StartupError` with a clear message
otherwise; the caller then stops whatever was started.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from event_bus.local_broker import free_port, tansu_command
from event_bus.settings import KafkaSettings
from event_bus.topics import ensure_topics
from workflow_store.db import ensure_sqlite_directory
from workflow_store.settings import load_dev_key

from devstack.config import DevConfig
from devstack.demo import DemoResult, DemoTarget, create_demo_customers, wait_for_demo_workflows
from devstack.procs import (
    Child,
    Interrupted,
    LogMux,
    Service,
    StartupError,
    Supervisor,
    api_service,
    python_module,
    sandbox_service,
    scheduler_service,
    tcp_listening,
    wait_until,
    worker_service,
)

__all__ = ["Interrupted", "Stack", "install_signal_handlers"]

PYTHON = sys.executable
STATE_FILENAME = "devstack.json"
ENV_FILENAME = "devstack.env"


def _port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound (as uvicorn would, with SO_REUSEADDR), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "already in use"
            return exc.strerror or str(exc)
    return None


class Stack:
    """The running pieces. Not thread-safe: drive it from the main thread."""

    def __init__(self, config: DevConfig, mux: LogMux, stop_requested: threading.Event) -> None:
        self.config = config
        self.mux = mux
        self.stop_requested = stop_requested
        self.kafka_bootstrap = config.kafka_bootstrap or ""
        self.sandbox_url = ""
        self.demo: DemoResult | None = None
        self.state_path = config.data_dir / STATE_FILENAME
        self.env_path = config.data_dir / ENV_FILENAME
        self.supervisor = Supervisor(
            self._child_env,
            run_dir=config.data_dir,  # the worker's and the scheduler's ready files
            mux=mux,
            cwd=config.cwd,
            parent_death_signal=True,  # started from the main thread, which outlives them
            cancel=stop_requested,
        )

    @property
    def children(self) -> list[Child]:
        return self.supervisor.children

    # -- helpers ---------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        self.mux.write("devstack", message)

    def _child_env(self) -> dict[str, str]:
        return self.config.child_env(
            kafka_bootstrap=self.kafka_bootstrap, sandbox_url=self.sandbox_url
        )

    def _start(self, service: Service) -> Child:
        child = self.supervisor.start(service)
        self.write_state("starting")
        return child

    def check_alive(self) -> None:
        """Raise :class:`StartupError` if a piece died, :class:`Interrupted` on a stop request."""
        if self.stop_requested.is_set():
            raise Interrupted
        dead = self.first_dead_child()
        if dead is not None:
            raise StartupError(f"{dead.name} exited with code {dead.returncode}")

    def demo_target(self) -> DemoTarget:
        return DemoTarget(
            api_url=self.config.api_url,
            api_key=self.config.api_key,
            sandbox_url=self.sandbox_url,
            say=self.say,
            check_alive=self.check_alive,
            cancel=self.stop_requested,
        )

    # -- steps -----------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()  # a stale file of a killed run must not look ready
        # A busy API port would only show up after broker, sandbox and migrations: check first.
        busy = _port_in_use(cfg.api_host, cfg.api_port)
        if busy:
            raise StartupError(
                f"API_PORT {cfg.api_port} on {cfg.api_host} is {busy}: stop what listens there "
                f"or pick another port, e.g. `API_PORT={cfg.api_port + 1} make run`"
            )
        if cfg.sandbox_port is not None and _port_in_use("127.0.0.1", cfg.sandbox_port):
            raise StartupError(f"SANDBOX_PORT {cfg.sandbox_port} is already in use")
        if cfg.is_development and not cfg.encryption_keys_given:
            load_dev_key(cfg.data_dir)  # create it once, before several processes race for it
        ensure_sqlite_directory(cfg.database_url)

        # Spawn early, check in order: the broker, the sandbox and the migrations do not depend on
        # each other, and Python start-up (imports) is most of each piece's start time.
        sup = self.supervisor
        broker = self.spawn_broker()
        sandbox = self.spawn_sandbox()
        migrate = self._start(
            Service("migrate", python_module("zuora_sync_cli.main", "db", "upgrade"))
        )
        if broker is not None:
            sup.wait_ready(broker)
        self.ensure_topics()
        sup.wait_ready(sandbox)
        self.write_state("starting")
        self.wait_migrations(migrate)
        # The services need the broker address and the sandbox URL (ZUORA_ALLOWED_BASE_URLS).
        api = self._start(api_service(cfg.api_port, host=cfg.api_host))
        worker = self._start(worker_service(cfg.data_dir))
        scheduler = self._start(scheduler_service(cfg.data_dir))
        sup.wait_ready(api)
        # The demo customers need only the API: their CustomerCreated events wait in Kafka for
        # the worker's consumer group (which reads from the earliest offset on a fresh broker).
        self.demo = create_demo_customers(self.demo_target())
        sup.wait_ready(worker)
        sup.wait_ready(scheduler)
        wait_for_demo_workflows(self.demo_target(), self.demo, timeout=60)
        self.write_state("ready", startup_seconds=round(time.monotonic() - started, 1))

    def spawn_broker(self) -> Child | None:
        if self.config.kafka_bootstrap:
            self.say(f"using Kafka at {self.config.kafka_bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
            return None
        port = free_port()
        # Output piped to the terminal and in its own process group (so Ctrl-C does not kill
        # the broker before the services stop): a child of ours, not start_local_broker's.
        command = tansu_command(port, environ=self.config.base_env)
        self.kafka_bootstrap = f"127.0.0.1:{port}"
        return self._start(
            Service(
                "broker",
                command.argv,
                env=command.env,
                inherit_env=False,
                ready=tcp_listening(port),
                ready_what=f"the broker to listen on port {port}",
                ready_timeout=15,
            )
        )

    def ensure_topics(self) -> None:
        self.check_alive()
        env = self._child_env()
        settings = KafkaSettings(
            bootstrap_servers=self.kafka_bootstrap,
            topic_partitions=int(env["KAFKA_TOPIC_PARTITIONS"]),
        )
        try:
            asyncio.run(ensure_topics(settings))  # the launchers' deadline (event_bus.topics)
        except Exception as exc:
            raise StartupError(
                f"could not create the Kafka topics on {self.kafka_bootstrap}: {exc}"
            ) from None
        self.say(f"Kafka topics ready on {self.kafka_bootstrap}")

    def spawn_sandbox(self) -> Child:
        port = self.config.sandbox_port or free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        return self._start(sandbox_service(port, "--seed", "demo"))

    def wait_migrations(self, child: Child) -> None:
        wait_until(
            "the database migrations",
            lambda: not child.alive,
            timeout=120,
            cancel=self.stop_requested,
        )
        child.finish_logs()
        self.supervisor.forget(child)
        if child.returncode != 0:
            raise StartupError(
                f"database migrations failed (exit code {child.returncode}) on "
                f"{self.config.database_url_redacted}: see the [migrate] lines above"
            )
        self.say(f"database at head: {self.config.database_url_redacted}")

    # -- running ---------------------------------------------------------------------------------

    def first_dead_child(self) -> Child | None:
        return self.supervisor.first_dead()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the services first (they still flush to Kafka), then sandbox and broker."""
        infra = {"broker", "sandbox"}
        services = [c for c in reversed(self.children) if c.name not in infra]
        rest = [c for c in reversed(self.children) if c.name in infra]
        running = [c for c in self.children if c.alive]
        if running:
            self.say("stopping " + ", ".join(c.name for c in reversed(running)) + " ...")
        self.supervisor.stop(services, timeout=timeout)
        self.supervisor.stop(rest, timeout=5.0)
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()

    # -- state file ------------------------------------------------------------------------------

    def write_state(self, status: str, **extra: Any) -> None:
        cfg = self.config
        state: dict[str, Any] = {
            "status": status,
            "launcher_pid": os.getpid(),
            "api_url": cfg.api_url,
            "docs_url": f"{cfg.api_url}/docs",
            "ui_url": f"{cfg.api_url}/ui/",
            "api_key": cfg.api_key if cfg.uses_dev_api_key else None,
            "sandbox_url": self.sandbox_url or None,
            "kafka_bootstrap_servers": self.kafka_bootstrap or None,
            "local_broker": not cfg.kafka_bootstrap,
            "database_url": cfg.database_url_redacted,
            "data_dir": str(cfg.data_dir),
            "env_file": str(self.env_path),
            "pids": {c.name: c.pid for c in self.children},
            "demo_customers": self.demo.as_json() if self.demo else [],
            **extra,
        }
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.state_path)
        if status == "ready":
            exports = cfg.cli_exports(
                kafka_bootstrap=self.kafka_bootstrap, sandbox_url=self.sandbox_url
            )
            fd = os.open(self.env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("# written by `make run`: the environment of the running embedded stack\n")
                fh.write(exports + "\n")
                if cfg.api_key:
                    fh.write(f"export API_URL={cfg.api_url}\n")


def install_signal_handlers(stop_requested: threading.Event, mux: LogMux) -> None:
    """SIGINT/SIGTERM ask for a clean stop (further signals change nothing: the stop is bounded)."""
    count = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        if count == 1:
            mux.write("devstack", f"{signal.Signals(signum).name} received: stopping the stack")
        stop_requested.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
