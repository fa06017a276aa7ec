"""Orders keep no Entrust pickup link among the fields Entrust holds

Revision ID: 0020_no_pickup_links
Revises: 0019_order_keeps_csr_key
Create Date: 2026-12-06 04:30:00

Entrust's pickupUrl hands a certificate (and an S/MIME certificate's key made by Entrust) to
whoever holds the link. Orders read back in full kept it among the fields their page lists, where
every role, auditors included, could read it. CertDesk no longer keeps it; this removes the links
kept before. Data only: the downgrade leaves it.
"""
import json

import sqlalchemy as sa
from alembic import op


revision = '0020_no_pickup_links'
down_revision = '0019_order_keeps_csr_key'
branch_labels = None
depends_on = None

WITHHELD = ('pickupUrl', 'pkcs12')


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, details FROM ca_order "
            "WHERE details LIKE '%\"pickupUrl\"%' OR details LIKE '%\"pkcs12\"%'"
        )
    ).all()
    for order_id, details in rows:
        try:
            fields = json.loads(details or '{}')
        except ValueError:
            continue
        if not isinstance(fields, dict) or not any(k in fields for k in WITHHELD):
            continue
        for key in WITHHELD:
            fields.pop(key, None)
        conn.execute(
            sa.text('UPDATE ca_order SET details = :details WHERE id = :id'),
            {'details': json.dumps(fields, sort_keys=True, default=str), 'id': order_id},
        )


def downgrade():
    pass
