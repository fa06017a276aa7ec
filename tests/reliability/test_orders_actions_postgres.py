"""The actions on orders on a real PostgreSQL: two people reissuing the same order at the same
moment send one reissue (the original's row lock orders them, the second sees the first's intent
and is refused); suspend and resume; Delete lets the foreign keys keep the certificates and the
successors (must run, not skip, under CI=true)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from tests.conftest import link_sandbox
from tests.helpers import PASSWORD
from webapp import _init_secretbox, create_app, paths
from webapp.auth import service as auth
from webapp.cas.base import Action
from webapp.certificates.models import Certificate
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.orders import checks, lifecycle, placing, successors
from webapp.orders.models import Order, OrderEvent
from webapp.validation import InputError


@pytest.fixture
def pg_app(postgres_url, tmp_path):
    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(
        base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as conn:
        conn.execute("DROP DATABASE IF EXISTS certdesk_actions")
        conn.execute("CREATE DATABASE certdesk_actions")
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "pg-actions",
            "SQLALCHEMY_DATABASE_URI": base + "/certdesk_actions",
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


def _place(user, cred, cn) -> Order:
    csr = csrs.create_csr(user["operator"], "p256", {"CN": cn}, "")
    return placing.place(
        user["operator"],
        checks.OrderForm(
            credential_id=cred.id,
            organization="1:CertDesk Demo Corp",
            product="STANDARD_SSL",
            csr_source="certdesk",
            csr_id=csr.id,
            custom={"text2": "pg"},
        ),
    )


def _reissue_form(row, csr_id) -> checks.OrderForm:
    values = successors.prefill(row, "reissue")
    return checks.OrderForm(
        csr_source="certdesk",
        csr_id=csr_id,
        sans=values["sans"],
        eku=values["eku"],
        signature_algorithm=values["signature_algorithm"],
        requester_name=values["requester_name"],
        ct_log=True,
    )


def test_actions_on_postgresql(pg_app, sandbox, fast_clients):
    assert db.engine.dialect.name == "postgresql"
    sandbox.seed(certificates=0, seed=12)
    user = {r: auth.by_username(r) for r in ("admin", "operator")}
    cred = link_sandbox(user, sandbox)
    row = _place(user, cred, "www.example.com")
    other = _place(user, cred, "shop.example.com")
    row_id, other_id = row.id, other.id
    csr_ids = [
        csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "").id
        for _ in range(2)
    ]
    db.session.remove()

    # Two reissues of the same order at once, while Entrust answers slowly: one is sent.
    sandbox.clear_requests()
    sandbox.faults([{"kind": "latency", "ms": 1500, "method": "POST", "path": "/enterprise/v2/*"}])
    results: list = []
    barrier = threading.Barrier(2)

    def reissue(csr_id):
        with pg_app.app_context():
            try:
                actor = auth.by_username("operator")
                original = db.session.get(Order, row_id)
                form = _reissue_form(original, csr_id)
                barrier.wait(timeout=30)
                results.append(successors.reissue(actor, original, form).id)
            except InputError as exc:
                results.append(str(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=reissue, args=(c,)) for c in csr_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    sandbox.clear_faults()
    posts = [r for r in sandbox.requests() if r["path"].endswith("/reissues")]
    assert len(posts) == 1, results
    placed = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, str)]
    assert len(placed) == 1 and len(refused) == 1, results
    assert "still checking" in refused[0] or "this one is REISSUED" in refused[0]
    new = db.session.get(Order, placed[0])
    assert new.parent_id == row_id and new.status == "ACTIVE"
    assert db.session.get(Order, row_id).status == "REISSUED"

    user = {r: auth.by_username(r) for r in ("admin", "operator")}
    # Suspend and resume.
    for action, status in ((Action.SUSPEND, "SUSPENDED"), (Action.RESUME, "ACTIVE")):
        result = lifecycle.run(user["admin"], action, [other_id], lifecycle.Choices())
        assert result.outcomes[0].result == "done", result.outcomes[0].message
        db.session.expire_all()
        assert db.session.get(Order, other_id).status == status

    # Delete the original: its history goes, its certificate and its successor stay.
    cert_id = db.session.execute(
        select(Certificate.id).where(Certificate.order_id == row_id)
    ).scalar_one()
    assert (
        lifecycle.delete_selected(
            user["admin"], [row_id], confirmed=True, unsettled_confirmed=False
        )[0]
        == 1
    )
    db.session.expire_all()
    assert db.session.get(Order, row_id) is None
    assert db.session.get(Order, new.id).parent_id is None
    assert db.session.get(Certificate, cert_id).order_id is None
    events = select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == row_id)
    assert db.session.execute(events).scalar_one() == 0
