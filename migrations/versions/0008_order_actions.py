"""Reissues and renewals find their original fast: an index on ca_order.parent_id

Revision ID: 0008_order_actions
Revises: 0007_scaling
Create Date: 2026-12-01 17:00:00

An order's page lists the orders that replaced it, a reissue or renewal checks that no other one of
the same order is still being settled, and deleting orders sets their successors' parent_id to
NULL (the foreign key's ON DELETE SET NULL): each looks orders up by parent_id, which no index led
with. Most orders have no parent, so the index holds only those that have one.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_order_actions'
down_revision = '0007_scaling'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ca_order', schema=None) as batch_op:
        batch_op.create_index('ix_ca_order_parent', ['parent_id', 'id'], unique=False, sqlite_where=sa.text('parent_id IS NOT NULL'), postgresql_where=sa.text('parent_id IS NOT NULL'))


def downgrade():
    with op.batch_alter_table('ca_order', schema=None) as batch_op:
        batch_op.drop_index('ix_ca_order_parent', sqlite_where=sa.text('parent_id IS NOT NULL'), postgresql_where=sa.text('parent_id IS NOT NULL'))
