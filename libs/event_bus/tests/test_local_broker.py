from __future__ import annotations

import socket

import pytest
from event_bus.local_broker import LocalBrokerError, start_local_broker


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
