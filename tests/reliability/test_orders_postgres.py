"""The orders feature on a real PostgreSQL: import (bulk inserts with RETURNING), the list's search,
filters and sorts, bad input refused without a trace, an order placed and checked, and a lost
answer settled (must run, not skip, under CI=true)."""

from __future__ import annotations

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from tests.conftest import Client, link_sandbox
from tests.helpers import PASSWORD
from webapp import _init_secretbox, create_app, paths
from webapp.auth import service as auth
from webapp.certificates.models import Certificate
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.orders import checks, importing, placing, polling
from webapp.orders.models import Order


@pytest.fixture
def pg_app(postgres_url, tmp_path):
    """A migrated database of its own in the session's PostgreSQL cluster."""
    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(
        base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as conn:
        conn.execute("DROP DATABASE IF EXISTS certdesk_orders")
        conn.execute("CREATE DATABASE certdesk_orders")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "pg-orders",
            "SQLALCHEMY_DATABASE_URI": base + "/certdesk_orders",
            "SCHEDULER_ENABLED": False,
            "JOBS_RUN_INLINE": True,
        }
    )
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        for role in ("admin", "operator", "auditor"):
            auth.create_user(None, role, PASSWORD, role)
        yield app
        db.session.remove()
        db.engine.dispose()


def _count(model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_orders_on_postgresql(pg_app, sandbox, fast_clients):
    assert db.engine.dialect.name == "postgresql"
    sandbox.seed(certificates=220, seed=12)
    user = {r: auth.by_username(r) for r in ("admin", "operator")}
    cred = link_sandbox(user, sandbox)

    job = importing.start_import(user["operator"], cred.id, [])
    assert job.state == "succeeded", job.error
    imported = _count(Order)
    assert imported > 200 and _count(Order, Order.third_party.is_(True)) == 1
    again = importing.start_import(user["operator"], cred.id, [])
    assert '"new": 0' in again.result and '"updated": 0' in again.result

    pg_app.test_client_class = Client
    c = pg_app.test_client()
    assert c.login("auditor").status_code == 302
    for query in (
        "",
        "?q=example.com",
        "?q=50%25_",
        "?status=PENDING&sort=cn&dir=desc",
        "?product=STANDARD_SSL&sort=tracking",
        "?expiring=90&sort=checked",
        f"?credential={cred.id}&sort=credential",
        "?status=%40unknown&per_page=25",
    ):
        assert c.get("/entrust/" + query).status_code == 200, query
    page = c.get("/entrust/?q=5000003").get_data(as_text=True)
    assert page.count('<tr data-order="') == 1

    # Bad input: refused before anything is sent or stored, on PostgreSQL too.
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "pg.example.com"}, "")
    base = dict(
        credential_id=cred.id,
        organization="1:CertDesk Demo Corp",
        product="STANDARD_SSL",
        csr_source="certdesk",
        csr_id=csr.id,
        custom={"text2": "pg"},
    )
    for bad, field in [
        ({"sans": "pg.example.com www.elsewhere.example"}, "sans"),
        ({"requester_name": "x" * 300}, "requester_name"),
        ({"organization": "1:' OR 1=1 --"}, "organization"),
        ({"custom": {"text2": "y" * 600}}, "custom_text2"),
    ]:
        with pytest.raises(checks.OrderInputError) as refused:
            placing.place(user["operator"], checks.OrderForm(**{**base, **bad}))
        assert refused.value.field == field
    assert _count(Order) == imported

    row = placing.place(
        user["operator"], checks.OrderForm(**base, queue_for_approval=True, friendly_name="PG")
    )
    assert row.status == "PENDING"
    sandbox.set_certificate_status(int(row.ca_order_id), "ACTIVE")
    result = polling.check_selected(user["operator"], [row.id])
    assert result.counts["changed"] == 1 and result.counts["certificates"] == 1
    assert _count(Certificate, Certificate.order_id == row.id) == 1

    # A lost answer on PostgreSQL: settled by the search.
    sandbox.faults(
        [{"kind": "commit_then_500", "method": "POST", "path": "/enterprise/v2/certificates"}]
    )
    lost = placing.place(user["operator"], checks.OrderForm(**base))
    sandbox.clear_faults()
    assert lost.placement == "placed" and lost.phase == "issued"
