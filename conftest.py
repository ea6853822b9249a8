"""Fixtures shared by every package's tests, and the test levels.

PostgreSQL is real: each test that asks for a database gets a fresh one with a unique name,
dropped afterwards (the server is shared by every run on the machine and keeps state).

Test levels (``make test-unit`` / ``test-integration`` / ``test-e2e``) are decided here, at
collection, from what a test really uses, never from a marker someone remembered to write:

- ``e2e``: under ``tests/e2e`` or ``tests/ui``, or marked ``e2e`` by hand (starts real processes);
- ``integration``: marked ``integration`` by hand, or its fixture closure holds one of
  ``INFRASTRUCTURE_FIXTURES`` (PostgreSQL, a database file, the sandbox over HTTP, a broker);
- ``unit``: everything else. A unit test runs with AF_INET/AF_INET6 ``connect``/``bind``,
  psycopg and sqlite3 connects raising and with the infrastructure fixtures refusing to set up
  (even through ``request.getfixturevalue``), so a unit test that touches the network or a
  database fails loudly instead of being mislabelled.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest_plugins = ["zuora_sandbox.testing", "event_bus.testing", "pytester"]

_ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_connect() -> psycopg.Connection:
    try:
        return psycopg.connect(_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {_ADMIN_URL}: {exc}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """SQLAlchemy async URL of a brand-new, empty PostgreSQL database."""
    name = f"zws_test_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = _ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """SQLAlchemy async URL of a brand-new SQLite database file."""
    return f"sqlite+aiosqlite:///{tmp_path}/test.db"


# --- test levels -------------------------------------------------------------------------------

# Fixtures that reach outside the test process (or its temporary directory's database file).
# A test whose fixture closure holds one of these is an integration test. Add a fixture here when
# it talks to real infrastructure and no fixture below it in the closure already does.
INFRASTRUCTURE_FIXTURES = frozenset(
    {
        "postgres_url",  # a real PostgreSQL database (this file)
        "sqlite_url",  # a database file: SQL against a real engine, as cosmicpython's integration
        "zuora_sandbox",  # the sandbox served over real HTTP (zuora_sandbox.testing)
        "local_kafka",  # a Tansu broker process (event_bus.testing)
    }
)
LEVELS = ("unit", "integration", "e2e")
_E2E_DIRS = (Path(__file__).parent / "tests" / "e2e", Path(__file__).parent / "tests" / "ui")


def _level(item: pytest.Item) -> str:
    path = Path(str(item.path))
    if item.get_closest_marker("e2e") is not None or any(
        path.is_relative_to(directory) for directory in _E2E_DIRS
    ):
        return "e2e"
    closure = set(getattr(item, "fixturenames", ()))
    if item.get_closest_marker("integration") is not None or closure & INFRASTRUCTURE_FIXTURES:
        return "integration"
    return "unit"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        level = _level(item)
        if item.get_closest_marker(level) is None:
            item.add_marker(level)


class InfrastructureInUnitTestError(RuntimeError):
    """A test classified ``unit`` reached for the network or a database."""


_HOW_TO_FIX = (
    "use a fake through a port, or give the test an infrastructure fixture "
    "(conftest.py INFRASTRUCTURE_FIXTURES) or an `integration` mark so it is an integration test"
)


def _refuse_inet(original: Any, verb: str) -> Any:
    def guarded(sock: socket.socket, address: Any, *args: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise InfrastructureInUnitTestError(
                f"a unit test may not {verb} {address!r}: {_HOW_TO_FIX}"
            )
        return original(sock, address, *args)

    return guarded


def _refuse(what: str) -> Any:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        raise InfrastructureInUnitTestError(f"a unit test may not open {what}: {_HOW_TO_FIX}")

    return guarded


def _unit_guards() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement) patched while a unit test runs. IPv4/IPv6 sockets on the
    class, so asyncio, httpx, uvicorn and aiokafka are covered; libpq connects in C, so psycopg's
    entry points are refused; SQLite is a database too (a file, but SQL against a real engine)."""
    guards: list[tuple[object, str, Any]] = [
        (socket.socket, verb, _refuse_inet(getattr(socket.socket, verb), verb))
        for verb in ("connect", "connect_ex", "bind")
    ]
    guards += [
        (psycopg, "connect", _refuse("a PostgreSQL connection")),
        (psycopg.Connection, "connect", _refuse("a PostgreSQL connection")),
        (psycopg.AsyncConnection, "connect", _refuse("a PostgreSQL connection")),
        (sqlite3, "connect", _refuse("a SQLite database")),
    ]
    return guards


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _offline_if_unit(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _offline_if_unit(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _offline_if_unit(item))


def _offline_if_unit(item: pytest.Item) -> Generator[None, object, object]:
    """Run one phase of ``item`` with the unit guards on, if it is a unit test."""
    if item.get_closest_marker("unit") is None:
        return (yield)
    guards = _unit_guards()
    # What the owner itself holds (socket.socket inherits connect from _socket.socket): restored
    # exactly, so nothing is left shadowing the inherited attribute afterwards.
    saved = [(owner, name, vars(owner).get(name, _INHERITED)) for owner, name, _ in guards]
    for owner, name, replacement in guards:
        setattr(owner, name, replacement)
    try:
        return (yield)
    finally:
        for owner, name, original in saved:
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


_INHERITED = object()


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    if fixturedef.argname in INFRASTRUCTURE_FIXTURES and request.node.get_closest_marker("unit"):
        pytest.fail(
            f"{request.node.nodeid} was classified unit but set up {fixturedef.argname!r} at run "
            "time (request.getfixturevalue?): mark it integration (a param mark will do)",
            pytrace=False,
        )
