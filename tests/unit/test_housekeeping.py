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


def test_statistics_gathered_after_a_bulk_change_only_and_a_failure_is_logged(
    app, monkeypatch, caplog
):
    from sqlalchemy.exc import OperationalError

    calls = []
    monkeypatch.setattr(housekeeping, "refresh_planner_statistics", lambda: calls.append(1))
    housekeeping.after_bulk_change(housekeeping.BULK_ROWS - 1)
    assert calls == []
    housekeeping.after_bulk_change(housekeeping.BULK_ROWS)
    assert calls == [1]

    def locked():
        raise OperationalError("ANALYZE", {}, Exception("database is locked"))

    monkeypatch.setattr(housekeeping, "refresh_planner_statistics", locked)
    housekeeping.after_bulk_change(50_000)  # the job that called it still succeeds
    assert "not gathered after 50000 new rows" in caplog.text
    assert db.session.execute(db.text("SELECT 1")).scalar() == 1  # the session is usable
