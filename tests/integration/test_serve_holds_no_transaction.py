"""`certdesk serve` on PostgreSQL holds no transaction open once it serves: one left from its start
(the first-run check, the demo line) held back VACUUM's cleanup of every table, and a lock on
``user``, for as long as the server ran."""

from __future__ import annotations

import time

import pytest

from tests import pg
from tests.live import signed_in


def test_a_served_certdesk_leaves_no_transaction_open(live_server):
    marker = live_server.instance / "database_url"
    if not marker.exists():
        pytest.skip("PostgreSQL's own view of open transactions (CERTDESK_TEST_DB=postgresql)")
    url = marker.read_text().strip()
    signed_in(live_server, "admin").get(live_server.url + "/", timeout=10)
    time.sleep(2)  # past any request still ending
    import psycopg

    database = url.rsplit("/", 1)[1]
    with psycopg.connect(pg._dsn(url, database), autocommit=True) as conn:
        open_ones = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
        ).fetchall()
    assert open_ones == [], open_ones
