"""Jobs keep their parameters, checkpoint, run count and runner, so they can resume

Revision ID: 0004_job_params
Revises: 0003_entrust_credentials_catalog
Create Date: 2026-12-01 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0004_job_params'
down_revision = '0003_entrust_credentials_catalog'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.Text(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('checkpoint', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('runner', sa.String(length=128), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('runner')
        batch_op.drop_column('attempts')
        batch_op.drop_column('checkpoint')
        batch_op.drop_column('params')
