"""A certificate knows that its order is suspended, and whether its validity has begun

Revision ID: 0018_certificate_suspended
Revises: 0017_order_action_under_way
Create Date: 2026-12-05 18:00:00

A certificate whose order Entrust suspended, or whose notBefore is still to come, counted as valid
in SSL > Certificates and on the dashboard. The certificate now carries ``suspended_at`` (set
while its order is suspended), the per-day counters count suspended certificates apart from the
live ones (none is suspended yet, so no row moves), and two indexes serve the new states: the
suspended certificates in expiry order (only their rows), and the certificates by notBefore (the
few whose validity is still to come are an index range). Plain nullable or defaulted columns:
SQLite adds them in place.
"""
import sqlite3

from alembic import op
import sqlalchemy as sa

import webapp.dbtypes


revision = '0018_certificate_suspended'
down_revision = '0017_order_action_under_way'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'certificate',
        sa.Column('suspended_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        'certificate_expiry_day',
        sa.Column('suspended', sa.Integer(), nullable=False, server_default='0'),
    )
    op.create_index(
        'ix_certificate_suspended',
        'certificate',
        ['not_after', 'revoked_at', 'private_key_id', 'id'],
        unique=False,
        sqlite_where=sa.text('suspended_at IS NOT NULL'),
        postgresql_where=sa.text('suspended_at IS NOT NULL'),
    )
    op.create_index('ix_certificate_not_before', 'certificate', ['not_before', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_certificate_not_before', table_name='certificate')
    op.drop_index('ix_certificate_suspended', table_name='certificate')
    native = op.get_bind().dialect.name == 'sqlite' and sqlite3.sqlite_version_info >= (3, 35)
    for table, column in (('certificate_expiry_day', 'suspended'), ('certificate', 'suspended_at')):
        if native:  # in place: a batch would copy the table (and lose 0011's AUTOINCREMENT)
            op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
        else:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_column(column)
