"""Browser tests of the web UI: Playwright (sync API) driving Debian's Chromium against real
processes — PostgreSQL, the local broker, the Zuora sandbox over HTTP, the customer API and a
sync worker — started once for the whole run (``ui_stack``).

Run on their own (``make test-ui``): pytest-playwright's sync fixtures clash with
pytest-asyncio, so this directory is not in the default testpaths and runs with
``-p no:asyncio``. A missing browser fails the run; it never skips.

For a new test: take ``page`` (signed in, at the dashboard) or ``signed_out_page``; use
``ui_stack.url(path)``; add tenants with ``ui_stack.sandbox.add_tenant(...)``; read the
database with ``ui_stack.query(sql)``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from event_bus.local_broker import start_local_broker
from event_bus.testing import kafka_test_settings
from event_bus.topics import ensure_topics
from playwright.sync_api import Browser, BrowserContext, Page, expect
from workflow_store.crypto import SecretBox
from workflow_store.migrate import upgrade_async
from zuora_sandbox import SandboxServer, SandboxState
from zuora_sandbox.server import run_sandbox


def _load_e2e_harness() -> Any:
    # The process harness of tests/e2e (tests/ is no package: --import-mode=importlib).
    path = Path(__file__).resolve().parents[1] / "e2e" / "harness.py"
    spec = importlib.util.spec_from_file_location("zws_e2e_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


Stack = _load_e2e_harness().Stack

T = TypeVar("T")

API_KEY = "ui-test-api-key-0123456789"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

expect.set_options(timeout=30_000)  # a bound for a loaded 2-core machine, not a timing


def chromium_path() -> str:
    """Debian's Chromium (``apt-get install chromium``); its absence is a failure."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "Chromium is not installed: the browser tests need it (apt-get install chromium)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": chromium_path(), "args": LAUNCH_ARGS}


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a thread of its own: Playwright's sync API keeps an event
    loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class UiStack:
    base_url: str
    api_key: str
    sandbox: SandboxServer
    database_url: str
    stack: Any  # tests/e2e/harness.py Stack

    def url(self, path: str) -> str:
        return self.base_url + path

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the test database (inspect what the UI did)."""
        dsn = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())


@pytest.fixture(scope="session")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    chromium_path()  # fail before starting anything
    name = f"zws_ui_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = (
        _ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        + f"/{name}"
    )
    broker = start_local_broker()
    try:
        with run_sandbox(SandboxState()) as sandbox:
            run_async(upgrade_async(database_url))
            run_async(ensure_topics(kafka_test_settings(broker.bootstrap_servers)))
            workdir: Path = tmp_path_factory.mktemp("ui-stack")
            stack = Stack(
                database_url=database_url,
                kafka_bootstrap=broker.bootstrap_servers,
                sandbox_url=sandbox.base_url,
                encryption_key=SecretBox.generate_key(),
                workdir=workdir,
                api_key=API_KEY,
            )
            port = _free_port()
            try:
                run_async(stack.start_api(port))
                run_async(stack.start_worker())
                yield UiStack(
                    base_url=f"http://127.0.0.1:{port}",
                    api_key=API_KEY,
                    sandbox=sandbox,
                    database_url=database_url,
                    stack=stack,
                )
            finally:
                stack.stop_all()
                print(stack.logs()[-4000:])  # shown with -s or in a failure report
    finally:
        broker.stop()
        with psycopg.connect(_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any], ui_stack: UiStack) -> dict[str, Any]:
    return {**browser_context_args, "base_url": ui_stack.base_url}


@pytest.fixture
def signed_out_page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.goto("/ui/login")
    return page


def sign_in(page: Page, api_key: str) -> None:
    page.goto("/ui/login")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()


@pytest.fixture
def page(context: BrowserContext, ui_stack: UiStack) -> Page:
    """A page signed in with the stack's API key, at the dashboard."""
    signed_in = context.new_page()
    sign_in(signed_in, ui_stack.api_key)
    return signed_in


__all__ = ["API_KEY", "Browser", "UiStack", "sign_in"]
