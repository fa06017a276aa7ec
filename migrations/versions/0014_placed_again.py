"""A "not placed" order is placed again once: it names the order it was placed again as

Revision ID: 0014_placed_again
Revises: 0013_catalog_seen_at
Create Date: 2026-12-03 22:00:00

"Place it again" checked only that the order was not placed, which it stays: two clicks (or two
users) placed two new orders at Entrust. The new order's id is now set on the old one in the
transaction that commits the new order's intent, only where none is set yet; the second click
finds it set. It is cleared only when Entrust refuses the new order (nothing was ordered). It is
a plain column: a reference would make SQLite copy the whole table to add it.
"""
import sqlite3

from alembic import op
import sqlalchemy as sa


revision = '0014_placed_again'
down_revision = '0013_catalog_seen_at'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('ca_order', sa.Column('again_id', sa.Integer(), nullable=True))
    op.create_index(
        'ix_ca_order_again', 'ca_order', ['again_id'], unique=False,
        sqlite_where=sa.text('again_id IS NOT NULL'),
        postgresql_where=sa.text('again_id IS NOT NULL'),
    )


def downgrade():
    op.drop_index('ix_ca_order_again', table_name='ca_order')
    native = op.get_bind().dialect.name == 'sqlite' and sqlite3.sqlite_version_info >= (3, 35)
    if native:  # in place: a batch would copy the table (and lose 0011's AUTOINCREMENT)
        op.execute('ALTER TABLE ca_order DROP COLUMN again_id')
    else:
        with op.batch_alter_table('ca_order', schema=None) as batch_op:
            batch_op.drop_column('again_id')
