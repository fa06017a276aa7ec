"""The housekeeping tasks the scheduler runs: here, the planner statistics (SQLite only)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta

import pytest

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


def test_pooled_sqlite_connections_plan_by_the_statistics_another_one_gathered(
    tmp_path, monkeypatch
):
    """A SQLite connection reads the statistics when it opens; another connection's ANALYZE
    changes only rows. A pooled connection is opened again once they changed (checked at most
    every STATISTICS_CHECK_SECONDS), and kept while they did not."""
    from sqlalchemy import create_engine

    from webapp import extensions

    path = tmp_path / "plans.db"

    def fill(rows):
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x, y)")
            conn.execute("CREATE INDEX IF NOT EXISTS ix ON t (x)")
            conn.execute("CREATE INDEX IF NOT EXISTS iy ON t (y)")
            conn.execute("DELETE FROM t")
            conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
            conn.execute("ANALYZE")
            conn.commit()

    fill([(i, i % 2) for i in range(5000)])  # x tells rows apart, y does not
    monkeypatch.setattr(extensions, "STATISTICS_CHECK_SECONDS", 0.0)
    engine = create_engine(f"sqlite:///{path}", pool_size=1, max_overflow=0)

    def plan():
        with engine.connect() as conn:
            found = conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT * FROM t WHERE x = 1 AND y = 1")
            return found.fetchall()[0][3], conn.connection.dbapi_connection

    try:
        first, opened = plan()
        assert "INDEX ix" in first
        assert plan()[1] is opened  # nothing changed: the same connection
        fill([(i % 2, i) for i in range(5000)])  # now y tells them apart
        second, reopened = plan()
        assert "INDEX iy" in second and reopened is not opened
        assert plan()[1] is reopened
    finally:
        engine.dispose()


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


def test_gathering_the_statistics_reads_a_bounded_share_of_a_big_table(app):
    """ANALYZE holds the write lock while it runs: the task reads each index only as far as
    ANALYSIS_LIMIT, so its work (counted in SQLite's virtual machine steps, not in seconds)
    stays the same when a table doubles, where a full ANALYZE doubles too."""

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's autovacuum keeps its statistics")
    raw = db.session.connection().connection.driver_connection

    def add_attempts(count):
        raw.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO login_attempt (at, username, address, success) "
            "SELECT datetime('now', '-' || i || ' seconds'), 'user' || (i % 5000), "
            "'10.0.' || (i % 250) || '.' || (i % 200), i % 3 = 0 FROM n",
            (count,),
        )
        db.session.commit()

    def steps(gather):
        counted = [0]

        def step():
            counted[0] += 1
            return 0

        conn = db.session.connection().connection.driver_connection
        conn.set_progress_handler(step, 100)
        try:
            gather()
        finally:
            conn.set_progress_handler(None, 100)
        return counted[0]

    def full():
        db.session.connection().exec_driver_sql("PRAGMA analysis_limit = 0")
        db.session.connection().exec_driver_sql("ANALYZE")
        db.session.commit()

    add_attempts(3 * housekeeping.ANALYSIS_LIMIT)
    task_small, full_small = steps(housekeeping.refresh_planner_statistics), steps(full)
    add_attempts(3 * housekeeping.ANALYSIS_LIMIT)
    task_big, full_big = steps(housekeeping.refresh_planner_statistics), steps(full)
    assert full_big > 1.6 * full_small  # the full ANALYZE reads the table whole
    assert task_big < 1.15 * task_small
    assert task_big < full_big / 3
