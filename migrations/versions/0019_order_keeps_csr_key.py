"""An order placed with a CSR made in CertDesk refers to that CSR's private key

Revision ID: 0019_order_keeps_csr_key
Revises: 0018_certificate_suspended
Create Date: 2026-12-06 02:00:00

An order placed with a CSR held in CertDesk referred to the CSR only, so deleting the CSR while
the order waited for approval deleted the private key its certificate would be issued for. Orders
now refer to that key themselves (a key an order refers to is kept); this fills the reference of
the orders placed before, from the CSR each still names. Data only: the downgrade leaves it.
"""
from alembic import op


revision = '0019_order_keeps_csr_key'
down_revision = '0018_certificate_suspended'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        'UPDATE ca_order SET private_key_id = '
        '(SELECT csr.private_key_id FROM csr WHERE csr.id = ca_order.csr_id) '
        'WHERE private_key_id IS NULL AND csr_id IS NOT NULL'
    )


def downgrade():
    pass
