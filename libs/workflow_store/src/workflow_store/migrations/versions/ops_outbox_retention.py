"""outbox claims and database order; indexes for retention and the run list

- ``outbox.seq``: publication order from the database (a sequence on PostgreSQL; on SQLite,
  whose writers are serialised, the enqueue sets ``max(seq) + 1``), back-filled in
  ``created_at`` order for existing rows.
- ``outbox.claimed_by`` / ``claimed_until`` / ``dead_at``: relay claims, per-row retry delay and
  parked rows.
- Indexes for pruning (``processed_messages.processed_at``, sent outbox rows, ``sync_runs``
  by start) and for the newest-first run list.

Revision ID: ops_outbox_retention
Revises: 0001
Create Date: 2026-12-02 16:00:19.434324

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'ops_outbox_retention'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_PENDING = sa.text('sent_at IS NULL AND dead_at IS NULL')


def _postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    """Upgrade schema."""
    postgres = _postgres()
    op.add_column('outbox', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.add_column('outbox', sa.Column('claimed_by', sa.String(length=64), nullable=True))
    op.add_column('outbox', sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('outbox', sa.Column('dead_at', sa.DateTime(timezone=True), nullable=True))
    if postgres:
        op.execute('CREATE SEQUENCE outbox_seq')
        op.execute(
            'UPDATE outbox SET seq = ordered.n FROM ('
            ' SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM outbox'
            ') AS ordered WHERE outbox.id = ordered.id'
        )
        op.execute("SELECT setval('outbox_seq', coalesce((SELECT max(seq) FROM outbox), 0) + 1, false)")
        op.alter_column('outbox', 'seq', server_default=sa.text("nextval('outbox_seq')"))
        op.execute('ALTER SEQUENCE outbox_seq OWNED BY outbox.seq')
    else:
        op.execute(
            'UPDATE outbox SET seq = (SELECT count(*) FROM outbox AS earlier'
            ' WHERE earlier.created_at < outbox.created_at'
            ' OR (earlier.created_at = outbox.created_at AND earlier.id <= outbox.id))'
        )
    op.drop_index('ix_outbox_pending', table_name='outbox', postgresql_where=sa.text('sent_at IS NULL'))
    op.create_index('ix_outbox_pending_key_seq', 'outbox', ['key', 'seq'], unique=False, postgresql_where=_PENDING)
    op.create_index('ix_outbox_pending_seq', 'outbox', ['seq'], unique=False, postgresql_where=_PENDING)
    op.create_index('ix_outbox_sent_at', 'outbox', ['sent_at'], unique=False, postgresql_where=sa.text('sent_at IS NOT NULL'))
    op.create_index('ix_processed_messages_processed_at', 'processed_messages', ['processed_at'], unique=False)
    op.create_index('ix_sync_runs_started_at_id', 'sync_runs', ['started_at', 'id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_sync_runs_started_at_id', table_name='sync_runs')
    op.drop_index('ix_processed_messages_processed_at', table_name='processed_messages')
    op.drop_index('ix_outbox_sent_at', table_name='outbox', postgresql_where=sa.text('sent_at IS NOT NULL'))
    op.drop_index('ix_outbox_pending_seq', table_name='outbox', postgresql_where=_PENDING)
    op.drop_index('ix_outbox_pending_key_seq', table_name='outbox', postgresql_where=_PENDING)
    op.create_index('ix_outbox_pending', 'outbox', ['sent_at', 'created_at'], unique=False, postgresql_where=sa.text('sent_at IS NULL'))
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('dead_at')
        batch.drop_column('claimed_until')
        batch.drop_column('claimed_by')
        batch.drop_column('seq')
    # The sequence is owned by outbox.seq: dropping the column dropped it.
