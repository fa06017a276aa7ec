"""A credential knows when its login last changed and when its last sync failed

Revision ID: 0021_credential_times
Revises: 0020_no_pickup_links
Create Date: 2026-12-06 04:40:00

The Credentials tab went on showing a test result (and a sync's verdict on the login) from before
the API user, key or client certificate was changed, and its Last sync column showed the last
successful sync even when the latest one had failed. The credential now carries
``login_changed_at`` (when its API user, key or client certificate last changed; what was said
about the login before then is not shown as if it were about the new one) and
``last_sync_failed_at`` (when ``last_sync_error`` was written) and ``last_sync_failed_kinds`` (the
kinds that failed: a later sync of other kinds leaves the failure standing). Plain nullable or
defaulted columns, empty for existing rows: SQLite adds them in place.
"""
import sqlite3

from alembic import op
import sqlalchemy as sa

import webapp.dbtypes


revision = '0021_credential_times'
down_revision = '0020_no_pickup_links'
branch_labels = None
depends_on = None

COLUMNS = ('login_changed_at', 'last_sync_failed_at', 'last_sync_failed_kinds')


def upgrade():
    for column in COLUMNS[:2]:
        op.add_column(
            'ecs_credential',
            sa.Column(column, webapp.dbtypes.UTCDateTime(timezone=True), nullable=True),
        )
    op.add_column(
        'ecs_credential',
        sa.Column('last_sync_failed_kinds', sa.String(length=64), nullable=False, server_default=''),
    )


def downgrade():
    native = op.get_bind().dialect.name == 'sqlite' and sqlite3.sqlite_version_info >= (3, 35)
    for column in reversed(COLUMNS):
        if native:  # in place: a batch would copy the table (and lose 0011's AUTOINCREMENT)
            op.execute(f'ALTER TABLE ecs_credential DROP COLUMN {column}')
        else:
            with op.batch_alter_table('ecs_credential', schema=None) as batch_op:
                batch_op.drop_column(column)
