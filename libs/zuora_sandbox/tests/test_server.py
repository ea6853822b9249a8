"""Over real HTTP: run_sandbox, the pytest fixture and the console script."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest
from zuora_sandbox import DEMO_TENANTS, Faults, SandboxState, run_sandbox
from zuora_sandbox.server import SandboxServer

# Serves the sandbox over real HTTP, in this process and as a console script.
pytestmark = pytest.mark.integration


def _token(client: httpx.Client, client_id: str, secret: str) -> str:
    response = client.post(
        "/oauth/token",
        data={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _list_ids(client: httpx.Client, token: str) -> list[int]:
    ids: list[int] = []
    page = 1
    while True:
        response = client.get(
            "/workflows",
            params={"page": page, "page_length": 50},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code != 200:
            continue  # injected fault: retry the same page
        body = response.json()
        ids += [w["id"] for w in body["data"]]
        if not body["pagination"].get("next_page"):
            return ids
        page += 1


def test_run_sandbox_over_real_http() -> None:
    state = SandboxState()
    tenant = state.add_tenant("acme", workflow_count=237, seed=1)
    with run_sandbox(state) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.base_url) as client:
            token = _token(client, tenant.client_id, tenant.client_secret)
            first = client.get("/workflows", headers={"Authorization": f"Bearer {token}"})
            assert first.json()["pagination"]["next_page"].startswith(server.base_url)
            assert _list_ids(client, token) == sorted(tenant.workflows)
            assert tenant.stats.token_requests == 1
    with socket.socket() as sock:  # the port is released after the block
        sock.bind(("127.0.0.1", server.port))


def test_listing_with_30_percent_faults_over_http() -> None:
    state = SandboxState()
    tenant = state.add_tenant("acme", workflow_count=237, seed=1)
    tenant.faults = Faults(
        error_rate=0.15, rate_limit_rate=0.15, rate_limit_retry_after=None, fault_seed=3
    )
    with run_sandbox(state) as server, httpx.Client(base_url=server.base_url) as client:
        ids = _list_ids(client, _token(client, tenant.client_id, tenant.client_secret))
    assert ids == sorted(tenant.workflows)
    assert tenant.stats.injected_errors > 0


def test_token_expiring_mid_listing_over_http() -> None:
    state = SandboxState()
    tenant = state.add_tenant("acme", workflow_count=120, seed=1)
    tenant.faults.token_ttl_s = 0.3
    with run_sandbox(state) as server, httpx.Client(base_url=server.base_url) as client:
        token = _token(client, tenant.client_id, tenant.client_secret)
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/workflows", headers=auth).status_code == 200
        time.sleep(0.35)
        assert client.get("/workflows", params={"page": 2}, headers=auth).status_code == 401


def test_fixture(zuora_sandbox: SandboxServer) -> None:
    tenant = zuora_sandbox.add_tenant("acme", workflow_count=3, seed=1)
    assert zuora_sandbox.state.tenants["acme"] is tenant
    with httpx.Client(base_url=zuora_sandbox.base_url) as client:
        assert client.get("/_sandbox/health").json() == {"status": "ok", "tenants": 1}


def test_start_is_fast() -> None:
    started = time.monotonic()
    with run_sandbox(SandboxState()):
        assert time.monotonic() - started < 0.5


def test_console_script_sigint_and_generated_tenants() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [_script(), "--port", str(port), "--tenants", "5", "--workflows-per-tenant", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                tenants = httpx.get(f"http://127.0.0.1:{port}/_sandbox/tenants", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None
                assert time.monotonic() < deadline, "sandbox did not come up"
                time.sleep(0.05)
        assert len(tenants) == 5
        assert {t["workflow_count"] for t in tenants} == {7}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script() -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    candidate = scripts / "zuora-sandbox"
    return (
        str(candidate) if candidate.exists() else str(Path(sys.executable).parent / "zuora-sandbox")
    )


def test_console_script_demo_and_sigterm() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [_script(), "--host", "127.0.0.1", "--port", str(port), "--seed", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                health = httpx.get(f"{base}/_sandbox/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "sandbox did not come up"
                time.sleep(0.05)
        assert health.json() == {"status": "ok", "tenants": 3}
        with httpx.Client(base_url=base) as client:
            for demo in DEMO_TENANTS:
                token = _token(client, demo.client_id, demo.client_secret)
                assert len(_list_ids(client, token)) == demo.workflow_count
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - stopping < 3
        out = proc.stdout.read() if proc.stdout else ""
        assert f"listening on {base}" in out
        assert "demo-secret-acme" in out
        assert "00000000-0000-4000-8000-00000000acme" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
