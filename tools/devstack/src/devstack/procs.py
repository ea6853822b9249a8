"""Child processes of the embedded stack: own process groups, prefixed logs in one terminal.

Every child is started in its own session (``start_new_session=True``) so a Ctrl-C in the terminal
reaches only the launcher, which then stops the children in order. As a safety net against a
launcher that dies without cleaning up (SIGKILL), Linux children also get ``PR_SET_PDEATHSIG``:
the kernel sends them SIGTERM when the launcher goes away.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

__all__ = ["Child", "Interrupted", "LogMux", "MuxLogHandler", "StartupError", "stop_children"]

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
    """A child process whose output (stdout + stderr) goes, prefixed, to a :class:`LogMux`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        mux: LogMux,
        cwd: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._mux = mux
        self._tail: collections.deque[str] = collections.deque(maxlen=60)
        self._watchers: list[tuple[Callable[[str], bool], threading.Event]] = []
        self._lock = threading.Lock()
        preexec = _set_parent_death_signal if sys.platform.startswith("linux") else None
        self.popen = subprocess.Popen(  # noqa: S603 - argv built by the launcher, no shell
            self.argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,  # only prctl, before exec
        )
        self._pump = threading.Thread(target=self._read, name=f"log-{name}", daemon=True)
        self._pump.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def tail(self, lines: int = 20) -> str:
        with self._lock:
            return "\n".join(list(self._tail)[-lines:])

    def _read(self) -> None:
        stream = self.popen.stdout
        if stream is None:  # pragma: no cover - always a pipe
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            with self._lock:
                self._tail.append(line)
                watchers = list(self._watchers)
            for matches, event in watchers:
                if not event.is_set() and matches(line):
                    event.set()
            self._mux.write(self.name, line)
        stream.close()

    def watch(self, matches: Callable[[str], bool]) -> threading.Event:
        """An event set once a line for which ``matches(line)`` holds is printed (from now on,
        or already among the remembered lines)."""
        event = threading.Event()
        with self._lock:
            if any(matches(line) for line in self._tail):
                event.set()
            self._watchers.append((matches, event))
        return event

    def signal_group(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's whole process group (it and anything it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

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
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def finish_logs(self, timeout: float = 2.0) -> None:
        """Let the log pump print what the child wrote before it exited."""
        self._pump.join(timeout)


def stop_children(children: Sequence[Child], *, timeout: float, mux: LogMux) -> None:
    """SIGTERM every child (group) at once, wait up to ``timeout`` s, then SIGKILL the rest.

    Afterwards the process groups are swept with SIGKILL (grandchildren that outlived their
    parent); a group that is already gone is ignored.
    """
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        if not child.wait_exit(deadline - time.monotonic()):
            mux.write(
                "devstack",
                f"{child.name} (pid {child.pid}) ignored SIGTERM for {timeout:.0f}s: SIGKILL",
            )
            child.kill()
    for child in children:
        child.signal_group(signal.SIGKILL)  # leftovers of the group, if any
        child.finish_logs()
