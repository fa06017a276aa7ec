"""Every list query, the dashboard and the filter drop-downs use an index for their filter and
order on SQLite: no full scan of a table that grows, no sort of a whole result (see tests/plans.py
for the registry and the rules). The database is populated and ANALYZEd, so that the planner
chooses as it would at scale."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from tests import plans
from tests.conftest import make_app
from tests.populate import fill
from webapp import _init_secretbox, housekeeping, paging, paths, search
from webapp.certificates import service as certificates
from webapp.dashboard import service as dashboard
from webapp.extensions import db

ROWS = 4000
NARROW, COUNT_CAP = search.NARROW, paging.COUNT_CAP


@pytest.fixture(scope="module", params=["filler", "housekeeping"])
def populated(tmp_path_factory, request):
    """The filled database, planned by the statistics of the filler's ANALYZE, or by those
    CertDesk gathers itself (webapp.housekeeping; without any, SQLite plans some lists badly)."""
    # Counts and a search's "few matches" keep the share of the table they have at 100,000 rows.
    search.NARROW, paging.COUNT_CAP = ROWS // 50, ROWS // 100
    instance = tmp_path_factory.mktemp("plans")
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        fill(ROWS, quiet=True)
        db.session.remove()
        if request.param == "housekeeping":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM sqlite_stat1")
            db.engine.dispose()  # a connection keeps the statistics it read
            assert housekeeping.refresh_planner_statistics()
            db.session.remove()
            db.engine.dispose()
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


def test_the_dashboards_certificates_not_valid_yet_are_read_by_their_start(populated):
    """Those few are counted through the notBefore index: as a range of expiry times, "expiring
    within 90 days" would read a quarter of all certificates to find them."""
    with plans.captured() as seen:
        dashboard.state_counts()
        dashboard.expiry_timeline()
    conn = plans.dbapi_connection()
    asked = read = 0
    for sql, params in seen:
        asked += sql.count("certificate.not_before >")
        details = [r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
        read += sum("USING INDEX ix_certificate_not_before (not_before>?)" in d for d in details)
    assert asked >= 5 and read == asked, (asked, read)


@pytest.mark.parametrize("expiry", ["valid", "30"])
def test_the_valid_certificates_are_counted_from_the_index_alone(populated, expiry):
    """A valid certificate is neither suspended nor before its notBefore, which the expiry index
    does not hold: those few are excluded by id, so that counting the page's matches (up to a
    thousand) reads no row."""
    with plans.captured() as seen:
        certificates.page_of(certificates.CertFilter(expiry=expiry), 1, 50)
    conn = plans.dbapi_connection()
    [(sql, params)] = [(sql, params) for sql, params in seen if "count(*)" in sql]
    details = [r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
    assert "SEARCH certificate USING COVERING INDEX ix_certificate_expiry" in " ".join(details), (
        details
    )


# Rows never deleted: a user is deactivated, and keeps what refers to it.
NEVER_DELETED = {"user"}


def test_the_rows_referring_to_a_deleted_row_are_found_through_an_index(populated):
    """Deleting a row makes the database look up what refers to it (to clear or delete those, or
    to refuse): without an index on the referring column, it reads the whole referring table, for
    each row deleted (deleting a CSR read all 100,000 orders twice)."""
    conn = plans.dbapi_connection()
    found = {}
    for table in db.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if table.name not in plans.GROWING or fk.column.table.name in NEVER_DELETED:
                continue
            stmt = select(fk.parent).where(fk.parent == 7)
            sql = str(stmt.compile(dialect=db.engine.dialect))
            if problems := plans.sqlite_problems(conn, sql, (7,)):
                found[f"{table.name}.{fk.parent.name}"] = problems
    assert found == {}


def test_the_rules_catch_a_full_scan_and_a_sort(populated):
    """The judge itself: a query without a usable index, and one sorting a whole table, fail."""
    conn = plans.dbapi_connection()
    scan = plans.sqlite_problems(conn, "SELECT id FROM certificate WHERE subject = ?", ("x",))
    assert scan and "full scan" in scan[0]
    # as SQLAlchemy writes it: each clause on a line of its own
    limited = plans.sqlite_problems(
        conn, "SELECT certificate.id \nFROM certificate \nWHERE subject = ?\n LIMIT ?", ("x", 1)
    )
    assert limited and "full scan" in limited[0]
    walk = plans.sqlite_problems(conn, "SELECT count(*) FROM certificate", ())
    assert walk and "full scan" in walk[0]
    sort = plans.sqlite_problems(
        conn, "SELECT id FROM certificate ORDER BY fingerprint_sha1 LIMIT 50", ()
    )
    assert any("sort of the whole result" in p for p in sort)


def test_expiring_orders_are_read_and_counted_from_one_index(populated):
    """The filter "Expiring within N days" (issued orders only) walks an index holding the phase,
    the expiry and the id: its count reads no order itself (through the expiry index alone, every
    order in the window was read for its phase, about 4 ms at 100,000 orders)."""
    from webapp.orders import queries as orders
    from webapp.paging import paginate

    with plans.captured() as seen:
        paginate(orders.query(orders.OrderFilter(expiring="30")), 1, 50, cursor=(None, None))
    conn = plans.dbapi_connection()
    details = [
        row[-1]
        for sql, params in seen
        if "ca_order.phase" in sql
        for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    ]
    walks = [d for d in details if d.startswith("SEARCH ca_order ")]
    assert walks, details
    assert all("INDEX ix_ca_order_phase_expiry (phase=? AND expires_at>? AND" in d for d in walks)
    assert any("COVERING INDEX ix_ca_order_phase_expiry" in d for d in walks), walks


def test_the_benchmarks_time_what_the_pages_run(populated, monkeypatch):
    """bench/scaling.py and bench/list_pages.py time each page's main query bare (the views'
    own filter parsing and service calls, no HTTP): every one of them still runs against the
    views as they are, so a changed signature fails here and not an hour into a benchmark."""
    import importlib

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    for name in ("scaling", "list_pages"):
        module = importlib.import_module(name)
        scenarios = [sc for sc in module.scenarios() if "DEEP" not in sc.url]
        assert {sc.page for sc in scenarios} >= {"certificates", "domains", "dashboard"}
        for sc in scenarios:
            with plans.captured() as seen:
                sc.bare(populated)
            assert seen, (name, sc.name)


def test_the_poller_finds_orders_expired_since_last_read_through_one_index(populated):
    """The status poller's issued orders whose certificate has expired since they were last
    read: a range of the phase and expiry index (the last 30 days of expiries), not a walk of
    every issued order."""
    from webapp.orders import polling

    with plans.captured() as seen:
        polling.due()
    conn = plans.dbapi_connection()
    expired = [
        (sql, p) for sql, p in seen if "ca_order.last_checked_at < ca_order.expires_at" in sql
    ]
    assert len(expired) == 1
    sql, params = expired[0]
    details = [r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
    assert any(
        "INDEX ix_ca_order_phase_expiry (phase=? AND expires_at>? AND expires_at<?)" in d
        for d in details
    ), details
    assert plans.sqlite_problems(conn, sql, params) == [], details
