"""An order records the status action under way on it, so that a second one waits its turn

Revision ID: 0017_order_action_under_way
Revises: 0016_code_point_search_keys
Create Date: 2026-12-05 15:20:00

Two users (or a user and a job) approving and declining, or revoking, the same order at the same
moment both sent their call to Entrust: each had read the order as it was before either call. The
action is now written on the order (which one, and until when it counts as under way) in a
committed transaction before its call, under the order's row lock; a second action finds it and
is refused without a call. Plain nullable columns: SQLite adds them in place.
"""
import sqlite3

from alembic import op
import sqlalchemy as sa

import webapp.dbtypes


revision = '0017_order_action_under_way'
down_revision = '0016_code_point_search_keys'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('ca_order', sa.Column('acting', sa.String(length=16), nullable=True))
    op.add_column('ca_order', sa.Column('acting_until', webapp.dbtypes.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    native = op.get_bind().dialect.name == 'sqlite' and sqlite3.sqlite_version_info >= (3, 35)
    for column in ('acting_until', 'acting'):
        if native:  # in place: a batch would copy the table (and lose 0011's AUTOINCREMENT)
            op.execute(f'ALTER TABLE ca_order DROP COLUMN {column}')
        else:
            with op.batch_alter_table('ca_order', schema=None) as batch_op:
                batch_op.drop_column(column)
