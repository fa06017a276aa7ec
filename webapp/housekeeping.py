"""Small periodic upkeep: failed-login rows, jobs whose process died, and SQLite's statistics."""

from datetime import timedelta

from webapp.auth import service as auth
from webapp.extensions import db
from webapp.jobs import service as jobs


def refresh_planner_statistics() -> bool:
    """Gather SQLite's planner statistics (ANALYZE: 0.6 s at 100,000 rows per list); False on
    PostgreSQL, whose autovacuum keeps its own.

    Without them SQLite prefers an index that matches an equality to one that also gives the
    order, and some list pages then sort thousands of rows (the orders list's "expiring in 30
    days", the domains search, the dashboard's pending orders: tests/unit/test_query_plans.py
    runs with the statistics this gathers)."""
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        return False
    conn.exec_driver_sql("ANALYZE")
    db.session.commit()
    return True


def register_periodic(scheduler, app) -> None:
    scheduler.register("housekeeping", auth.prune_login_attempts, lambda: timedelta(hours=1))
    scheduler.register("jobs.recover", jobs.recover, lambda: timedelta(minutes=1))
    # Hourly, and at the first tick after a start: a list that grew by an import is planned by
    # its new size within the hour.
    scheduler.register("planner_statistics", refresh_planner_statistics, lambda: timedelta(hours=1))
