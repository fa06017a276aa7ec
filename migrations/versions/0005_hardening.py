"""Hardening: server-side sessions

Revision ID: 0005_hardening
Revises: 0004_job_params
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa

import webapp.dbtypes


revision = '0005_hardening'
down_revision = '0004_job_params'
branch_labels = None
depends_on = None


def upgrade():
    # Sessions live on the server: the cookie carries a token whose SHA-256 is stored here.
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_session_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_ended_at'), ['ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))
        batch_op.drop_index(batch_op.f('ix_user_session_ended_at'))

    op.drop_table('user_session')
