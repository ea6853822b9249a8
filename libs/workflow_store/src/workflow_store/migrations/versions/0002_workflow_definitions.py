"""workflow definitions, tasks, linkages

Revision ID: 0002_workflow_definitions
Revises: ops_outbox_retention
Create Date: 2026-12-02 16:00:41.213855

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0002_workflow_definitions'
down_revision: Union[str, Sequence[str], None] = 'ops_outbox_retention'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('workflow_definitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('workflow_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.BigInteger(), nullable=True),
    sa.Column('version', sa.Text(), nullable=True),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('task_count', sa.Integer(), nullable=False),
    sa.Column('linkage_count', sa.Integer(), nullable=False),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('listed_version_id', sa.BigInteger(), nullable=True),
    sa.Column('listed_version', sa.Text(), nullable=True),
    sa.Column('listed_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_definitions_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_definitions')),
    sa.UniqueConstraint('workflow_id', 'content_hash', name=op.f('uq_workflow_definitions_workflow_id_content_hash'))
    )
    op.create_index('ix_workflow_definitions_workflow_id_is_current', 'workflow_definitions', ['workflow_id', 'is_current'], unique=False)
    op.create_table('workflow_linkages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('workflow_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_workflow_id', sa.BigInteger(), nullable=True),
    sa.Column('source_task_id', sa.BigInteger(), nullable=True),
    sa.Column('target_task_id', sa.BigInteger(), nullable=True),
    sa.Column('linkage_type', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_linkages_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_linkages'))
    )
    op.create_index(op.f('ix_workflow_linkages_workflow_id'), 'workflow_linkages', ['workflow_id'], unique=False)
    op.create_table('workflow_tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('workflow_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('task_id', sa.BigInteger(), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('action_type', sa.Text(), nullable=True),
    sa.Column('object', sa.Text(), nullable=True),
    sa.Column('call_type', sa.Text(), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_workflow_tasks_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_tasks_workflow_id_workflows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_tasks'))
    )
    op.create_index('ix_workflow_tasks_customer_id_action_type', 'workflow_tasks', ['customer_id', 'action_type'], unique=False)
    op.create_index(op.f('ix_workflow_tasks_workflow_id'), 'workflow_tasks', ['workflow_id'], unique=False)
    with op.batch_alter_table('sync_runs') as batch_op:
        batch_op.add_column(sa.Column('definitions_fetched', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('definitions_changed', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('definitions_failed', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    # SQLite cannot drop a column in place: batch mode copies the table without them.
    with op.batch_alter_table('sync_runs') as batch_op:
        batch_op.drop_column('definitions_failed')
        batch_op.drop_column('definitions_changed')
        batch_op.drop_column('definitions_fetched')
    op.drop_index(op.f('ix_workflow_tasks_workflow_id'), table_name='workflow_tasks')
    op.drop_index('ix_workflow_tasks_customer_id_action_type', table_name='workflow_tasks')
    op.drop_table('workflow_tasks')
    op.drop_index(op.f('ix_workflow_linkages_workflow_id'), table_name='workflow_linkages')
    op.drop_table('workflow_linkages')
    op.drop_index('ix_workflow_definitions_workflow_id_is_current', table_name='workflow_definitions')
    op.drop_table('workflow_definitions')
