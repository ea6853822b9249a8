"""Engine and session helpers: async SQLAlchemy on PostgreSQL (psycopg 3) or SQLite (aiosqlite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "create_engine",
    "create_session_factory",
    "ensure_sqlite_directory",
    "normalize_url",
    "redact_url",
]

SQLITE_BUSY_TIMEOUT_MS = 5000


def normalize_url(url: str | URL) -> URL:
    """Map plain URLs to the async drivers this project uses.

    ``postgresql://`` / ``postgres://`` / ``postgresql+asyncpg://`` become ``postgresql+psycopg://``;
    ``sqlite://`` becomes ``sqlite+aiosqlite://``. Other URLs are returned unchanged.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres") and parsed.drivername != "postgresql+psycopg":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.drivername != "sqlite+aiosqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL as text with any password masked (for logs and error messages)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def ensure_sqlite_directory(url: str | URL) -> None:
    """Create the directory of a SQLite database file (e.g. ``./var``) if it is missing."""
    parsed = make_url(url) if isinstance(url, str) else url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # URI filenames: leave them to SQLite
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str | URL, **kw: Any) -> AsyncEngine:
    """Create an :class:`AsyncEngine` with the project's per-dialect defaults.

    SQLite: foreign keys on (needed for ON DELETE CASCADE), WAL journal, 5 s busy timeout on
    every connection; the database file's directory is created if missing. PostgreSQL:
    ``pool_pre_ping`` and a modest pool. ``kw`` overrides the defaults and is passed on to
    :func:`sqlalchemy.ext.asyncio.create_async_engine`.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    # orjson for the JSON columns (the raw Zuora items): the json module was a visible share of
    # the CPU of writing workflow rows.
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if backend == "postgresql":
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=10, pool_recycle=1800)
    options.update(kw)
    if backend == "sqlite":
        ensure_sqlite_directory(parsed)
    engine = _create_async_engine(parsed, **options)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory for ``engine``; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
