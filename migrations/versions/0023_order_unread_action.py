"""An order remembers a status action whose outcome could not be read back

Revision ID: 0023_order_unread_action
Revises: 0022_order_csr_key_indexes
Create Date: 2026-12-06 15:30:00

A status action (approve, decline, suspend, resume, revoke) sent from CertDesk, after which the
order could not be read, left the order's status as it was; the status check that read the new
one later told the change as Entrust's. The order now keeps which action it was, who did it and
when it was sent, until its next reading: a status the action leads to, read then, is told as
that action's. Plain nullable columns: SQLite adds them in place.
"""
import sqlite3

from alembic import op
import sqlalchemy as sa

import webapp.dbtypes


revision = '0023_order_unread_action'
down_revision = '0022_order_csr_key_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('ca_order', sa.Column('unread_action', sa.String(length=16), nullable=True))
    op.add_column('ca_order', sa.Column('unread_action_by', sa.String(length=120), nullable=True))
    op.add_column('ca_order', sa.Column('unread_action_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    native = op.get_bind().dialect.name == 'sqlite' and sqlite3.sqlite_version_info >= (3, 35)
    for column in ('unread_action_at', 'unread_action_by', 'unread_action'):
        if native:  # in place: a batch would copy the table (and lose 0011's AUTOINCREMENT)
            op.execute(f'ALTER TABLE ca_order DROP COLUMN {column}')
        else:
            with op.batch_alter_table('ca_order', schema=None) as batch_op:
                batch_op.drop_column(column)
