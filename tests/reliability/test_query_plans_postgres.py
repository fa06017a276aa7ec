"""The query-plan test on PostgreSQL: every list query, the dashboard and the filter drop-downs
use an index for their filter and order, on a populated and ANALYZEd database in a throwaway
cluster (see tests/plans.py for the registry and the rules)."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from tests import plans
from tests.populate import fill
from webapp import _init_secretbox, create_app, paging, paths, search
from webapp.extensions import db

pytestmark = pytest.mark.postgres

# Enough rows that an index's advantage is plain to PostgreSQL's planner: at 4,000 its costs for a
# filtered page deep in the list sat close enough to a full scan's to flip between runs.
ROWS = 20000
NARROW, COUNT_CAP = search.NARROW, paging.COUNT_CAP


@pytest.fixture(scope="module")
def populated(postgres_url, tmp_path_factory):
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(
        base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as conn:
        conn.execute("DROP DATABASE IF EXISTS certdesk_plans")
        conn.execute("CREATE DATABASE certdesk_plans")
    # Counts and a search's "few matches" keep the share of the table they have at 100,000 rows.
    search.NARROW, paging.COUNT_CAP = ROWS // 50, ROWS // 100
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path_factory.mktemp("plans-pg")),
            "SECRET_KEY": "pg",
            "SQLALCHEMY_DATABASE_URI": base + "/certdesk_plans",
            "SCHEDULER_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        fill(ROWS, quiet=True)
        db.session.remove()
        yield app
        db.session.remove()
        db.engine.dispose()
    search.NARROW, paging.COUNT_CAP = NARROW, COUNT_CAP


@pytest.mark.parametrize(
    "build", [b for _, b in plans.LIST_QUERIES], ids=[n for n, _ in plans.LIST_QUERIES]
)
def test_list_query_plans(populated, build):
    with plans.captured() as seen:
        plans.run_pages(build)
    assert len(seen) >= 2
    assert plans.problems(seen) == {}


@pytest.mark.parametrize(
    "call", [c for _, c in plans.OTHER_QUERIES], ids=[n for n, _ in plans.OTHER_QUERIES]
)
def test_dashboard_and_drop_down_plans(populated, call):
    with plans.captured() as seen:
        call()
    assert seen
    assert plans.problems(seen) == {}


def test_the_rules_catch_a_full_scan_and_a_sort(populated):
    conn = plans.dbapi_connection()
    scan = plans.postgres_problems(
        conn, "SELECT id FROM certificate WHERE subject = %(s)s", {"s": "x"}
    )
    assert scan and "full scan" in scan[0]
    sort = plans.postgres_problems(
        conn, "SELECT id FROM certificate ORDER BY fingerprint_sha1 LIMIT 50", {}
    )
    assert any("sort of the whole result" in p for p in sort)
    assert db.session.execute(text("SELECT count(*) FROM certificate")).scalar() == ROWS
