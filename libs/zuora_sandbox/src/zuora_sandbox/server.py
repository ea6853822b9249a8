"""Run the sandbox over real HTTP: uvicorn in a background thread, on a (free) loopback port."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from .app import create_app, create_fast_app
from .state import SandboxState, Tenant


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class SandboxServer:
    """A running sandbox: ``base_url``, ``state``, ``add_tenant(...)`` and ``stop()``."""

    def __init__(
        self,
        state: SandboxState,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        log_level: str = "warning",
        *,
        fast: bool = False,
    ) -> None:
        self.state = state
        self.fast = fast
        if latency_ms:
            state.latency_ms = latency_ms
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{self.port}"
        # Fast mode (benchmarks): the fast path, on httptools + uvloop when they are installed.
        http, loop = ("httptools", "uvloop") if fast else ("h11", "asyncio")
        if fast and not _importable("httptools"):
            http = "h11"
        if fast and not _importable("uvloop"):
            loop = "asyncio"
        self.http, self.loop = http, loop
        app = create_fast_app(state) if fast else create_app(state)
        config = uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            http=http,
            loop=loop,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, name=f"zuora-sandbox:{self.port}", daemon=True
        )
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # pragma: no cover - surfaced by start()
            self._error = exc

    def start(self, timeout: float = 10.0) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"zuora-sandbox failed to start: {self._error!r}")
            if time.monotonic() > deadline:  # pragma: no cover
                raise RuntimeError("zuora-sandbox did not start in time")
            time.sleep(0.002)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    def add_tenant(self, name: str, *args: Any, **kwargs: Any) -> Tenant:
        """Delegates to :meth:`SandboxState.add_tenant`."""
        return self.state.add_tenant(name, *args, **kwargs)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def run_sandbox(
    state: SandboxState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0,
    log_level: str = "warning",
    *,
    fast: bool = False,
) -> Iterator[SandboxServer]:
    """Serve ``state`` over real HTTP until the block exits (``port=0`` picks a free port)."""
    server = SandboxServer(
        state if state is not None else SandboxState(),
        host=host,
        port=port,
        latency_ms=latency_ms,
        log_level=log_level,
        fast=fast,
    ).start()
    try:
        yield server
    finally:
        server.stop()
