"""On PostgreSQL, the columns searched by "starts with" compare code point by code point

Revision ID: 0016_code_point_search_keys
Revises: 0015_credential_name_any_case
Create Date: 2026-12-05 01:00:00

A search for names that start with "www." reads the index range from "www." up to "www/". That
is right when text compares code point by code point, as in SQLite and PostgreSQL's "C"
collation. A database made with the usual en_US.UTF-8 (or an ICU locale) compares letters first
and punctuation or accents only to break ties: there "www." found no www.example.com, and
"host1" found "hoşt1". These columns now take the "C" collation; PostgreSQL rebuilds their
indexes, and leaves the rows as they are. SQLite is unchanged.
"""
from alembic import op


revision = '0016_code_point_search_keys'
down_revision = '0015_credential_name_any_case'
branch_labels = None
depends_on = None

COLUMNS = {
    'catalog_organization': (('name_key', 300), ('client_key', 300)),
    'catalog_domain': (('name', 300), ('name_reversed', 300)),
    'certificate_name': (('value', 255), ('reversed', 255)),
    'csr_name': (('value', 255), ('reversed', 255)),
    'ca_order_name': (('value', 255), ('reversed', 255)),
}


def _collate(collation):
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, columns in COLUMNS.items():
        # One statement a table, so that each index is built once.
        changes = ', '.join(
            f'ALTER COLUMN {name} TYPE varchar({length}) COLLATE {collation}'
            for name, length in columns
        )
        op.execute(f'ALTER TABLE {table} {changes}')


def upgrade():
    _collate('"C"')


def downgrade():
    _collate('"default"')
