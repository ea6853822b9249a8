"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 01:31:27.791769

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('customers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('base_url', sa.String(length=255), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('client_secret_encrypted', sa.Text(), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('credential_status', sa.String(length=20), server_default='unknown', nullable=False),
    sa.Column('last_sync_status', sa.String(length=20), nullable=True),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_error', sa.Text(), nullable=True),
    sa.Column('last_successful_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('name', name=op.f('uq_customers_name'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_index('ix_outbox_pending', 'outbox', ['sent_at', 'created_at'], unique=False, postgresql_where=sa.text('sent_at IS NULL'))
    op.create_table('processed_messages',
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('message_id', sa.String(length=100), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'message_id', name=op.f('pk_processed_messages'))
    )
    op.create_table('sync_runs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('command_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('attempt', sa.Integer(), server_default='1', nullable=False),
    sa.Column('forced', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('skip_reason', sa.Text(), nullable=True),
    sa.Column('pages', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated', sa.Integer(), server_default='0', nullable=False),
    sa.Column('deleted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('unchanged', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('blocked_deletes', sa.Integer(), nullable=True),
    sa.Column('error_kind', sa.String(length=20), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('zuora_request_id', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('replay_of', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sync_runs_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    op.create_index(op.f('ix_sync_runs_command_id'), 'sync_runs', ['command_id'], unique=False)
    op.create_index(op.f('ix_sync_runs_customer_id'), 'sync_runs', ['customer_id'], unique=False)
    op.create_index('ix_sync_runs_customer_id_started_at', 'sync_runs', ['customer_id', 'started_at'], unique=False)
    op.create_index('ix_sync_runs_status_started_at', 'sync_runs', ['status', 'started_at'], unique=False)
    op.create_table('workflows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('zuora_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('active_version_id', sa.BigInteger(), nullable=True),
    sa.Column('active_version', sa.String(length=64), nullable=True),
    sa.Column('active_version_status', sa.String(length=32), nullable=True),
    sa.Column('active_version_type', sa.String(length=64), nullable=True),
    sa.Column('callout_trigger', sa.Boolean(), nullable=True),
    sa.Column('ondemand_trigger', sa.Boolean(), nullable=True),
    sa.Column('scheduled_trigger', sa.Boolean(), nullable=True),
    sa.Column('interval', sa.String(length=128), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('zuora_created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('zuora_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_workflows_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflows')),
    sa.UniqueConstraint('customer_id', 'zuora_id', name=op.f('uq_workflows_customer_id_zuora_id'))
    )
    op.create_index(op.f('ix_workflows_customer_id'), 'workflows', ['customer_id'], unique=False)
    op.create_index('ix_workflows_customer_id_name', 'workflows', ['customer_id', 'name'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_workflows_customer_id_name', table_name='workflows')
    op.drop_index(op.f('ix_workflows_customer_id'), table_name='workflows')
    op.drop_table('workflows')
    op.drop_index('ix_sync_runs_status_started_at', table_name='sync_runs')
    op.drop_index('ix_sync_runs_customer_id_started_at', table_name='sync_runs')
    op.drop_index(op.f('ix_sync_runs_customer_id'), table_name='sync_runs')
    op.drop_index(op.f('ix_sync_runs_command_id'), table_name='sync_runs')
    op.drop_table('sync_runs')
    op.drop_table('processed_messages')
    op.drop_index('ix_outbox_pending', table_name='outbox', postgresql_where=sa.text('sent_at IS NULL'))
    op.drop_table('outbox')
    op.drop_table('customers')
