"""A customer's workflow list rendered to JSON by PostgreSQL: the read API's hot path.

Profiling the list route showed most of its CPU in Python per row and per statement (SQLAlchemy
compiles, result processing, one dict per row, orjson). Here PostgreSQL builds the whole page
document (items, total, page, page_size) and the API passes the bytes through: no per-row Python
object, one round trip on an autocommit connection with a server-side prepared statement.

The SQL is built with SQLAlchemy from the same field map as the ORM path
(:data:`application.workflow_reads.SUMMARY_FIELDS`), compiled once per query shape (sort key and
which filters are present) and executed on a connection of the read pool the caller passes in
(:class:`ReadPool`; the API's adapter is a psycopg pool). An empty page (a customer with no
match, or an unknown customer) falls back to the ORM path, which tells the two apart. SQLite (the
embedded `make run`) always takes the ORM path.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    null,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.sql.util import ClauseAdapter
from workflow_store.models import Customer, StoredWorkflow, UTCDateTime

from application.workflow_reads import (
    SUMMARY_FIELDS,
    TRIGGER_COLUMNS,
    FieldMap,
    WorkflowSort,
    WorkflowTrigger,
    order_by,
)

__all__ = ["ReadConnection", "ReadPool", "conninfo_for", "page_json", "page_sql_for"]

W = StoredWorkflow


class _Cursor(Protocol):
    async def fetchone(self) -> Any: ...


class ReadConnection(Protocol):
    """An autocommit connection taking psycopg pyformat SQL (``%(name)s`` parameters)."""

    async def execute(self, query: str, params: Mapping[str, Any], /) -> _Cursor: ...


class ReadPool(Protocol):
    r"""Where the page runs: a pool lending :class:`ReadConnection`\ s (psycopg's
    ``AsyncConnectionPool`` is one)."""

    def connection(self) -> AbstractAsyncContextManager[Any]: ...


_PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
# Colons quoted as to_char literals: the same text, and no ``:name`` for pgbench to take as a
# variable (the benchmark runs this very SQL).
_TIMESTAMP = 'YYYY-MM-DD"T"HH24":"MI":"SS.US"Z"'


def conninfo_for(database_url: str) -> str | None:
    """libpq conninfo for a PostgreSQL SQLAlchemy URL; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _const(text: str) -> ColumnElement[Any]:
    # Our own constants (field names, formats), rendered into the SQL text: the statement's
    # only parameters are the request's.
    return literal_column("'" + text.replace("'", "''") + "'")


def _json_value(column: Any) -> Any:
    # Timestamps in the same RFC 3339 UTC form whatever the session's TimeZone.
    if isinstance(column.type, UTCDateTime):
        # orjson's form (OPT_UTC_Z): seconds, microseconds only when not zero, then "Z"; NULL
        # stays NULL. One to_char per value (it is most of the page's CPU in PostgreSQL): the
        # six digits always, then ".000000Z" cut to "Z" (the only "Z" is the last character).
        text = func.to_char(func.timezone(_const("UTC"), column), _const(_TIMESTAMP))
        return func.replace(text, _const(".000000Z"), _const("Z"))
    return column


def _json_object(fields: FieldMap) -> ColumnElement[Any]:
    args: list[Any] = []
    for key, value in fields.items():
        if isinstance(value, dict):
            inner = _json_object(value)
            all_null = and_(*(column.is_(None) for column in value.values()))
            args += [_const(key), case((all_null, null()), else_=inner)]
        else:
            args += [_const(key), _json_value(value)]
    return func.json_build_object(*args)


def _json_row(fields: FieldMap) -> Any:
    """One item as a LATERAL row of named columns: aggregated whole (``json_agg(item)``), it is
    serialised from its row type, about twice as fast in PostgreSQL as a ``json_build_object``
    of the same 32 arguments (a variadic "any" call resolves each argument's type per row)."""
    columns: list[Any] = []
    for key, value in fields.items():
        if isinstance(value, dict):
            all_null = and_(*(column.is_(None) for column in value.values()))
            columns.append(case((all_null, null()), else_=_json_object(value)).label(key))
        else:
            columns.append(_json_value(value).label(key))
    return select(*columns).correlate(W, Customer).lateral("item")


@dataclass(frozen=True)
class _Shape:
    sort: WorkflowSort
    q: bool
    status: bool
    trigger: WorkflowTrigger | None


@cache
def _page_sql(shape: _Shape) -> str:
    """The page document's SQL for one shape, as psycopg pyformat text.

    A deferred join: the inner query walks the customer's rows in the page's order (an index
    walk, ``0004_workflow_list_indexes``) and keeps only the ids of one page; the outer one
    reads those rows and builds their JSON, so no JSON is built for rows skipped by OFFSET.
    The total is a separate count of the matches (an index scan) instead of a window count over
    the rows of the page query, which made PostgreSQL carry every match through two window
    aggregates."""
    listed = W.__table__.alias("listed")
    adapter = ClauseAdapter(listed)

    def conditions() -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = [W.customer_id == bindparam("customer_id")]
        if shape.q:
            found.append(W.name.ilike(bindparam("q_pattern"), escape="/"))
        if shape.status:
            found.append(func.lower(W.status) == bindparam("status"))
        if shape.trigger is not None:
            found.append(TRIGGER_COLUMNS[shape.trigger].is_(True))
        return found

    ordering = [adapter.traverse(term) for term in order_by(shape.sort)]
    page = (
        select(listed.c.id, func.row_number().over(order_by=ordering).label("ord"))
        .where(*(adapter.traverse(condition) for condition in conditions()))
        .order_by(*ordering)
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
        .subquery("p")
    )
    counted = W.__table__.alias("counted")
    total = (
        select(func.count())
        .select_from(counted)
        .where(*(ClauseAdapter(counted).traverse(condition) for condition in conditions()))
        .scalar_subquery()
    )
    item = _json_row({**SUMMARY_FIELDS, "last_synced_at": Customer.last_successful_sync_at})
    document = func.json_build_object(
        _const("items"),
        func.coalesce(
            func.json_agg(postgresql.aggregate_order_by(item.table_valued(), page.c.ord)),
            _const("[]").cast(postgresql.JSON),
        ),
        _const("total"),
        total,
        _const("page"),
        bindparam("page"),
        _const("page_size"),
        bindparam("limit"),
    )
    stmt = select(func.count(), document.cast(postgresql.TEXT)).select_from(
        page.join(W, W.id == page.c.id)
        .join(Customer, Customer.id == W.customer_id)
        .join(item, true())
    )
    return str(stmt.compile(dialect=_PSYCOPG))


def _like_pattern(text: str) -> str:
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def page_sql_for(
    customer_id: uuid.UUID,
    *,
    page: int,
    page_size: int,
    q: str | None = None,
    status: str | None = None,
    trigger: WorkflowTrigger | None = None,
    sort: WorkflowSort = "name",
) -> tuple[str, dict[str, Any]]:
    """The page document's SQL (psycopg pyformat, compiled once per shape) and its parameters."""
    shape = _Shape(sort=sort, q=bool(q), status=bool(status), trigger=trigger)
    params: dict[str, Any] = {
        "customer_id": customer_id,
        "offset": (page - 1) * page_size,
        "limit": page_size,
        "page": page,
    }
    if q:
        params["q_pattern"] = _like_pattern(q)
    if status:
        params["status"] = status.lower()
    return _page_sql(shape), params


async def page_json(
    pool: ReadPool,
    customer_id: uuid.UUID,
    *,
    page: int,
    page_size: int,
    q: str | None = None,
    status: str | None = None,
    trigger: WorkflowTrigger | None = None,
    sort: WorkflowSort = "name",
) -> bytes | None:
    """The page document, or None when the page is empty (the caller tells an unknown customer
    from a page past the end with :func:`application.workflow_reads.list_workflows`)."""
    sql, params = page_sql_for(
        customer_id,
        page=page,
        page_size=page_size,
        q=q,
        status=status,
        trigger=trigger,
        sort=sort,
    )
    async with pool.connection() as conn:
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
    if row is None or not row[0]:
        return None
    text: str = row[1]
    return text.encode()
