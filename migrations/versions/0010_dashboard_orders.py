"""The dashboard's newest pending and unsettled orders come from an index each

Revision ID: 0010_dashboard_orders
Revises: 0009_order_list
Create Date: 2026-12-01 19:00:00

The dashboard lists the ten newest orders waiting for the CA or not settled yet. It read every
such order and sorted them all to show ten (about 40 ms with 5,000 pending orders). Each kind now
has an index in id order, so the ten newest of each are read straight off it.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_dashboard_orders'
down_revision = '0009_order_list'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ca_order', schema=None) as batch_op:
        batch_op.create_index('ix_ca_order_phase_newest', ['phase', 'id'], unique=False)
        batch_op.create_index('ix_ca_order_unsettled_newest', ['id'], unique=False, sqlite_where=sa.text("placement != 'placed'"), postgresql_where=sa.text("placement != 'placed'"))


def downgrade():
    with op.batch_alter_table('ca_order', schema=None) as batch_op:
        batch_op.drop_index('ix_ca_order_unsettled_newest', sqlite_where=sa.text("placement != 'placed'"), postgresql_where=sa.text("placement != 'placed'"))
        batch_op.drop_index('ix_ca_order_phase_newest')
