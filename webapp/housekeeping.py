"""Small periodic upkeep: failed-login rows, jobs whose process died, and SQLite's statistics."""

import logging
from datetime import timedelta
from functools import partial

from sqlalchemy.exc import SQLAlchemyError

from webapp.auth import service as auth
from webapp.extensions import db
from webapp.jobs import service as jobs

log = logging.getLogger(__name__)

# Rows a job must add for its lists to be planned by their new size at once, not within the hour.
BULK_ROWS = 1000

# Rows ANALYZE reads of each index (SQLite's analysis_limit; it estimates beyond them). ANALYZE
# holds the write lock while it runs, and a full one reads every index whole: at 100,000 rows per
# list 6.8 s from a cold cache (1.3 s warm), during which every sign-in and order waited (in one
# benchmark run past the 10 s busy timeout, and the sign-in failed). With this limit: 0.8 s cold
# (0.15 s warm), no longer on bigger tables, and every list query is planned as with full
# statistics at 100,000 rows (a limit of 1,000 misplans three searches).
ANALYSIS_LIMIT = 10_000


def refresh_planner_statistics() -> bool:
    """Gather SQLite's planner statistics (ANALYZE, reading at most ``ANALYSIS_LIMIT`` rows of
    each index); False on PostgreSQL, whose autovacuum keeps its own.

    Without them SQLite prefers an index that matches an equality to one that also gives the
    order, and some list pages then sort thousands of rows (the orders list's "expiring in 30
    days", the domains search, the dashboard's pending orders: tests/unit/test_query_plans.py
    runs with the statistics this gathers)."""
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        return False
    conn.exec_driver_sql(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
    conn.exec_driver_sql("ANALYZE")
    db.session.commit()
    return True


def after_bulk_change(added: int) -> None:
    """A job that added ``added`` rows (an import, a sync) gathers the statistics now when they
    are many: a list that grew from hundreds of rows to 100,000 would otherwise be planned by its
    old size until the hourly task. A failure (the database busy) is logged: the job's own work
    is done, and the hourly task will gather them."""
    if added < BULK_ROWS:
        return
    try:
        refresh_planner_statistics()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("planner statistics not gathered after %s new rows: %s", added, exc)


def register_periodic(scheduler, app) -> None:
    scheduler.register("housekeeping", auth.prune_login_attempts, lambda: timedelta(hours=1))
    # The jobs the last orderly stop handed back carry on at once after a start, as their cards
    # say. Those of a process that died are taken up once a minute: each such run counts towards
    # a job's MAX_ATTEMPTS, so a process that keeps dying does not use them all up in seconds.
    scheduler.register(
        "jobs.resume",
        partial(jobs.recover, crashed=False),
        lambda: timedelta(minutes=1),
        at_start=True,
    )
    scheduler.register("jobs.recover", jobs.recover, lambda: timedelta(minutes=1))
    scheduler.register("jobs.prune", jobs.prune, lambda: timedelta(hours=6))
    # Hourly, and at the first tick after a start: a list that grew by an import is planned by
    # its new size within the hour.
    scheduler.register(
        "planner_statistics", refresh_planner_statistics, lambda: timedelta(hours=1), at_start=True
    )
