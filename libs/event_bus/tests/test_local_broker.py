from __future__ import annotations

import socket

import pytest
from event_bus.local_broker import LocalBrokerError, start_local_broker, tansu_command

# Starts Tansu processes itself (not through the local_kafka fixture).
pytestmark = pytest.mark.integration


def _connectable(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def test_start_and_stop() -> None:
    with start_local_broker() as broker:
        assert broker.is_running()
        assert broker.pid > 0
        assert _connectable(broker.bootstrap_servers)
    assert not broker.is_running()
    assert not _connectable(broker.bootstrap_servers)
    broker.stop()  # idempotent


def test_port_in_use_is_reported() -> None:
    with start_local_broker() as first, pytest.raises(LocalBrokerError):
        start_local_broker(first.port, ready_timeout=3)


def test_restart_on_same_port_is_empty() -> None:
    broker = start_local_broker()
    port = broker.port
    broker.stop()
    with start_local_broker(port) as again:
        assert again.bootstrap_servers == f"127.0.0.1:{port}"


def test_tansu_command_listens_on_loopback_in_memory_and_scrubs_its_env() -> None:
    command = tansu_command(19092, environ={"LISTENER_URL": "tcp://0.0.0.0:1", "PATH": "/bin"})
    flags = dict(zip(command.argv[2::2], command.argv[3::2], strict=True))
    assert command.argv[1] == "broker"
    assert flags == {
        "--listener-url": "tcp://127.0.0.1:19092",
        "--advertised-listener-url": "tcp://127.0.0.1:19092",
        "--storage-engine": "memory://tansu/",
    }
    assert command.env == {"PATH": "/bin"}  # a stray LISTENER_URL would override the flag
