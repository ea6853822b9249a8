"""The one process supervisor of the repository: ``make run``, the benchmarks and the e2e tests.

A :class:`Supervisor` starts :class:`Service` processes (a Python module, its environment, how to
tell it is ready), waits for each to be ready within a bound, and stops them all: SIGTERM to the
process group, SIGKILL after a grace period. Output goes either to a :class:`LogMux` (one
terminal, prefixed lines: ``make run``) or to one file per process (tests, benchmarks).

Readiness is asked of the process, never read from its log text: the customer API and the
sandbox answer an HTTP health check; the sync worker and the scheduler, which have no HTTP port
of their own, write the file named by ``READY_FILE`` once they are up
(:mod:`observability.readiness`).

Every child is started in its own session (``start_new_session=True``), so a Ctrl-C in the
terminal reaches only the launcher, which then stops the children in order. ``make run`` also
gives Linux children ``PR_SET_PDEATHSIG``: the kernel sends them SIGTERM when the launcher goes
away (a SIGKILLed launcher). Not for tests: the signal follows the *thread* that forked, and
tests start processes from short-lived threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

__all__ = [
    "PYTHON",
    "Child",
    "Interrupted",
    "LogMux",
    "MuxLogHandler",
    "Probe",
    "Service",
    "StartupError",
    "Supervisor",
    "WaitTimeout",
    "api_service",
    "file_exists",
    "http_ok",
    "python_module",
    "sandbox_service",
    "scheduler_service",
    "stop_children",
    "tcp_listening",
    "wait_until",
    "wait_until_async",
    "worker_service",
]

PYTHON = sys.executable

_COLOURS = {
    "broker": "35",  # magenta
    "sandbox": "34",  # blue
    "migrate": "36",  # cyan
    "api": "32",  # green
    "worker": "33",  # yellow
    "scheduler": "96",  # bright cyan
    "devstack": "1",  # bold
}
_PR_SET_PDEATHSIG = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class StartupError(RuntimeError):
    """A piece of the stack did not come up; the message says which and why."""


class WaitTimeout(StartupError):
    """A bounded wait ran out (the piece may still come up: some callers only warn)."""


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived while the stack was starting."""


class LogMux:
    """Writes lines of several processes to one stream, each prefixed by ``[name] ``.

    Colour (of the prefix only) when the stream is a terminal and ``NO_COLOR`` is unset.
    """

    def __init__(self, stream: IO[str] | None = None, *, colour: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        if colour is None:
            isatty = getattr(self._stream, "isatty", None)
            colour = bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
        self.colour = colour
        self._lock = threading.Lock()

    def prefix(self, name: str) -> str:
        if not self.colour:
            return f"[{name}] "
        code = _COLOURS.get(name, "37")
        return f"\x1b[{code}m[{name}]\x1b[0m "

    def write(self, name: str, line: str) -> None:
        if not self.colour:
            line = _ANSI.sub("", line)
        text = f"{self.prefix(name)}{line.rstrip()}\n"
        with self._lock:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):  # closed pipe / stream: logs are best effort
                pass

    def block(self, text: str) -> None:
        """Several unprefixed lines at once (the banner), not interleaved with other lines."""
        out = text.rstrip("\n") + "\n"
        with self._lock:
            try:
                self._stream.write(out)
                self._stream.flush()
            except (OSError, ValueError):
                pass


class MuxLogHandler(logging.Handler):
    """Routes the launcher's own ``logging`` records to the mux, prefixed ``[devstack]``."""

    def __init__(self, mux: LogMux) -> None:
        super().__init__()
        self._mux = mux
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._mux.write("devstack", self.format(record))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the forked child
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A child process in its own process group, its output (stdout + stderr) captured.

    With ``mux`` the output is pumped, prefixed, to the terminal (the last lines are kept for
    :meth:`tail`); with ``log_path`` it is appended to that file (no pump thread in between: a
    benchmark's children log a lot). One of the two is required; with both, the pump writes both.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        mux: LogMux | None = None,
        log_path: Path | None = None,
        cwd: str | Path | None = None,
        parent_death_signal: bool = False,
    ) -> None:
        if mux is None and log_path is None:
            raise ValueError("a child needs a mux or a log file for its output")
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.service: Service | None = None  # set by the Supervisor that started it
        self._mux = mux
        self._tail: collections.deque[str] = collections.deque(maxlen=60)
        self._lock = threading.Lock()
        preexec = (
            _set_parent_death_signal
            if parent_death_signal and sys.platform.startswith("linux")
            else None
        )
        log_file = log_path.open("ab") if log_path is not None else None
        try:
            self.popen = subprocess.Popen(  # noqa: S603 - argv built by the supervisor, no shell
                self.argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if mux is not None else log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,  # only prctl, before exec
            )
        except BaseException:
            if log_file is not None:
                log_file.close()
            raise
        self._log_file = log_file
        self._swept = False
        self._pump: threading.Thread | None = None
        if mux is not None:
            self._pump = threading.Thread(target=self._read, name=f"log-{name}", daemon=True)
            self._pump.start()
        elif log_file is not None:
            log_file.close()  # the child has its own descriptor
            self._log_file = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def to_terminal(self) -> bool:
        return self._mux is not None

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log(self) -> str:
        """Everything the child wrote (its log file), or the last lines (terminal output)."""
        if self._mux is None and self.log_path is not None:
            return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return self.tail(lines=10_000)

    def tail(self, lines: int = 20) -> str:
        if self._mux is None:
            return "\n".join(self.log().splitlines()[-lines:])
        with self._lock:
            return "\n".join(list(self._tail)[-lines:])

    def _read(self) -> None:
        stream = self.popen.stdout
        if stream is None or self._mux is None:  # pragma: no cover - always a pipe
            return
        for raw in iter(stream.readline, b""):
            if self._log_file is not None:
                self._log_file.write(raw)
                self._log_file.flush()
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            with self._lock:
                self._tail.append(line)
            self._mux.write(self.name, line)
        stream.close()
        if self._log_file is not None:
            self._log_file.close()

    def signal_group(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's whole process group (it and anything it started).

        Nothing once the group was swept after the child exited: its id may be reused later.
        """
        if self._swept:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)
        if sig == signal.SIGKILL and self.popen.poll() is not None:
            self._swept = True

    def terminate(self) -> None:
        if self.alive:
            self.signal_group(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True if the child has exited."""
        try:
            self.popen.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the whole group: no cleanup (tests of a crash use it too)."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self.signal_group(signal.SIGKILL)  # leftovers of the group, if any

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the group, SIGKILL it after ``timeout`` s; the exit code (None: unkillable)."""
        self.terminate()
        if not self.wait_exit(timeout):
            self.kill()
        self.signal_group(signal.SIGKILL)  # leftovers of the group, if any
        self.finish_logs()
        return self.returncode

    def finish_logs(self, timeout: float = 2.0) -> None:
        """Let the log pump print what the child wrote before it exited."""
        if self._pump is not None:
            self._pump.join(timeout)


def stop_children(children: Sequence[Child], *, timeout: float, mux: LogMux | None) -> None:
    """SIGTERM every child (group) at once, wait up to ``timeout`` s, then SIGKILL the rest.

    Afterwards the process groups are swept with SIGKILL (grandchildren that outlived their
    parent); a group that is already gone is ignored.
    """
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        if not child.wait_exit(deadline - time.monotonic()):
            if mux is not None:
                mux.write(
                    "devstack",
                    f"{child.name} (pid {child.pid}) ignored SIGTERM for {timeout:.0f}s: SIGKILL",
                )
            child.kill()
    for child in children:
        child.signal_group(signal.SIGKILL)  # leftovers of the group, if any
        child.finish_logs()


# --------------------------------------------------------------------------- readiness

Probe = Callable[[], bool]
"""Asks a process whether it is ready; True or False, never raises for "not yet"."""


def http_ok(url: str, *, timeout: float = 1.0) -> Probe:
    """Ready once ``GET url`` answers 200."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def file_exists(path: Path) -> Probe:
    """Ready once ``path`` exists (a ready file, see :mod:`observability.readiness`)."""
    return path.exists


def tcp_listening(port: int, host: str = "127.0.0.1") -> Probe:
    """Ready once ``host:port`` accepts a TCP connection."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    return probe


def _died_message(child: Child, what: str) -> str:
    if not child.to_terminal:
        return (
            f"{child.name} exited with code {child.returncode} while waiting for {what}:\n"
            f"{child.tail(60)}"
        )
    return (
        f"{child.name} exited with code {child.returncode} while waiting for {what} "
        f"(see the [{child.name}] lines above)"
    )


def _timed_out(what: str, timeout: float) -> Callable[[RetryCallState], bool]:
    def give_up(state: RetryCallState) -> bool:
        raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")

    return give_up


def wait_until(
    what: str,
    ready: Probe,
    *,
    timeout: float,
    child: Child | None = None,
    interval: float = 0.1,
    cancel: threading.Event | None = None,
) -> None:
    """Poll ``ready`` every ``interval`` s until it holds; at most ``timeout`` s.

    Raises :class:`StartupError` on the timeout or when ``child`` exits first, and
    :class:`Interrupted` as soon as ``cancel`` is set (a Ctrl-C during ``make run``'s start).
    """

    def attempt() -> bool:
        if cancel is not None and cancel.is_set():
            raise Interrupted
        if ready():
            return True
        if child is not None and not child.alive:
            raise StartupError(_died_message(child, what))
        return False

    def sleep(seconds: float) -> None:
        if cancel is None:
            time.sleep(seconds)
        elif cancel.wait(seconds):
            raise Interrupted

    Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=_timed_out(what, timeout),
        sleep=sleep,
    )(attempt)


async def wait_until_async(
    what: str,
    ready: Callable[[], Awaitable[bool]],
    *,
    timeout: float,  # noqa: ASYNC109 - a bound handed to tenacity, which owns the loop
    child: Child | None = None,
    interval: float = 0.2,
) -> None:
    """:func:`wait_until` for an ``async`` predicate (a query, an HTTP call in a test)."""

    async def attempt() -> bool:
        if await ready():
            return True
        if child is not None and not child.alive:
            raise StartupError(_died_message(child, what))
        return False

    await AsyncRetrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=_timed_out(what, timeout),
    )(attempt)


# --------------------------------------------------------------------------- services


def python_module(module: str, *args: str) -> list[str]:
    """``python -m module args``, with this interpreter (the workspace's virtualenv)."""
    return [PYTHON, "-m", module, *args]


@dataclass(frozen=True)
class Service:
    """One process to supervise: what to run, what it adds to the environment, when it is ready.

    ``ready`` is None for a process that is ready once started (or waited on otherwise);
    ``ready_file`` is the path given to it as ``READY_FILE`` (removed before it starts).
    ``inherit_env`` False: ``env`` is the whole environment (the broker: no service settings).
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    inherit_env: bool = True
    ready: Probe | None = None
    ready_what: str = ""
    ready_timeout: float = 60.0
    ready_file: Path | None = None


def api_service(port: int, *, host: str = "127.0.0.1", name: str = "api") -> Service:
    """The customer API; ready once ``/readyz`` answers (the database is reachable)."""
    probe_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    return Service(
        name,
        python_module("customer_api.main"),
        env={"API_HOST": host, "API_PORT": str(port)},
        ready=http_ok(f"http://{probe_host}:{port}/readyz"),
        ready_what=f"{name} (/readyz)",
        ready_timeout=120,  # bounds, not expectations: a loaded 2-core machine needs them
    )


def _ready_file_service(
    name: str, module: str, run_dir: Path, timeout: float, what: str
) -> Service:
    ready_file = run_dir / f"{name}.ready"
    return Service(
        name,
        python_module(module),
        env={"READY_FILE": str(ready_file)},
        ready=file_exists(ready_file),
        ready_what=what,
        ready_timeout=timeout,
        ready_file=ready_file,
    )


def worker_service(run_dir: Path, *, name: str = "worker") -> Service:
    """A sync worker; ready once its consumers have started (its ready file)."""
    return _ready_file_service(name, "sync_worker.main", run_dir, 120, f"{name} to start")


def scheduler_service(run_dir: Path, *, name: str = "scheduler") -> Service:
    """A scheduler; ready once its jobs are planned (its ready file)."""
    return _ready_file_service(name, "sync_scheduler.main", run_dir, 60, f"{name} to start")


def sandbox_service(port: int, *args: str, name: str = "sandbox") -> Service:
    """The Zuora sandbox on ``127.0.0.1:port``; ready once its health check answers."""
    return Service(
        name,
        python_module("zuora_sandbox", "--host", "127.0.0.1", "--port", str(port), *args),
        ready=http_ok(f"http://127.0.0.1:{port}/_sandbox/health"),
        ready_what=f"{name} health check",
        ready_timeout=60,
    )


class Supervisor:
    """Starts services, waits for them, stops them all.

    ``env`` builds a child's environment (the caller's wiring); the service's own variables go
    on top. ``log_dir`` gives each child ``NAME.log`` there; ``mux`` prints to the terminal.
    ``cancel`` (``make run``: SIGINT/SIGTERM received) interrupts any wait.
    """

    def __init__(
        self,
        env: Callable[[], Mapping[str, str]],
        *,
        run_dir: Path,
        mux: LogMux | None = None,
        log_dir: Path | None = None,
        cwd: Path | None = None,
        parent_death_signal: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        self._env = env
        self.run_dir = run_dir
        self.mux = mux
        self.log_dir = log_dir
        self.cwd = cwd
        self.parent_death_signal = parent_death_signal
        self.cancel = cancel
        self.children: list[Child] = []

    @classmethod
    def in_dir(cls, env: Callable[[], Mapping[str, str]], workdir: Path) -> Supervisor:
        """A supervisor for tests and benchmarks: logs, ready files and cwd all in ``workdir``."""
        return cls(env, run_dir=workdir, log_dir=workdir, cwd=workdir)

    def start(self, service: Service, **env: str) -> Child:
        """Spawn ``service`` (not waiting for it); ``env`` overrides the environment."""
        if self.cancel is not None and self.cancel.is_set():
            raise Interrupted
        if service.ready_file is not None:
            service.ready_file.unlink(missing_ok=True)  # a stale one must not look ready
        child_env = {**(self._env() if service.inherit_env else {}), **service.env, **env}
        log_path = self.log_dir / f"{service.name}.log" if self.log_dir is not None else None
        child = Child(
            service.name,
            service.argv,
            env=child_env,
            mux=self.mux,
            log_path=log_path,
            cwd=self.cwd,
            parent_death_signal=self.parent_death_signal,
        )
        child.service = service
        self.children.append(child)
        return child

    def wait_ready(self, child: Child) -> None:
        """Block until ``child``'s service is ready (bounded by its ``ready_timeout``)."""
        service = child.service
        if service is None or service.ready is None:
            return
        wait_until(
            service.ready_what or f"{child.name} to be ready",
            service.ready,
            timeout=service.ready_timeout,
            child=child,
            cancel=self.cancel,
        )

    async def wait_ready_async(self, child: Child) -> None:
        """:meth:`wait_ready` from async code (in a thread: the event loop goes on)."""
        await asyncio.to_thread(self.wait_ready, child)

    async def run(self, service: Service, **env: str) -> Child:
        """Start ``service`` and wait until it is ready (from async code: tests, benchmarks)."""
        child = self.start(service, **env)
        try:
            await self.wait_ready_async(child)
        except BaseException:
            child.stop(timeout=5)
            raise
        return child

    def forget(self, child: Child) -> None:
        """``child`` has exited and was dealt with (a one-shot process such as migrations)."""
        with contextlib.suppress(ValueError):
            self.children.remove(child)

    def first_dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive), None)

    def stop(self, children: Sequence[Child], *, timeout: float = 15.0) -> None:
        """Stop these children together (SIGTERM, then SIGKILL after ``timeout`` s)."""
        stop_children(children, timeout=timeout, mux=self.mux)

    def stop_all(self, *, timeout: float = 15.0) -> None:
        """Stop every child, the last started first."""
        self.stop(list(reversed(self.children)), timeout=timeout)

    def logs(self, chars: int = 6000) -> str:
        """The end of every child's output (for a failure report)."""
        return "\n".join(f"===== {c.name} =====\n{c.log()[-chars:]}" for c in self.children)
