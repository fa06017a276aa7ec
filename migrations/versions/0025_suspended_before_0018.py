"""Certificates of orders suspended before 0018 are marked suspended

Revision ID: 0025_suspended_before_0018
Revises: 0024_credential_login_refused
Create Date: 2026-12-07 17:30:00

0018 gave a certificate ``suspended_at`` (set while its order is suspended at Entrust) but filled
it for no existing row, though orders could be suspended before it (Update Certificate Status,
or an import of suspended orders). Their certificates kept counting as valid in SSL >
Certificates and on the dashboard, and no status check changed that (the order's status had not
changed). This marks the certificate of every suspended order, not revoked, as suspended since
the order's status changed, and moves it from the live to the suspended count of its expiry day.
Data only; the downgrade leaves the marks (0018's columns hold them, and a suspended certificate
is one).
"""

from collections import Counter
from datetime import UTC, date

from alembic import op
import sqlalchemy as sa

import webapp.dbtypes


revision = "0025_suspended_before_0018"
down_revision = "0024_credential_login_refused"
branch_labels = None
depends_on = None

_EPOCH = date(1970, 1, 1).toordinal()


def upgrade():
    conn = op.get_bind()
    when = webapp.dbtypes.UTCDateTime(timezone=True)
    found = conn.execute(
        sa.text(
            "SELECT c.id, c.not_after, COALESCE(o.status_changed_at, o.updated_at) AS since "
            "FROM certificate c JOIN ca_order o ON o.id = c.order_id "
            "WHERE o.status = 'SUSPENDED' AND c.suspended_at IS NULL AND c.revoked_at IS NULL"
        ).columns(not_after=when, since=when)
    ).all()
    if not found:
        return
    cert = sa.table("certificate", sa.column("id"), sa.column("suspended_at", when))
    for cert_id, _not_after, since in found:
        conn.execute(cert.update().where(cert.c.id == cert_id).values(suspended_at=since))
    moved = Counter(n.astimezone(UTC).date().toordinal() - _EPOCH for _i, n, _s in found)
    days = sa.table(
        "certificate_expiry_day",
        sa.column("day", sa.Integer()),
        sa.column("live", sa.Integer()),
        sa.column("suspended", sa.Integer()),
    )
    for day, n in moved.items():
        conn.execute(
            days.update()
            .where(days.c.day == day)
            .values(live=days.c.live - n, suspended=days.c.suspended + n)
        )


def downgrade():
    pass
