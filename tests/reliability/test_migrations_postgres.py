"""The scaling migration (0007) on PostgreSQL: from rows written under the previous schema it
fills the search keys, the gone flag, the CSR names and the per-day expiry counts."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade

from tests.unit.test_migrations import fill_before_0007_and_upgrade
from webapp import create_app, paths
from webapp.extensions import db

pytestmark = pytest.mark.postgres


def test_the_scaling_migration_fills_what_it_adds_on_postgresql(postgres_url, tmp_path):
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(
        base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as conn:
        conn.execute("DROP DATABASE IF EXISTS certdesk_migrate")
        conn.execute("CREATE DATABASE certdesk_migrate")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "pg",
            "SQLALCHEMY_DATABASE_URI": base + "/certdesk_migrate",
            "SCHEDULER_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        fill_before_0007_and_upgrade()
        db.session.remove()
        db.engine.dispose()
