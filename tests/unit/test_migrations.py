"""The migrations build exactly the schema the models describe, and come apart again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from webapp import paths
from webapp.extensions import db


def _drift() -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": True}
        )
        return compare_metadata(context, db.metadata)


def test_migrated_schema_matches_the_models(app):
    assert _drift() == []


def test_every_migration_downgrades_and_upgrades_again(app):
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="base")
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    assert _drift() == []
