"""Migrations: empty -> head -> empty on PostgreSQL and SQLite, no drift, sync + async API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Uuid, bindparam, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from workflow_store import migrate
from workflow_store.db import create_engine
from workflow_store.models import Base, UTCDateTime

DEFINITIONS_REVISION = "0002_workflow_definitions"
DEFINITION_TABLES = {"workflow_definitions", "workflow_tasks", "workflow_linkages"}
CUSTOMER_ID = uuid.uuid4()
NOW = datetime(2026, 12, 1, tzinfo=UTC)
# Typed parameters, so raw SQL binds UUIDs and datetimes the way the models do on both dialects.
TYPED = (bindparam("id", type_=Uuid()), bindparam("now", type_=UTCDateTime()))

TABLES = {
    "customers",
    "workflows",
    "sync_runs",
    "outbox",
    "processed_messages",
    "workflow_definitions",
    "workflow_tasks",
    "workflow_linkages",
}


async def _tables(url: str) -> set[str]:
    eng = create_engine(url)
    try:
        async with eng.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await eng.dispose()
    return set(names)


async def _columns(url: str, table: str) -> set[str]:
    eng = create_engine(url)
    try:
        async with eng.connect() as conn:
            columns = await conn.run_sync(lambda c: inspect(c).get_columns(table))
    finally:
        await eng.dispose()
    return {column["name"] for column in columns}


async def test_upgrade_to_head_and_downgrade_to_empty(db_url: str) -> None:
    assert await migrate.current_async(db_url) is None

    await migrate.upgrade_async(db_url)
    assert await migrate.current_async(db_url) == migrate.head()
    assert await _tables(db_url) == TABLES | {"alembic_version"}
    await migrate.check_async(db_url)

    await migrate.downgrade_async(db_url, "base")
    assert await migrate.current_async(db_url) is None
    assert await _tables(db_url) <= {"alembic_version"}

    # and back up again: downgrade really left a clean slate
    await migrate.upgrade_async(db_url)
    await migrate.check_async(db_url)


async def test_model_tables_are_all_migrated() -> None:
    assert set(Base.metadata.tables) == TABLES


def _previous(revision: str) -> str | None:
    script = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(revision)
    assert script is not None
    down = script.down_revision
    assert down is None or isinstance(down, str)  # one line of history, no merge points
    return down


def test_migrations_have_exactly_one_head() -> None:
    assert len(ScriptDirectory.from_config(migrate.alembic_config()).get_heads()) == 1


async def test_downgrade_one_step_from_head(db_url: str) -> None:
    await migrate.upgrade_async(db_url)
    await migrate.downgrade_async(db_url)  # default "-1"
    assert await migrate.current_async(db_url) == _previous(migrate.head())
    await migrate.upgrade_async(db_url)  # and the step up again works on what it left
    await migrate.check_async(db_url)


async def test_outbox_order_is_backfilled_from_created_at(db_url: str) -> None:
    # Rows pending when the outbox gains its database order keep their enqueue order.
    await migrate.upgrade_async(db_url, "0001")
    eng = create_engine(db_url)
    stamps = ["2026-12-01 10:00:02", "2026-12-01 10:00:01", "2026-12-01 10:00:03"]
    try:
        async with eng.begin() as conn:
            for n, stamp in enumerate(stamps):
                await conn.execute(
                    text(
                        "INSERT INTO outbox (id, topic, payload, created_at, attempts)"
                        " VALUES (:id, 't', '{}', :at, 0)"
                    ),
                    {"id": f"00000000-0000-0000-0000-00000000000{n}", "at": stamp},
                )
        await migrate.upgrade_async(db_url, "ops_outbox_retention")
        async with eng.connect() as conn:
            rows = (await conn.execute(text("SELECT created_at FROM outbox ORDER BY seq"))).all()
        assert [str(r[0])[:19] for r in rows] == sorted(stamps)
    finally:
        await eng.dispose()


async def test_definitions_migration_down_and_up_again(db_url: str) -> None:
    """Downgrading below the definitions revision drops its tables and sync_runs columns
    (with rows in them), and upgrading restores them."""
    await migrate.upgrade_async(db_url, DEFINITIONS_REVISION)
    eng = create_engine(db_url)
    try:
        async with eng.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO customers (id, name, base_url, client_id,"
                    " client_secret_encrypted, active, credential_status, created_at, updated_at)"
                    " VALUES (:id, 'c', 'u', 'i', 's', true, 'unknown', :now, :now)"
                ).bindparams(*TYPED),
                {"id": CUSTOMER_ID, "now": NOW},
            )
            await conn.execute(
                text(
                    "INSERT INTO sync_runs (id, customer_id, reason, status, started_at,"
                    " definitions_fetched) VALUES (:id, :c, 'manual', 'succeeded', :now, 3)"
                ).bindparams(*TYPED, bindparam("c", type_=Uuid())),
                {"id": uuid.uuid4(), "c": CUSTOMER_ID, "now": NOW},
            )
    finally:
        await eng.dispose()
    await migrate.downgrade_async(db_url, _previous(DEFINITIONS_REVISION) or "base")
    assert not await _tables(db_url) & DEFINITION_TABLES
    assert "definitions_fetched" not in await _columns(db_url, "sync_runs")
    await migrate.upgrade_async(db_url)
    assert await _tables(db_url) >= DEFINITION_TABLES
    await migrate.check_async(db_url)


def test_sync_api_outside_event_loop(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    assert migrate.current(sqlite_url) == migrate.head()
    migrate.check(sqlite_url)
    migrate.downgrade(sqlite_url, "base")
    assert migrate.current(sqlite_url) is None


async def test_sync_api_inside_running_loop(db_url: str) -> None:
    # A sync caller inside async code (e.g. a CLI helper) must not trip over the running loop.
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head()
    migrate.check(db_url)
    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None


async def test_plain_urls_are_normalised(postgres_url: str, sqlite_url: str) -> None:
    plain_pg = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    plain_sqlite = sqlite_url.replace("sqlite+aiosqlite://", "sqlite://")
    for url in (plain_pg, plain_sqlite):
        await migrate.upgrade_async(url)
        assert await migrate.current_async(url) == migrate.head()


async def test_check_reports_drift(db_url: str) -> None:
    await migrate.upgrade_async(db_url)
    eng = create_engine(db_url)
    try:
        async with eng.begin() as conn:
            await conn.execute(text("DROP INDEX ix_workflows_customer_id_name"))
    finally:
        await eng.dispose()
    with pytest.raises(migrate.SchemaDriftError, match="ix_workflows_customer_id_name"):
        await migrate.check_async(db_url)


async def test_sqlite_engine_enforces_foreign_keys_after_migration(sqlite_url: str) -> None:
    await migrate.upgrade_async(sqlite_url)
    eng: AsyncEngine = create_engine(sqlite_url)
    try:
        async with eng.connect() as conn:
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 5000
    finally:
        await eng.dispose()


@pytest.mark.integration  # creates a SQLite database file
async def test_sqlite_file_directory_is_created(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/store.db"
    await migrate.upgrade_async(url)
    assert await migrate.current_async(url) == migrate.head()


async def test_workflow_counts_are_backfilled_and_dropped_again(db_url: str) -> None:
    """The counts on the customer rows start as the workflows table's own counts."""
    await migrate.upgrade_async(db_url, DEFINITIONS_REVISION)
    eng = create_engine(db_url)
    insert_workflow = text(
        "INSERT INTO workflows (customer_id, zuora_id, name, status, raw, content_hash,"
        " first_seen_at, last_changed_at) VALUES (:id, :z, 'w', :s, '{}', 'h', :now, :now)"
    ).bindparams(*TYPED)
    try:
        async with eng.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO customers (id, name, base_url, client_id,"
                    " client_secret_encrypted, active, credential_status, created_at, updated_at)"
                    " VALUES (:id, 'c', 'u', 'i', 's', true, 'unknown', :now, :now)"
                ).bindparams(*TYPED),
                {"id": CUSTOMER_ID, "now": NOW},
            )
            for z, status in enumerate(("Active", "Inactive", "ACTIVE", None)):
                await conn.execute(
                    insert_workflow, {"id": CUSTOMER_ID, "z": z, "s": status, "now": NOW}
                )
        await migrate.upgrade_async(db_url)
        async with eng.connect() as conn:
            counts = (
                await conn.execute(
                    text("SELECT workflow_count, active_workflow_count FROM customers")
                )
            ).one()
        assert tuple(counts) == (4, 2)
    finally:
        await eng.dispose()
    await migrate.downgrade_async(db_url, DEFINITIONS_REVISION)
    assert "workflow_count" not in await _columns(db_url, "customers")


async def _indexes(url: str, table: str) -> dict[str, list[str | None]]:
    eng = create_engine(url)
    try:
        async with eng.connect() as conn:
            found = await conn.run_sync(lambda c: inspect(c).get_indexes(table))
    finally:
        await eng.dispose()
    return {str(index["name"]): list(index["column_names"]) for index in found}


async def test_per_customer_updated_index_up_and_down(db_url: str) -> None:
    """0004: the customer's list by last update has its own index; the step down drops it."""
    name = "ix_workflows_customer_id_zuora_updated_at"
    await migrate.upgrade_async(db_url, "0004_workflow_list_by_customer")
    indexes = await _indexes(db_url, "workflows")
    assert indexes[name] == ["customer_id", "zuora_updated_at", "zuora_id"]
    await migrate.downgrade_async(db_url, "0003_ui_read_path")
    assert name not in await _indexes(db_url, "workflows")
