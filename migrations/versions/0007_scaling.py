"""Lists stay fast at 100,000 rows: indexes that end with the id, search keys, a gone flag for the
catalog, CSR names, per-day expiry counts for the dashboard, audit indexes by filter

Revision ID: 0007_scaling
Revises: 0006_orders
Create Date: 2026-12-01 16:00:00

"""
from datetime import UTC, date, datetime

from alembic import op
import sqlalchemy as sa


revision = '0007_scaling'
down_revision = '0006_orders'
branch_labels = None
depends_on = None

_EPOCH = date(1970, 1, 1).toordinal()
_BATCH = 5000


def _day(value) -> int:
    if isinstance(value, str):  # SQLite hands the stored text back to a plain SELECT
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).date().toordinal() - _EPOCH


def _split_names(common_name: str, sans: str) -> list[str]:
    """A CSR's names as the CSR service stores them: SANs, and the CN when it is not one."""
    names = []
    for part in (sans or "").split(","):
        part = part.strip()
        if part.startswith(("DNS:", "IP:", "email:")):
            part = part.split(":", 1)[1]
        if part and part.lower() not in names:
            names.append(part.lower())
    cn = (common_name or "").strip().lower()
    if cn and cn not in names:
        names.insert(0, cn)
    return [n[:255] for n in names]


def _backfill(conn) -> None:
    """Fill the new columns and tables from the rows already there (in batches)."""
    domain = sa.table('catalog_domain', sa.column('id'), sa.column('name'), sa.column('name_reversed'))
    org = sa.table(
        'catalog_organization', sa.column('id'), sa.column('name'), sa.column('client_name'),
        sa.column('name_key'), sa.column('client_key'),
    )
    for table in ('catalog_organization', 'catalog_domain', 'catalog_product'):
        conn.execute(sa.text(f"UPDATE {table} SET gone = (gone_at IS NOT NULL)"))

    def in_batches(rows, update, values):
        batch = []
        for row in rows:
            batch.append(values(row))
            if len(batch) == _BATCH:
                conn.execute(update, batch)
                batch = []
        if batch:
            conn.execute(update, batch)

    in_batches(
        conn.execute(sa.text("SELECT id, name FROM catalog_domain")).all(),
        domain.update().where(domain.c.id == sa.bindparam('b_id')).values(
            name_reversed=sa.bindparam('b_rev')
        ),
        lambda r: {'b_id': r.id, 'b_rev': (r.name or '')[::-1]},
    )
    in_batches(
        conn.execute(sa.text("SELECT id, name, client_name FROM catalog_organization")).all(),
        org.update().where(org.c.id == sa.bindparam('b_id')).values(
            name_key=sa.bindparam('b_name'), client_key=sa.bindparam('b_client')
        ),
        lambda r: {
            'b_id': r.id, 'b_name': (r.name or '').lower(), 'b_client': (r.client_name or '').lower()
        },
    )

    csr_name = sa.table('csr_name', sa.column('csr_id'), sa.column('value'), sa.column('reversed'))
    rows = []
    for r in conn.execute(sa.text("SELECT id, common_name, sans FROM csr")):
        rows += [
            {'csr_id': r.id, 'value': n, 'reversed': n[::-1]} for n in _split_names(r.common_name, r.sans)
        ]
        if len(rows) >= _BATCH:
            conn.execute(csr_name.insert(), rows)
            rows = []
    if rows:
        conn.execute(csr_name.insert(), rows)

    per_day: dict[int, list[int]] = {}
    for r in conn.execute(sa.text("SELECT not_after, revoked_at FROM certificate")):
        per_day.setdefault(_day(r.not_after), [0, 0])[0 if r.revoked_at is None else 1] += 1
    day_table = sa.table('certificate_expiry_day', sa.column('day'), sa.column('live'), sa.column('revoked'))
    if per_day:
        conn.execute(
            day_table.insert(),
            [{'day': d, 'live': n[0], 'revoked': n[1]} for d, n in sorted(per_day.items())],
        )


def upgrade():
    op.create_table('certificate_expiry_day',
    sa.Column('day', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('live', sa.Integer(), nullable=False),
    sa.Column('revoked', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_certificate_expiry_day'))
    )
    op.create_table('csr_name',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('csr_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('reversed', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['csr_id'], ['csr.id'], name=op.f('fk_csr_name_csr_id_csr'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csr_name'))
    )
    with op.batch_alter_table('csr_name', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_csr_name_csr_id'), ['csr_id'], unique=False)
        batch_op.create_index('ix_csr_name_reversed', ['reversed', 'csr_id'], unique=False)
        batch_op.create_index('ix_csr_name_value', ['value', 'csr_id'], unique=False)

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_action')
        batch_op.drop_index('ix_audit_event_object_type')
        batch_op.create_index('ix_audit_event_actor_seq', ['actor_name', 'seq'], unique=False)
        batch_op.create_index('ix_audit_event_action_seq', ['action', 'seq'], unique=False)
        batch_op.create_index('ix_audit_event_object_seq', ['object_type', 'seq'], unique=False)
        batch_op.create_index('ix_audit_event_object_id_seq', ['object_type', 'object_id', 'seq'], unique=False)
        batch_op.create_index('ix_audit_event_activity', ['seq'], unique=False, sqlite_where=sa.text("action NOT LIKE 'auth.%'"), postgresql_where=sa.text("action NOT LIKE 'auth.%'"))

    for table in ('catalog_organization', 'catalog_domain', 'catalog_product'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('gone', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('catalog_organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('client_key', sa.String(length=300), nullable=False, server_default=''))
    with op.batch_alter_table('catalog_domain', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_reversed', sa.String(length=300), nullable=False, server_default=''))

    _backfill(op.get_bind())

    with op.batch_alter_table('catalog_organization', schema=None) as batch_op:
        batch_op.drop_index('ix_catalog_organization_credential_id')
        batch_op.drop_index('ix_catalog_org_client')
        batch_op.drop_index('ix_catalog_org_name')
        batch_op.drop_index('ix_catalog_org_status')
        batch_op.create_index('ix_catalog_org_name', ['gone', 'name_key', 'id'], unique=False)
        batch_op.create_index('ix_catalog_org_client', ['gone', 'client_key', 'name_key', 'id'], unique=False)
        batch_op.create_index('ix_catalog_org_by_status', ['gone', 'verification_status', 'name_key', 'id'], unique=False)
        batch_op.create_index('ix_catalog_org_ov_expiry', ['gone', 'ov_expiry', 'id'], unique=False)
        batch_op.create_index('ix_catalog_org_ev_expiry', ['gone', 'ev_expiry', 'id'], unique=False)
        batch_op.create_index('ix_catalog_org_status', ['verification_status', 'gone', 'name_key', 'id'], unique=False)
        batch_op.create_index('ix_catalog_org_kind', ['kind', 'gone', 'name_key', 'id'], unique=False)
        batch_op.create_index('ix_catalog_org_credential', ['credential_id', 'gone', 'name_key', 'id'], unique=False)

    with op.batch_alter_table('catalog_domain', schema=None) as batch_op:
        batch_op.drop_index('ix_catalog_domain_credential_id')
        batch_op.drop_index('ix_catalog_domain_name')
        batch_op.drop_index('ix_catalog_domain_ov_expiry')
        batch_op.drop_index('ix_catalog_domain_status')
        batch_op.create_index('ix_catalog_domain_name', ['gone', 'name', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_client', ['gone', 'client_name', 'name', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_by_status', ['gone', 'verification_status', 'name', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_method', ['gone', 'verification_method', 'name', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_ov_expiry', ['gone', 'ov_expiry', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_ev_expiry', ['gone', 'ev_expiry', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_status', ['verification_status', 'gone', 'name', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_credential', ['credential_id', 'gone', 'name', 'id'], unique=False)
        batch_op.create_index('ix_catalog_domain_reversed', ['name_reversed', 'id'], unique=False)

    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_common_name')
        batch_op.drop_index('ix_certificate_created_at')
        batch_op.drop_index('ix_certificate_serial_hex')
        batch_op.drop_index('ix_certificate_expiry')
        batch_op.drop_index('ix_certificate_source_expiry')
        batch_op.drop_index('ix_certificate_issuer_expiry')
        batch_op.drop_index('ix_certificate_key_expiry')
        batch_op.create_index('ix_certificate_expiry', ['not_after', 'revoked_at', 'private_key_id', 'id'], unique=False)
        batch_op.create_index('ix_certificate_source_expiry', ['source', 'not_after', 'revoked_at', 'private_key_id', 'id'], unique=False)
        batch_op.create_index('ix_certificate_issuer_expiry', ['issuer_cn', 'not_after', 'revoked_at', 'private_key_id', 'id'], unique=False)
        batch_op.create_index('ix_certificate_key_expiry', ['private_key_id', 'not_after', 'revoked_at', 'id'], unique=False)
        batch_op.create_index('ix_certificate_cn', ['common_name', 'id'], unique=False)
        batch_op.create_index('ix_certificate_serial', ['serial_hex', 'id'], unique=False)
        batch_op.create_index('ix_certificate_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_certificate_revoked', ['not_after', 'revoked_at', 'private_key_id', 'id'], unique=False, sqlite_where=sa.text('revoked_at IS NOT NULL'), postgresql_where=sa.text('revoked_at IS NOT NULL'))
        batch_op.create_index('ix_certificate_with_key', ['not_after', 'revoked_at', 'private_key_id', 'id'], unique=False, sqlite_where=sa.text('private_key_id IS NOT NULL'), postgresql_where=sa.text('private_key_id IS NOT NULL'))

    with op.batch_alter_table('csr', schema=None) as batch_op:
        batch_op.drop_index('ix_csr_common_name')
        batch_op.drop_index('ix_csr_created_at')
        batch_op.create_index('ix_csr_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_csr_cn', ['common_name', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('csr', schema=None) as batch_op:
        batch_op.drop_index('ix_csr_cn')
        batch_op.drop_index('ix_csr_created')
        batch_op.create_index('ix_csr_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_csr_common_name', ['common_name'], unique=False)

    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_with_key', sqlite_where=sa.text('private_key_id IS NOT NULL'), postgresql_where=sa.text('private_key_id IS NOT NULL'))
        batch_op.drop_index('ix_certificate_revoked', sqlite_where=sa.text('revoked_at IS NOT NULL'), postgresql_where=sa.text('revoked_at IS NOT NULL'))
        batch_op.drop_index('ix_certificate_created')
        batch_op.drop_index('ix_certificate_serial')
        batch_op.drop_index('ix_certificate_cn')
        batch_op.drop_index('ix_certificate_key_expiry')
        batch_op.drop_index('ix_certificate_issuer_expiry')
        batch_op.drop_index('ix_certificate_source_expiry')
        batch_op.drop_index('ix_certificate_expiry')
        batch_op.create_index('ix_certificate_key_expiry', ['private_key_id', 'not_after', 'revoked_at'], unique=False)
        batch_op.create_index('ix_certificate_issuer_expiry', ['issuer_cn', 'not_after', 'revoked_at', 'private_key_id'], unique=False)
        batch_op.create_index('ix_certificate_source_expiry', ['source', 'not_after', 'revoked_at', 'private_key_id'], unique=False)
        batch_op.create_index('ix_certificate_expiry', ['not_after', 'revoked_at', 'private_key_id'], unique=False)
        batch_op.create_index('ix_certificate_serial_hex', ['serial_hex'], unique=False)
        batch_op.create_index('ix_certificate_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_certificate_common_name', ['common_name'], unique=False)

    with op.batch_alter_table('catalog_domain', schema=None) as batch_op:
        for name in ('reversed', 'credential', 'status', 'ev_expiry', 'ov_expiry', 'method', 'by_status', 'client', 'name'):
            batch_op.drop_index(f'ix_catalog_domain_{name}')
        batch_op.create_index('ix_catalog_domain_status', ['verification_status', 'name'], unique=False)
        batch_op.create_index('ix_catalog_domain_ov_expiry', ['ov_expiry'], unique=False)
        batch_op.create_index('ix_catalog_domain_name', ['name'], unique=False)
        batch_op.create_index('ix_catalog_domain_credential_id', ['credential_id'], unique=False)
        batch_op.drop_column('name_reversed')

    with op.batch_alter_table('catalog_organization', schema=None) as batch_op:
        for name in ('credential', 'kind', 'status', 'ev_expiry', 'ov_expiry', 'by_status', 'client', 'name'):
            batch_op.drop_index(f'ix_catalog_org_{name}')
        batch_op.create_index('ix_catalog_org_status', ['verification_status'], unique=False)
        batch_op.create_index('ix_catalog_org_name', ['name'], unique=False)
        batch_op.create_index('ix_catalog_org_client', ['client_name'], unique=False)
        batch_op.create_index('ix_catalog_organization_credential_id', ['credential_id'], unique=False)
        batch_op.drop_column('client_key')
        batch_op.drop_column('name_key')

    for table in ('catalog_product', 'catalog_domain', 'catalog_organization'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('gone')

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_activity', sqlite_where=sa.text("action NOT LIKE 'auth.%'"), postgresql_where=sa.text("action NOT LIKE 'auth.%'"))
        batch_op.drop_index('ix_audit_event_object_id_seq')
        batch_op.drop_index('ix_audit_event_object_seq')
        batch_op.drop_index('ix_audit_event_action_seq')
        batch_op.drop_index('ix_audit_event_actor_seq')
        batch_op.create_index('ix_audit_event_object_type', ['object_type'], unique=False)
        batch_op.create_index('ix_audit_event_action', ['action'], unique=False)

    with op.batch_alter_table('csr_name', schema=None) as batch_op:
        batch_op.drop_index('ix_csr_name_value')
        batch_op.drop_index('ix_csr_name_reversed')
        batch_op.drop_index(batch_op.f('ix_csr_name_csr_id'))
    op.drop_table('csr_name')
    op.drop_table('certificate_expiry_day')
