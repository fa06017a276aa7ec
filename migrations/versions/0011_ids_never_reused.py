"""Certificates, CSRs, keys and orders never get the id of one deleted before them (SQLite)

Revision ID: 0011_ids_never_reused
Revises: 0010_dashboard_orders
Create Date: 2026-12-02 00:45:00

Without AUTOINCREMENT, SQLite gives a new row one more than the largest id in the table: delete
the newest certificate and the next one imported gets its id, its address, and the end of its
audit history. With AUTOINCREMENT it takes one more than the largest id the table ever had.
PostgreSQL's sequences never hand out an id twice, so there is nothing to do there.

SQLite cannot add AUTOINCREMENT to a table: each of the four is rebuilt (a new table with the
same definition but its key, the rows copied, the old table dropped, the new one renamed, its
indexes made again from their own SQL). Dropping a table that other rows refer to deletes or
unlinks them when foreign keys are enforced; migrations/env.py turns them off for the migration,
and this refuses to run if they are on. Each table's counter starts after the largest id it
holds or its audit trail names, so ids used and deleted before the upgrade are not reused either.
A table the planner had statistics for (ANALYZE) is analyzed again: they go with the old table.
"""
import re

from alembic import op


revision = '0011_ids_never_reused'
down_revision = '0010_dashboard_orders'
branch_labels = None
depends_on = None

# table -> the object type its audit events name it by
TABLES = {'private_key': 'private_key', 'csr': 'csr', 'ca_order': 'order', 'certificate': 'certificate'}


_KEY_PLAIN = '\n\tid INTEGER NOT NULL, '


def _key_counted(table):
    return f'\n\tid INTEGER NOT NULL CONSTRAINT pk_{table} PRIMARY KEY AUTOINCREMENT, '


def _key_constraint(table):
    return f'\n\tCONSTRAINT pk_{table} PRIMARY KEY (id), '


def _once(sql, old, new, table):
    if sql.count(old) != 1:
        raise RuntimeError(f'{table}: its definition is not the one this migration knows: {sql}')
    return sql.replace(old, new)


def _rebuild(bind, table, change):
    """``table`` made again from its own SQL as ``change`` rewrites it, with its rows and indexes."""
    if bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        raise RuntimeError(
            'foreign keys are enforced: rebuilding a table would delete or unlink the rows that '
            'refer to it (migrations/env.py turns them off for a migration)'
        )
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar()
    indexes = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,),
    ).scalars().all()
    # The planner's statistics of the table (if ANALYZE was ever run) go with the old table.
    analyzed = bind.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).scalar() and bind.exec_driver_sql(
        'SELECT count(*) FROM sqlite_stat1 WHERE tbl = ?', (table,)
    ).scalar()
    head = re.match(rf'CREATE TABLE "?{table}"? \(', sql)
    if head is None:
        raise RuntimeError(f'{table}: unexpected definition: {sql}')
    new = f'CREATE TABLE _rebuilt_{table} (' + change(sql[head.end():])
    bind.exec_driver_sql(new)
    bind.exec_driver_sql(f'INSERT INTO _rebuilt_{table} SELECT * FROM {table}')
    bind.exec_driver_sql(f'DROP TABLE {table}')
    bind.exec_driver_sql(f'ALTER TABLE _rebuilt_{table} RENAME TO {table}')
    for index in indexes:
        bind.exec_driver_sql(index)
    if analyzed:
        bind.exec_driver_sql(f'ANALYZE {table}')


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    for table, object_type in TABLES.items():

        def counted(body, table=table):
            body = _once(body, _KEY_PLAIN, _key_counted(table), table)
            return _once(body, _key_constraint(table), '', table)

        _rebuild(bind, table, counted)
        # The largest id the table holds is its counter now (the copy set it); the audit trail
        # may name a larger one, deleted before.
        audited = bind.exec_driver_sql(
            "SELECT max(CAST(object_id AS INTEGER)) FROM audit_event "
            "WHERE object_type = ? AND object_id != '' AND object_id NOT GLOB '*[^0-9]*'",
            (object_type,),
        ).scalar()
        if audited:
            if bind.exec_driver_sql(
                'SELECT count(*) FROM sqlite_sequence WHERE name = ?', (table,)
            ).scalar():
                bind.exec_driver_sql(
                    'UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?', (audited, table)
                )
            else:
                bind.exec_driver_sql(
                    'INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)', (table, audited)
                )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    for table in reversed(list(TABLES)):

        def plain(body, table=table):
            body = _once(body, _key_counted(table), _KEY_PLAIN, table)
            # The key constraint goes back before the first of the table's other constraints.
            first = body.index('\n\tCONSTRAINT ')
            return body[:first] + _key_constraint(table) + body[first:]

        _rebuild(bind, table, plain)
