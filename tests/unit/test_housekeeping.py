"""The housekeeping tasks the scheduler runs: here, the planner statistics (SQLite only)."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import analyzed_tables
from webapp import housekeeping
from webapp.extensions import db


def test_planner_statistics_are_gathered_hourly_on_sqlite_only(app):
    task = app.extensions["certdesk_scheduler"].tasks["planner_statistics"]
    assert task.interval() == timedelta(hours=1)
    gathered = housekeeping.refresh_planner_statistics()
    if db.engine.dialect.name != "sqlite":
        assert gathered is False
        return
    assert gathered is True
    tables = analyzed_tables(db.session.connection().connection.driver_connection)
    assert "user" in tables  # the test database has users, and an index on their names


def test_sqlite_connections_are_opened_again_to_plan_by_fresh_statistics(app):
    """A SQLite connection reads the statistics when it opens; ANALYZE after the first only
    changes rows. So the pool opens its SQLite connections again after an hour."""
    from webapp import config

    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    if db.engine.dialect.name == "sqlite":
        assert options["pool_recycle"] == config.SQLITE_RECYCLE_SECONDS == 3600
    else:
        assert "pool_recycle" not in options
