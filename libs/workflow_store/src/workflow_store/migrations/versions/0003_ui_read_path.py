"""per-customer workflow counts; indexes for the workflows list across customers

- ``customers.workflow_count`` / ``active_workflow_count``: the dashboard and the unfiltered
  workflows list read totals from 1,000 customer rows instead of counting 100,000 workflows per
  view. Back-filled here from the workflows table; from then on recounted by the sync's write
  transaction (``workflow_store.workflow_counts``).
- Indexes for each sort of the list (name, Zuora id, updated, state) so a page is an index walk
  that stops after one page, and a trigram index (``pg_trgm``, PostgreSQL only; a plain index on
  SQLite) for the name search ``ILIKE '%text%'``.

Revision ID: 0003_ui_read_path
Revises: 0002_workflow_definitions
Create Date: 2026-12-03 08:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003_ui_read_path'
down_revision: Union[str, Sequence[str], None] = '0002_workflow_definitions'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Same rule as workflow_store.workflow_counts (a migration does not import application code).
_BACKFILL = (
    "UPDATE customers SET"
    " workflow_count = (SELECT count(*) FROM workflows WHERE workflows.customer_id = customers.id),"
    " active_workflow_count = (SELECT count(*) FROM workflows"
    " WHERE workflows.customer_id = customers.id AND lower(workflows.status) = 'active')"
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('customers', sa.Column('workflow_count', sa.Integer(), server_default='0', nullable=False))
    op.add_column('customers', sa.Column('active_workflow_count', sa.Integer(), server_default='0', nullable=False))
    op.execute(_BACKFILL)
    op.create_index('ix_workflows_name_id', 'workflows', ['name', 'id'], unique=False)
    op.create_index('ix_workflows_zuora_id', 'workflows', ['zuora_id'], unique=False)
    op.create_index('ix_workflows_zuora_updated_at', 'workflows', ['zuora_updated_at'], unique=False)
    op.create_index('ix_workflows_status_name_id', 'workflows', ['status', 'name', 'id'], unique=False)
    if _postgres():
        # A trusted extension since PostgreSQL 13: the database owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.create_index(
        'ix_workflows_name_trgm', 'workflows', ['name'], unique=False,
        postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'},
    )


def downgrade() -> None:
    """Downgrade schema."""
    # pg_trgm stays: an extension belongs to the database, and something else may use it.
    op.drop_index('ix_workflows_name_trgm', table_name='workflows', postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.drop_index('ix_workflows_status_name_id', table_name='workflows')
    op.drop_index('ix_workflows_zuora_updated_at', table_name='workflows')
    op.drop_index('ix_workflows_zuora_id', table_name='workflows')
    op.drop_index('ix_workflows_name_id', table_name='workflows')
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('active_workflow_count')
        batch.drop_column('workflow_count')
