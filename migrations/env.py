"""Alembic environment for CertDesk (run through Flask-Migrate: `certdesk db ...`)."""

import logging

from alembic import context
from flask import current_app

log = logging.getLogger("alembic.env")
config = context.config
db = current_app.extensions["migrate"].db
config.set_main_option(
    "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def _metadata():
    return db.metadatas[None] if hasattr(db, "metadatas") else db.metadata


def _skip_empty(context_, revision, directives):
    """An autogenerate run that finds no change writes no empty migration."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("No changes in schema detected.")


def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=_metadata(),
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", _skip_empty)
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A migration that rebuilds a table drops the old one; with foreign keys enforced that
            # would delete or unlink every row referring to it (ON DELETE CASCADE / SET NULL).
            # The pragma only takes effect outside a transaction: before Alembic begins one.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
            # The SQLite driver begins no transaction before a CREATE, DROP or ALTER: each would
            # stand alone, and an upgrade cut short (stopped, killed, a step failing) would leave
            # the schema between two versions, a table dropped and its rebuilt copy not yet in its
            # place. One transaction, begun here, holds the whole upgrade: all of it or none.
            connection.exec_driver_sql("BEGIN")
        applied = []  # the steps run (none at most starts: the check below reads every row)
        conf_args["on_version_apply"] = (
            *conf_args.get("on_version_apply", ()),
            lambda **step: applied.append(step["step"]),
        )
        context.configure(connection=connection, target_metadata=_metadata(), **conf_args)
        try:
            with context.begin_transaction():
                context.run_migrations()
                if sqlite and applied:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration broke references: {broken[:10]}")
            if sqlite:
                connection.commit()
        except BaseException:
            if sqlite:
                connection.rollback()
            raise
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
