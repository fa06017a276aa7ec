"""The orders list searches and pages through indexes: ca_order_name, search_text one text a line

Revision ID: 0009_order_list
Revises: 0008_order_actions
Create Date: 2026-12-01 18:30:00

The SSL > Entrust list searched ``search_text`` for ``%text%``, which reads every order. Its search
is now "starts with or ends with" on each text an order is found by (tracking ID, common name,
each SAN, the requester's name and email, the serial, the friendly name): those texts, lower-case
and reversed, are rows of ``ca_order_name`` with an index on each (a range look-up on SQLite and
PostgreSQL alike). ``search_text`` keeps the same texts, one a line, for a page that tests each
row it walks. Both are filled here from the orders already there.

The list's "Checking with Entrust" and "Not placed" filters walk the unsettled orders in expiry
order: a partial index on (expires_at, id) of the orders not placed yet.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_order_list'
down_revision = '0008_order_actions'
branch_labels = None
depends_on = None

_BATCH = 5000
_FIELDS = ('ca_order_id', 'common_name', 'sans', 'requester_name', 'requester_email', 'serial', 'friendly_name')


def _terms(row) -> list[str]:
    """As webapp.orders.records.search_terms at this revision."""
    parts = [row.ca_order_id, row.common_name, *(row.sans or '').split(','), row.requester_name,
             row.requester_email, row.serial, row.friendly_name]
    terms: list[str] = []
    for part in parts:
        term = ' '.join((part or '').split()).lower()[:255]
        if term and term not in terms:
            terms.append(term)
    return terms


def _backfill(conn) -> None:
    order = sa.table('ca_order', sa.column('id'), sa.column('search_text'))
    name = sa.table('ca_order_name', sa.column('order_id'), sa.column('value'), sa.column('reversed'))
    update = order.update().where(order.c.id == sa.bindparam('b_id')).values(search_text=sa.bindparam('b_text'))
    rows = conn.execute(sa.text(f"SELECT id, {', '.join(_FIELDS)} FROM ca_order ORDER BY id")).all()
    for i in range(0, len(rows), _BATCH):
        texts, names = [], []
        for row in rows[i:i + _BATCH]:
            terms = _terms(row)
            texts.append({'b_id': row.id, 'b_text': '\n'.join(terms)})
            names += [{'order_id': row.id, 'value': t, 'reversed': t[::-1]} for t in terms]
        conn.execute(update, texts)
        if names:
            conn.execute(name.insert(), names)


def upgrade():
    op.create_table('ca_order_name',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('reversed', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['ca_order.id'], name=op.f('fk_ca_order_name_order_id_ca_order'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ca_order_name'))
    )
    with op.batch_alter_table('ca_order_name', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ca_order_name_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_ca_order_name_reversed', ['reversed', 'order_id'], unique=False)
        batch_op.create_index('ix_ca_order_name_value', ['value', 'order_id'], unique=False)
    with op.batch_alter_table('ca_order', schema=None) as batch_op:
        batch_op.create_index('ix_ca_order_unsettled_expiry', ['expires_at', 'id'], unique=False, sqlite_where=sa.text("placement != 'placed'"), postgresql_where=sa.text("placement != 'placed'"))
    _backfill(op.get_bind())


def downgrade():
    with op.batch_alter_table('ca_order', schema=None) as batch_op:
        batch_op.drop_index('ix_ca_order_unsettled_expiry', sqlite_where=sa.text("placement != 'placed'"), postgresql_where=sa.text("placement != 'placed'"))
    with op.batch_alter_table('ca_order_name', schema=None) as batch_op:
        batch_op.drop_index('ix_ca_order_name_value')
        batch_op.drop_index('ix_ca_order_name_reversed')
        batch_op.drop_index(batch_op.f('ix_ca_order_name_order_id'))
    op.drop_table('ca_order_name')
    # search_text as the list searched it before (the texts joined by spaces).
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE ca_order SET search_text = REPLACE(search_text, :nl, ' ')"), {'nl': '\n'})
