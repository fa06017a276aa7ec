"""A sync that changes nothing writes nothing: the catalog's per-row "last seen" time goes

Revision ID: 0013_catalog_seen_at
Revises: 0012_expiring_orders
Create Date: 2026-12-02 23:00:00

Every sync set `seen_at` on every organization, domain and product the account still had, so a
sync of an unchanged account of 100,000 domains updated 100,000 rows in one transaction, holding
SQLite's write lock (every sign-in and order waiting) for seconds. Nothing read the column: a
row the last sync saw is a row that is not gone, and when that sync ran is the credential's
`<kind>_synced_at`.
"""
import sqlite3

from alembic import op
import sqlalchemy as sa

import webapp.dbtypes


revision = '0013_catalog_seen_at'
down_revision = '0012_expiring_orders'
branch_labels = None
depends_on = None

TABLES = ('catalog_organization', 'catalog_domain', 'catalog_product')


def upgrade():
    native = op.get_bind().dialect.name == 'sqlite' and sqlite3.sqlite_version_info >= (3, 35)
    for table in TABLES:
        if native:  # SQLite drops an unindexed column in place; a batch would copy the table
            op.execute(f'ALTER TABLE {table} DROP COLUMN seen_at')
        else:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_column('seen_at')


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column('seen_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=True)
            )
        op.execute(f'UPDATE {table} SET seen_at = updated_at')
