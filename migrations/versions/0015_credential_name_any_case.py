"""A credential's name is unique whatever its case, in the database as in the form

Revision ID: 0015_credential_name_any_case
Revises: 0014_placed_again
Create Date: 2026-12-04 00:40:00

The form refused "prod" beside "Prod", but the unique index compared names as written, so two
requests at once could save both. The index is now on lower(name). Live credentials that already
share a name in another case keep the oldest one's name; the others get their id added to it
("prod (#7)"), which the upgrade prints.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_credential_name_any_case'
down_revision = '0014_placed_again'
branch_labels = None
depends_on = None

LIVE = sa.text('deleted_at IS NULL')
NAME_LENGTH = 100


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        'SELECT id, name FROM ecs_credential WHERE deleted_at IS NULL ORDER BY id'
    )).all()
    taken = set()
    for cred_id, name in rows:
        if name.lower() not in taken:
            taken.add(name.lower())
            continue
        suffix = f' (#{cred_id})'
        renamed = name[:NAME_LENGTH - len(suffix)] + suffix
        conn.execute(
            sa.text('UPDATE ecs_credential SET name = :name WHERE id = :id'),
            {'name': renamed, 'id': cred_id},
        )
        taken.add(renamed.lower())
        print(f'Credential {cred_id}: {name!r} is renamed {renamed!r} (another has that name).')
    op.drop_index('uq_ecs_credential_live_name', table_name='ecs_credential')
    op.create_index(
        'uq_ecs_credential_live_name', 'ecs_credential', [sa.text('lower(name)')], unique=True,
        sqlite_where=LIVE, postgresql_where=LIVE,
    )


def downgrade():
    op.drop_index('uq_ecs_credential_live_name', table_name='ecs_credential')
    op.create_index(
        'uq_ecs_credential_live_name', 'ecs_credential', ['name'], unique=True,
        sqlite_where=LIVE, postgresql_where=LIVE,
    )
