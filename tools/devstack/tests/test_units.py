"""Fast tests of the launcher's pieces (no processes but a trivial child)."""

from __future__ import annotations

import io
import socket
import sys
import threading
from pathlib import Path

import pytest
from devstack.banner import READY_MARKER, render_banner
from devstack.config import DEV_API_KEY, DevConfig, absolute_sqlite_url
from devstack.procs import Child, LogMux, StartupError, stop_children, wait_until
from devstack.stack import Stack


def test_defaults(tmp_path: Path) -> None:
    cfg = DevConfig.from_env({}, cwd=tmp_path)
    assert cfg.database_url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'zuora-sync.db'}"
    assert cfg.data_dir == tmp_path / "var"
    assert cfg.api_port == 8000
    assert cfg.api_url == "http://127.0.0.1:8000"
    assert cfg.is_development
    assert cfg.api_key == DEV_API_KEY
    assert cfg.uses_dev_api_key
    assert cfg.kafka_bootstrap is None
    assert cfg.sandbox_port is None


def test_contract_variables_are_honoured(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql+psycopg://u:secret@127.0.0.1:5432/db",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "API_KEYS": "k1, k2",
        "ENCRYPTION_KEYS": "abc",
        "ZUORA_ALLOWED_BASE_URLS": "https://example.test",
        "API_PORT": "8111",
        "SANDBOX_PORT": "8222",
        "KAFKA_TOPIC_PARTITIONS": "8",
    }
    cfg = DevConfig.from_env(env, cwd=tmp_path)
    assert cfg.database_url == env["DATABASE_URL"]
    assert "secret" not in cfg.database_url_redacted
    assert cfg.kafka_bootstrap == "127.0.0.1:9092"
    assert cfg.api_key == "k1"
    assert not cfg.uses_dev_api_key
    assert cfg.encryption_keys_given
    assert (cfg.api_port, cfg.sandbox_port) == (8111, 8222)
    child = cfg.child_env(kafka_bootstrap="127.0.0.1:9092", sandbox_url="http://127.0.0.1:8222")
    assert child["ZUORA_ALLOWED_BASE_URLS"] == "https://example.test,http://127.0.0.1:8222"
    assert child["API_KEYS"] == "k1, k2"
    assert child["ENCRYPTION_KEYS"] == "abc"
    assert child["API_PORT"] == "8111"
    assert child["KAFKA_TOPIC_PARTITIONS"] == "8"  # given values win over the dev defaults
    assert child["KAFKA_SESSION_TIMEOUT_MS"] == "2000"


def test_sandbox_url_not_duplicated(tmp_path: Path) -> None:
    cfg = DevConfig.from_env({"ZUORA_ALLOWED_BASE_URLS": "http://127.0.0.1:1"}, cwd=tmp_path)
    env = cfg.child_env(kafka_bootstrap="x:1", sandbox_url="http://127.0.0.1:1")
    assert env["ZUORA_ALLOWED_BASE_URLS"] == "http://127.0.0.1:1"


@pytest.mark.parametrize("value", ["nope", "0", "70000"])
def test_bad_api_port(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="API_PORT"):
        DevConfig.from_env({"API_PORT": value}, cwd=tmp_path)


def test_absolute_sqlite_url(tmp_path: Path) -> None:
    assert absolute_sqlite_url("sqlite+aiosqlite:///./var/x.db", tmp_path) == (
        f"sqlite+aiosqlite:///{tmp_path / 'var' / 'x.db'}"
    )
    assert absolute_sqlite_url("sqlite+aiosqlite:////abs/x.db", tmp_path) == (
        "sqlite+aiosqlite:////abs/x.db"
    )
    pg = "postgresql+psycopg://postgres@127.0.0.1:5432/db"
    assert absolute_sqlite_url(pg, tmp_path) == pg


def test_mux_prefix_and_colour() -> None:
    plain = io.StringIO()
    LogMux(plain, colour=False).write("api", "\x1b[32mINFO\x1b[0m hello  ")
    assert plain.getvalue() == "[api] INFO hello\n"
    coloured = io.StringIO()
    LogMux(coloured, colour=True).write("worker", "x")
    assert coloured.getvalue().startswith("\x1b[") and "[worker]" in coloured.getvalue()
    assert LogMux(io.StringIO()).colour is False  # not a tty


def test_child_output_is_prefixed_and_stopped(tmp_path: Path) -> None:
    out = io.StringIO()
    mux = LogMux(out, colour=False)
    code = "import time; print('hello', flush=True); time.sleep(60)"
    child = Child("demo", [sys.executable, "-c", code], env={}, mux=mux)
    wait_until("the hello line", lambda: "hello" in child.tail(), timeout=10, child=child)
    stop_children([child], timeout=5, mux=mux)
    assert not child.alive
    assert "[demo] hello\n" in out.getvalue()


def test_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    mux = LogMux(io.StringIO(), colour=False)
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    child = Child("stubborn", [sys.executable, "-c", code], env={}, mux=mux)
    wait_until("the up line", lambda: "up" in child.tail(), timeout=10, child=child)
    stop_children([child], timeout=0.5, mux=mux)
    assert not child.alive


@pytest.mark.integration  # holds a real loopback port
def test_busy_api_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cfg = DevConfig.from_env({"API_PORT": str(port)}, cwd=tmp_path)
        stack = Stack(cfg, LogMux(io.StringIO(), colour=False), threading.Event())
        with pytest.raises(StartupError, match=f"API_PORT {port} .* already in use"):
            stack.start()
    assert stack.children == []


def test_banner(tmp_path: Path) -> None:
    cfg = DevConfig.from_env({"API_PORT": "8123"}, cwd=tmp_path)
    stack = Stack(cfg, LogMux(io.StringIO(), colour=False), threading.Event())
    stack.sandbox_url = "http://127.0.0.1:9999"
    stack.kafka_bootstrap = "127.0.0.1:9092"
    text = render_banner(stack, 3.2)
    assert READY_MARKER in text
    assert "http://127.0.0.1:8123/docs" in text
    assert "Web UI         http://127.0.0.1:8123/ui/   sign in with the API key" in text
    assert "SANDBOX_URL    http://127.0.0.1:9999" in text
    assert "dev-api-key" in text
    assert "uv run zuora-sync" in text
    assert "source var/devstack.env" in text
