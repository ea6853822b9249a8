"""The launcher as a real process: up, demo workflows over HTTP, one more customer, Ctrl-C.

Then a second run on the same SQLite file (demo customers already exist: 409, re-pointed at the
new sandbox port) comes up as well.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

DEMO = {"acme-demo": 12, "globex-demo": 57, "initech-demo": 130}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _wait(
    what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[bytes]
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        assert proc.poll() is None, f"launcher exited ({proc.returncode}) waiting for {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Launcher:
    def __init__(self, workdir: Path, api_port: int) -> None:
        self.workdir = workdir
        self.api_port = api_port
        self.log_path = workdir / f"launcher-{time.monotonic_ns()}.log"
        self.state_path = workdir / "var" / "devstack.json"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "WORKER_", "SYNC_", "SCHEDULER_"))
            and k
            not in {"API_KEYS", "ENCRYPTION_KEYS", "ZUORA_ALLOWED_BASE_URLS", "APP_ENV", "API_HOST"}
        }
        env.update(
            {
                "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'zuora-sync.db'}",
                "DEV_DATA_DIR": str(workdir / "var"),
                "API_PORT": str(api_port),
                "NO_COLOR": "1",
            }
        )
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "devstack.main"],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return state if state["status"] == "ready" else None

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=40)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[], Launcher]]:
    started: list[Launcher] = []
    port = _free_port()

    def start() -> Launcher:
        launcher = Launcher(tmp_path, port)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.kill()


def _workflow_total(client: httpx.Client, customer_id: str) -> int:
    r = client.get(f"/customers/{customer_id}/workflows", params={"page_size": 1})
    return int(r.json()["total"]) if r.status_code == 200 else -1


def _customers(client: httpx.Client) -> dict[str, str]:
    r = client.get("/customers", params={"page_size": 100})
    r.raise_for_status()
    return {c["name"]: c["id"] for c in r.json()["items"]}


def _check_stopped(launcher: Launcher, state: dict[str, Any]) -> None:
    try:
        code = launcher.interrupt()
    except subprocess.TimeoutExpired:
        raise AssertionError(f"no exit after SIGINT:\n{launcher.log()[-5000:]}") from None
    log = launcher.log()
    assert code == 0, log[-5000:]
    assert "[devstack] stopped cleanly" in log
    pids = state["pids"]
    assert set(pids) == {"broker", "sandbox", "api", "worker", "scheduler"}
    time.sleep(0.2)
    survivors = {name: pid for name, pid in pids.items() if _alive(pid)}
    assert not survivors, survivors
    assert not launcher.state_path.exists()


def test_up_sync_add_customer_interrupt_and_rerun(launch: Callable[[], Launcher]) -> None:
    first = launch()
    state = _wait("the ready state", first.ready_state, 90, first.proc)
    assert state["api_url"] == f"http://127.0.0.1:{first.api_port}"
    # The banner is printed just after the state file says ready: wait for it, do not race it.
    _wait("the banner", lambda: "Zuora Workflow Sync is ready" in first.log(), 30, first.proc)
    assert "[api] " in first.log() and "[worker] " in first.log()
    headers = {"Authorization": f"Bearer {state['api_key']}"}
    with httpx.Client(base_url=state["api_url"], headers=headers, timeout=10) as client:
        ids = _customers(client)
        assert set(DEMO) <= set(ids)
        for name, count in DEMO.items():

            def synced(cid: str = ids[name], expected: int = count) -> bool:
                return _workflow_total(client, cid) == expected

            _wait(name, synced, 30, first.proc)

        sandbox = state["sandbox_url"]
        tenant = httpx.post(
            f"{sandbox}/_sandbox/tenants", json={"name": "extra", "workflow_count": 17}
        ).json()
        r = client.post(
            "/customers",
            json={
                "name": "extra-customer",
                "base_url": sandbox,
                "client_id": tenant["client_id"],
                "client_secret": tenant["client_secret"],
            },
        )
        assert r.status_code == 201, r.text
        new_id = r.json()["id"]
        _wait("the new customer", lambda: _workflow_total(client, new_id) == 17, 30, first.proc)
    _check_stopped(first, state)

    # Second run, same database: demo customers exist (409) and follow the new sandbox port.
    second = launch()
    state2 = _wait("the second ready state", second.ready_state, 90, second.proc)
    with httpx.Client(base_url=state2["api_url"], headers=headers, timeout=10) as client:
        for customer in state2["demo_customers"]:
            r = client.get(f"/customers/{customer['id']}")
            assert r.json()["base_url"] == state2["sandbox_url"]
            assert _workflow_total(client, customer["id"]) == DEMO[customer["name"]]
    if state2["sandbox_url"] != sandbox:  # a free port each run: practically always
        assert "demo customer acme-demo: repointed" in second.log()
    _check_stopped(second, state2)
