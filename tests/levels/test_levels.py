"""The test levels of the root conftest.py: each test gets the level its fixtures show, and a unit
test that reaches for the network or a database fails loudly (so `make test-unit` proves "no
database, no broker, no network" rather than hoping for it)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import httpx
import psycopg
import pytest

ROOT_CONFTEST = Path(__file__).resolve().parents[2] / "conftest.py"

pytestmark = pytest.mark.unit  # these tests themselves run offline


def test_a_tcp_connect_raises() -> None:
    with pytest.raises(RuntimeError, match="unit test may not connect"):
        socket.create_connection(("127.0.0.1", 5432), timeout=1)


def test_binding_a_port_raises() -> None:
    with socket.socket() as sock, pytest.raises(RuntimeError, match="unit test may not bind"):
        sock.bind(("127.0.0.1", 0))


async def test_asyncio_and_httpx_connects_raise() -> None:
    with pytest.raises(RuntimeError, match="unit test may not connect"):
        await asyncio.open_connection("127.0.0.1", 5432)
    async with httpx.AsyncClient() as client:
        with pytest.raises(Exception) as info:  # anyio wraps it in an ExceptionGroup
            await client.get("http://127.0.0.1:5432/")
    assert "unit test may not connect" in _messages(info.value)


async def test_database_connects_raise(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="PostgreSQL"):
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    with pytest.raises(RuntimeError, match="PostgreSQL"):
        await psycopg.AsyncConnection.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    with pytest.raises(RuntimeError, match="SQLite"):
        sqlite3.connect(tmp_path / "store.db")


def _messages(exc: BaseException) -> str:
    """Every message in ``exc``, its causes and (for groups) its members."""
    parts = [str(exc)]
    if isinstance(exc, BaseExceptionGroup):
        parts += [_messages(member) for member in exc.exceptions]
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            parts.append(_messages(linked))
    return "\n".join(parts)


def test_unix_sockets_stay_usable() -> None:
    # asyncio's self-pipe and subprocess pipes: not the network.
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makeini(
        "[pytest]\nmarkers =\n    unit: u\n    integration: i\n    e2e: e\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_mixed="""
        import pytest, socket

        def test_pure():
            assert 1 + 1 == 2

        def test_database(postgres_url):
            pass

        def test_sandbox(zuora_sandbox):
            pass

        @pytest.mark.integration
        def test_marked_by_hand():
            pass

        @pytest.mark.e2e
        def test_processes():
            pass

        def test_dynamic_database(request):
            request.getfixturevalue("postgres_url")

        def test_unmarked_network():
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        """
    )
    return pytester


# In this process (a subprocess per run costs seconds): Playwright's plugin does not nest.
_INNER = ("-p", "no:playwright", "-p", "no:randomly", "-p", "no:cacheprovider")


def _selected(pytester: pytest.Pytester, expression: str) -> set[str]:
    result = pytester.runpytest(*_INNER, "--collect-only", "-q", "-m", expression)
    return {line.split("::")[1] for line in result.outlines if "::" in line}


def test_each_test_gets_the_level_its_fixtures_show(project: pytest.Pytester) -> None:
    assert _selected(project, "unit") == {
        "test_pure",
        "test_dynamic_database",
        "test_unmarked_network",
    }
    assert _selected(project, "integration and not e2e") == {
        "test_database",
        "test_sandbox",
        "test_marked_by_hand",
    }
    assert _selected(project, "e2e") == {"test_processes"}


def test_a_unit_test_that_reaches_out_fails_loudly(project: pytest.Pytester) -> None:
    result = project.runpytest(*_INNER, "-m", "unit")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_dynamic_database*classified unit but set up 'postgres_url'*",
            "*unit test may not connect ('127.0.0.1', 9)*",
        ]
    )
