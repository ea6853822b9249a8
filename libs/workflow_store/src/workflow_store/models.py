"""SQLAlchemy 2 models of the workflow store (PostgreSQL and SQLite).

Schema changes go through Alembic migrations in ``workflow_store/migrations``; ``check()`` in
``workflow_store.migrate`` fails when these models and the migrations drift apart.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# The values of the status / reason / kind columns below, defined once in the dependency-free
# contracts package (the messages and the metrics carry the same strings) and re-exported here.
from sync_messages.vocabulary import (
    COMPLETED_RUN_STATUSES,
    FAILED_RUN_STATUSES,
    REPLAYABLE_RUN_STATUSES,
    SUCCESSFUL_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    CredentialStatus,
    FailureKind,
    RunStatus,
    SyncReason,
)

__all__ = [
    "COMPLETED_RUN_STATUSES",
    "FAILED_RUN_STATUSES",
    "NAMING_CONVENTION",
    "OUTBOX_SEQUENCE",
    "REPLAYABLE_RUN_STATUSES",
    "SUCCESSFUL_RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "WORKFLOW_FIELDS",
    "WORKFLOW_KEY_COLUMNS",
    "WORKFLOW_RECORD_COLUMNS",
    "Base",
    "CredentialStatus",
    "Customer",
    "FailureKind",
    "OutboxMessage",
    "ProcessedMessage",
    "RunStatus",
    "StoredWorkflow",
    "SyncReason",
    "SyncRun",
    "UTCDateTime",
    "WorkflowDefinition",
    "WorkflowLinkage",
    "WorkflowTask",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always returns tz-aware UTC values.

    SQLite has no time zone support: values are stored as naive UTC and come back naive, so
    they are converted on the way in and marked UTC on the way out. A naive input value is
    taken to be UTC already (the same on both dialects, whatever the server's time zone).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=UTC)
        else:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONType,
    }


class Customer(Base):
    """One Zuora tenant with its OAuth client credentials (secret encrypted at rest)."""

    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    base_url: Mapped[str] = mapped_column(String(255), nullable=False)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False)
    client_secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    entity_id: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=true()
    )
    credential_status: Mapped[str] = mapped_column(
        String(20),
        nullable=False,
        default=CredentialStatus.UNKNOWN.value,
        server_default=CredentialStatus.UNKNOWN.value,
    )
    last_sync_status: Mapped[str | None] = mapped_column(String(20))  # a RunStatus
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    last_successful_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How many stored workflows the customer has (all, and status "Active"), for pages that
    # show totals without counting 100,000 rows per view. Recounted from the workflows table
    # in the transaction that writes them (workflow_store.workflow_counts), never incremented,
    # so a count is exact at every commit of the sync and cannot accumulate drift.
    workflow_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    active_workflow_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )

    workflows: Mapped[list[StoredWorkflow]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )
    sync_runs: Mapped[list[SyncRun]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
    )

    def __repr__(self) -> str:
        # Deliberately leaves out client_secret_encrypted (and client_id).
        return (
            f"Customer(id={self.id!s}, name={self.name!r}, base_url={self.base_url!r}, "
            f"active={self.active!r}, credential_status={self.credential_status!r}, "
            f"last_sync_status={self.last_sync_status!r})"
        )


class StoredWorkflow(Base):
    """The local copy of one Zuora workflow of one customer."""

    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("customer_id", "zuora_id"),
        Index("ix_workflows_customer_id_name", "customer_id", "name"),
        # One customer's list by last update (the API's sort=zuora_updated_at), migration 0004.
        Index(
            "ix_workflows_customer_id_zuora_updated_at",
            "customer_id",
            "zuora_updated_at",
            "zuora_id",
        ),
        # The operators' list across customers (handlers/workflow_index.py): each sort walks an
        # index and stops after one page instead of sorting 100,000 rows; the trigram index
        # serves the name search (ILIKE '%...%') when the text is selective.
        Index("ix_workflows_name_id", "name", "id"),
        Index("ix_workflows_zuora_id", "zuora_id"),
        Index("ix_workflows_zuora_updated_at", "zuora_updated_at"),
        Index("ix_workflows_status_name_id", "status", "name", "id"),
        Index(
            "ix_workflows_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    zuora_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(32))
    active_version_id: Mapped[int | None] = mapped_column(BigInteger)
    active_version: Mapped[str | None] = mapped_column(String(64))
    active_version_status: Mapped[str | None] = mapped_column(String(32))
    active_version_type: Mapped[str | None] = mapped_column(String(64))
    callout_trigger: Mapped[bool | None] = mapped_column(Boolean)
    ondemand_trigger: Mapped[bool | None] = mapped_column(Boolean)
    scheduled_trigger: Mapped[bool | None] = mapped_column(Boolean)
    interval: Mapped[str | None] = mapped_column(String(128))
    timezone: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(16))
    zuora_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    zuora_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="workflows", lazy="raise")

    def __repr__(self) -> str:
        return (
            f"StoredWorkflow(id={self.id!r}, customer_id={self.customer_id!s}, "
            f"zuora_id={self.zuora_id!r}, name={self.name!r}, status={self.status!r})"
        )


WORKFLOW_KEY_COLUMNS: tuple[str, ...] = ("id", "customer_id", "zuora_id")
"""Which workflow a row is: set on insert, never rewritten."""

WORKFLOW_RECORD_COLUMNS: tuple[str, ...] = (
    "raw",
    "content_hash",
    "first_seen_at",
    "last_changed_at",
)
"""What the sync keeps about a row (the raw item, its hash, when it was seen and changed)."""

WORKFLOW_FIELDS: tuple[str, ...] = tuple(
    c.name
    for c in StoredWorkflow.__table__.columns
    if c.name not in WORKFLOW_KEY_COLUMNS + WORKFLOW_RECORD_COLUMNS
)
"""The workflow's own fields, in table order: every other column of ``workflows``. A column
added to the table is one of them unless it is named above, so the API's summary, the CLI's
listing and the sync's update follow it (``test_schema`` fails until the API schema does)."""


class SyncRun(Base):
    """One attempt to sync one customer's workflows."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        Index("ix_sync_runs_status_started_at", "status", "started_at"),
        Index("ix_sync_runs_customer_id_started_at", "customer_id", "started_at"),
        # The unfiltered run list (newest first) and the retention prune (oldest first).
        Index("ix_sync_runs_started_at_id", "started_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    command_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(20), nullable=False)  # a SyncReason
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    forced: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # a RunStatus
    skip_reason: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    created: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    deleted: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    blocked_deletes: Mapped[int | None] = mapped_column(Integer)
    error_kind: Mapped[str | None] = mapped_column(String(20))  # a FailureKind
    error_message: Mapped[str | None] = mapped_column(Text)
    zuora_request_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    replay_of: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    # Workflow definitions (exports) this run fetched, stored as new, and failed to fetch.
    definitions_fetched: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    definitions_changed: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    definitions_failed: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )

    customer: Mapped[Customer] = relationship(back_populates="sync_runs", lazy="raise")

    def __repr__(self) -> str:
        return (
            f"SyncRun(id={self.id!s}, customer_id={self.customer_id!s}, reason={self.reason!r}, "
            f"attempt={self.attempt!r}, status={self.status!r})"
        )


OUTBOX_SEQUENCE = Sequence("outbox_seq")
"""Publication order of the outbox, from the database (not from each writer's clock)."""


class OutboxMessage(Base):
    """An event waiting to be published (transactional outbox).

    ``seq`` orders the rows (a PostgreSQL sequence; on SQLite, whose writers are serialised, the
    enqueue sets ``max(seq) + 1``). A relay *claims* a row by setting ``claimed_until``; the same
    column holds a failed row back until its next attempt. A row that failed ``attempts`` times
    while other rows were published is *parked* (``dead_at``): no longer pending, kept for an
    operator.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending_seq",
            "seq",
            postgresql_where=text("sent_at IS NULL AND dead_at IS NULL"),
        ),
        Index(
            "ix_outbox_pending_key_seq",
            "key",
            "seq",
            postgresql_where=text("sent_at IS NULL AND dead_at IS NULL"),
        ),
        Index("ix_outbox_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    seq: Mapped[int | None] = mapped_column(
        BigInteger, OUTBOX_SEQUENCE, server_default=OUTBOX_SEQUENCE.next_value()
    )
    topic: Mapped[str] = mapped_column(String(200), nullable=False)
    key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return (
            f"OutboxMessage(id={self.id!s}, seq={self.seq!r}, topic={self.topic!r}, "
            f"key={self.key!r}, sent_at={self.sent_at!r}, attempts={self.attempts!r}, "
            f"dead_at={self.dead_at!r})"
        )


class ProcessedMessage(Base):
    """A message a consumer has already handled (idempotent consumers)."""

    __tablename__ = "processed_messages"
    __table_args__ = (Index("ix_processed_messages_processed_at", "processed_at"),)

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"ProcessedMessage(consumer={self.consumer!r}, message_id={self.message_id!r})"


# -- workflow definitions (the export: workflow, tasks, linkages) ---------------------------------


class WorkflowDefinition(Base):
    """One distinct definition of one workflow (an export body), kept as history.

    Exactly one row per workflow is ``is_current``; the ``listed_*`` columns of that row hold what
    the listing said when it was fetched (the refetch trigger), ``checked_at`` when Zuora was last
    asked (the verification pass). Rows go with their workflow (ON DELETE CASCADE).
    """

    __tablename__ = "workflow_definitions"
    __table_args__ = (
        UniqueConstraint("workflow_id", "content_hash"),
        Index("ix_workflow_definitions_workflow_id_is_current", "workflow_id", "is_current"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False
    )
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    version_id: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[str | None] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    task_count: Mapped[int] = mapped_column(Integer, nullable=False)
    linkage_count: Mapped[int] = mapped_column(Integer, nullable=False)
    is_current: Mapped[bool] = mapped_column(Boolean, nullable=False)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    listed_version_id: Mapped[int | None] = mapped_column(BigInteger)
    listed_version: Mapped[str | None] = mapped_column(Text)
    listed_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return (
            f"WorkflowDefinition(id={self.id!r}, workflow_id={self.workflow_id!r}, "
            f"version={self.version!r}, content_hash={self.content_hash[:12]!r}, "
            f"is_current={self.is_current!r})"
        )


class WorkflowTask(Base):
    """A task of a workflow's current definition, in columns for search across customers."""

    __tablename__ = "workflow_tasks"
    __table_args__ = (
        Index("ix_workflow_tasks_customer_id_action_type", "customer_id", "action_type"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False, index=True
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(Text)
    action_type: Mapped[str | None] = mapped_column(Text)
    object: Mapped[str | None] = mapped_column(Text)
    call_type: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSONType, nullable=False)

    def __repr__(self) -> str:
        return (
            f"WorkflowTask(workflow_id={self.workflow_id!r}, task_id={self.task_id!r}, "
            f"name={self.name!r}, action_type={self.action_type!r})"
        )


class WorkflowLinkage(Base):
    """An edge of a workflow's current definition (``source_task_id`` null: the entry edge)."""

    __tablename__ = "workflow_linkages"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False, index=True
    )
    source_workflow_id: Mapped[int | None] = mapped_column(BigInteger)
    source_task_id: Mapped[int | None] = mapped_column(BigInteger)
    target_task_id: Mapped[int | None] = mapped_column(BigInteger)
    linkage_type: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return (
            f"WorkflowLinkage(workflow_id={self.workflow_id!r}, {self.source_task_id!r} -> "
            f"{self.target_task_id!r} [{self.linkage_type!r}])"
        )
