"""The orders placed with a CSR or key held in CertDesk are found through an index

Revision ID: 0022_order_csr_key_indexes
Revises: 0021_credential_times
Create Date: 2026-12-06 12:10:00

Deleting a CSR or a private key read every order: once to ask whether an order still needs the
key, and once for each reference the database clears (``ON DELETE SET NULL`` on ``csr_id`` and
``private_key_id``), neither column being indexed. Two partial indexes on the few orders that
have them (most orders were imported, with neither).
"""
from alembic import op
import sqlalchemy as sa


revision = '0022_order_csr_key_indexes'
down_revision = '0021_credential_times'
branch_labels = None
depends_on = None

INDEXES = (('ix_ca_order_csr', 'csr_id'), ('ix_ca_order_private_key', 'private_key_id'))


def upgrade():
    for name, column in INDEXES:
        where = sa.text(f'{column} IS NOT NULL')
        op.create_index(
            name, 'ca_order', [column], unique=False, sqlite_where=where, postgresql_where=where
        )


def downgrade():
    for name, _column in reversed(INDEXES):
        op.drop_index(name, table_name='ca_order')
