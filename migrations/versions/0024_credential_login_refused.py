"""A credential knows whether its failed login was refused by Entrust

Revision ID: 0024_credential_login_refused
Revises: 0023_order_unread_action
Create Date: 2026-12-06 21:40:00

The scheduled import left out every credential showing Login failed, also one whose last Test
Login Entrust never answered (a timeout, a refused connection, a TLS failure, a client
certificate file that could not be used): one Test Login during a network fault kept it out of
every scheduled import. The credential now carries ``last_test_refused``: the failed login on
record was Entrust refusing it (401/403). Existing rows showing Login failed are taken as
refused, as they were treated until now. A defaulted column: SQLite adds it in place.
"""

import sqlite3

from alembic import op
import sqlalchemy as sa


revision = "0024_credential_login_refused"
down_revision = "0023_order_unread_action"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "ecs_credential",
        sa.Column("last_test_refused", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    cred = sa.table(
        "ecs_credential",
        sa.column("last_test_ok", sa.Boolean()),
        sa.column("last_test_refused", sa.Boolean()),
    )
    op.execute(
        cred.update().where(cred.c.last_test_ok == sa.false()).values(last_test_refused=True)
    )


def downgrade():
    native = op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)
    if native:  # in place: a batch would copy the table (and lose 0011's AUTOINCREMENT)
        op.execute("ALTER TABLE ecs_credential DROP COLUMN last_test_refused")
    else:
        with op.batch_alter_table("ecs_credential", schema=None) as batch_op:
            batch_op.drop_column("last_test_refused")
