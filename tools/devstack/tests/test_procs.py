"""The process supervisor with real (trivial) child processes: readiness, stop, log capture."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.procs import (
    Interrupted,
    Service,
    StartupError,
    Supervisor,
    WaitTimeout,
    file_exists,
    http_ok,
    tcp_listening,
    wait_until,
    wait_until_async,
)

# A child that writes its ready file (as the worker and the scheduler do) after a line of output.
READY_AFTER_OUTPUT = (
    "import os, pathlib, time; print('starting', flush=True); "
    "pathlib.Path(os.environ['READY_FILE']).write_text('x'); time.sleep(60)"
)


def _python(name: str, code: str, **kwargs: object) -> Service:
    return Service(name, [sys.executable, "-c", code], **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    env = {"PATH": os.environ.get("PATH", "")}
    sup = Supervisor(lambda: env, run_dir=tmp_path, log_dir=tmp_path)
    try:
        yield sup
    finally:
        sup.stop_all(timeout=2)


def test_ready_file_readiness_and_log_file(supervisor: Supervisor, tmp_path: Path) -> None:
    ready = tmp_path / "svc.ready"
    ready.write_text("stale")  # a file of an earlier run must not count
    service = _python(
        "svc",
        READY_AFTER_OUTPUT,
        env={"READY_FILE": str(ready)},
        ready=file_exists(ready),
        ready_timeout=20,
        ready_file=ready,
    )
    child = supervisor.start(service)
    with contextlib.suppress(FileNotFoundError):
        assert ready.read_text() != "stale"  # removed before the start
    supervisor.wait_ready(child)
    assert ready.read_text() == "x"
    assert child.log_path == tmp_path / "svc.log"
    wait_until("the output", lambda: "starting" in child.log(), timeout=10)
    assert child.stop(timeout=5) == -signal.SIGTERM


def test_a_child_that_dies_fails_the_wait_with_its_output(supervisor: Supervisor) -> None:
    service = _python(
        "crasher",
        "import sys; print('bad config', flush=True); sys.exit(3)",
        ready=lambda: False,
        ready_what="crasher to start",
        ready_timeout=30,
    )
    child = supervisor.start(service)
    with pytest.raises(StartupError, match=r"crasher exited with code 3 .*\n.*bad config"):
        supervisor.wait_ready(child)


def test_the_wait_is_bounded(supervisor: Supervisor) -> None:
    service = _python("slow", "import time; time.sleep(60)", ready=lambda: False, ready_timeout=0.3)
    child = supervisor.start(service)
    with pytest.raises(WaitTimeout, match="timed out after 0s waiting for slow to be ready"):
        supervisor.wait_ready(child)
    assert child.alive  # the caller decides what to stop


def test_a_stop_request_interrupts_the_wait() -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(Interrupted):
        wait_until("never", lambda: False, timeout=30, cancel=cancel)


def test_stop_kills_the_whole_group_after_the_grace(supervisor: Supervisor, tmp_path: Path) -> None:
    # The parent ignores SIGTERM and has a grandchild: both must be gone after stop().
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import signal, subprocess, sys, time, pathlib; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); time.sleep(60)"
    )
    child = supervisor.start(_python("stubborn", code))
    wait_until("the grandchild", pid_file.exists, timeout=20, child=child)
    grandchild = int(pid_file.read_text())
    assert child.stop(timeout=0.5) == -signal.SIGKILL

    def gone() -> bool:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{grandchild}/stat")
        return stat.exists() and stat.read_text().split(") ", 1)[1][0] == "Z"

    wait_until("the grandchild to be killed", gone, timeout=10)


@pytest.mark.integration  # real HTTP and TCP servers on loopback ports
def test_http_and_tcp_probes() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert tcp_listening(port)()
        assert http_ok(f"http://127.0.0.1:{port}/")()
        assert not http_ok(f"http://127.0.0.1:{port}/missing")()
    finally:
        server.shutdown()
        server.server_close()
    assert not tcp_listening(port)()
    assert not http_ok(f"http://127.0.0.1:{port}/")()


async def test_async_run_starts_and_waits(supervisor: Supervisor, tmp_path: Path) -> None:
    ready = tmp_path / "a.ready"
    service = _python(
        "a", READY_AFTER_OUTPUT, env={"READY_FILE": str(ready)}, ready=file_exists(ready)
    )
    child = await supervisor.run(service)
    assert child.alive and ready.exists()
    assert supervisor.children == [child]
    calls = 0

    async def third_time() -> bool:
        nonlocal calls
        calls += 1
        return calls == 3

    await wait_until_async("the third call", third_time, timeout=10, interval=0.01)
    assert calls == 3
