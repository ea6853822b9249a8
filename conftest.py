"""Fixtures shared by every package's tests.

PostgreSQL is real: each test that asks for a database gets a fresh one with a unique name,
dropped afterwards (the server is shared by every run on the machine and keeps state).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

pytest_plugins = ["zuora_sandbox.testing", "event_bus.testing"]

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
