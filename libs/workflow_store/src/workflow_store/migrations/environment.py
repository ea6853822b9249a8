"""Alembic environment of the workflow store (run by ``env.py``).

Normally driven by :mod:`workflow_store.migrate`, which hands over an open connection in
``context.config.attributes["connection"]``. Without one, the URL comes from
``context.config.attributes["url"]``, the ``sqlalchemy.url`` option or ``DATABASE_URL``, and the
migrations run through an async engine.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from ..db import normalize_url
from ..migrate import migration_engine
from ..models import Base, UTCDateTime
from ..settings import StoreSettings

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Keep generated migrations free of imports from our package: a migration must keep
    # working even after the model code it was generated from has changed.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_options(connection: Connection) -> dict[str, Any]:
    return {
        "connection": connection,
        "target_metadata": target_metadata,
        "render_as_batch": connection.dialect.name == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
    }


def _url() -> str:
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        store = StoreSettings()  # DATABASE_URL, read as the services read it
        url = store.database_url if "database_url" in store.model_fields_set else None
    if not url:
        raise RuntimeError("no database URL given to the migrations (set DATABASE_URL)")
    return str(url)


def run_migrations_offline() -> None:
    url = normalize_url(_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(**_configure_options(connection))
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = migration_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


def run() -> None:
    """Run the migrations Alembic asked for (called by ``env.py`` on every command)."""
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
