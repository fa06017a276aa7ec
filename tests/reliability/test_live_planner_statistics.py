"""A real `certdesk serve` gathers SQLite's planner statistics soon after it starts (the
scheduler's first tick runs the hourly housekeeping task): without them SQLite plans some list
pages badly at scale, and CertDesk is the only one who would run ANALYZE."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import pytest

from tests.helpers import analyzed_tables


def _analyzed(path) -> set:
    with closing(sqlite3.connect(path)) as conn:
        return analyzed_tables(conn)


def test_a_started_server_gathers_the_planner_statistics(live_server):
    db_file = live_server.instance / "certdesk.db"
    if not db_file.exists():
        pytest.skip("this run is on PostgreSQL, whose autovacuum keeps its own statistics")
    deadline = time.monotonic() + 60
    while "user" not in _analyzed(db_file):
        assert time.monotonic() < deadline, f"no statistics after 60 s: {live_server.lines[-20:]}"
        time.sleep(0.2)
    with closing(sqlite3.connect(db_file)) as conn:
        ran = conn.execute("SELECT name FROM periodic_run WHERE name = 'planner_statistics'")
        assert ran.fetchone() is not None
