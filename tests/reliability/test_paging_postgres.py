"""The pager's checks on PostgreSQL, which sorts NULLs last (SQLite: first): Next, Previous and
page numbers see every row once in the database's order; counts stop at the cap."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade

from tests.unit import test_paging as checks
from webapp import _init_secretbox, create_app, paths
from webapp.extensions import db

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(postgres_url, tmp_path):
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(
        base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as conn:
        conn.execute("DROP DATABASE IF EXISTS certdesk_paging")
        conn.execute("CREATE DATABASE certdesk_paging")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "pg",
            "SQLALCHEMY_DATABASE_URI": base + "/certdesk_paging",
            "SCHEDULER_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        checks.make_domains()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_next_previous_and_numbers_agree_with_postgresql(pg_app):
    checks.check_every_order()


def test_counts_stop_at_the_cap_on_postgresql(pg_app):
    checks.check_counts()


def test_bad_cursors_fall_back_to_the_page_number_on_postgresql(pg_app):
    checks.check_bad_cursors()
