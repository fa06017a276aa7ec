"""A suspended order's certificate is not valid, against the real sandbox: suspended and resumed
in CertDesk, found suspended (and resumed) at Entrust by a status check or an import, revoked
after a suspension. The list, the certificate's page and the dashboard say so."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.conftest import link_sandbox, sandbox_order_form
from tests.integration.helpers import new_request
from webapp.audit import service as audit
from webapp.audit.models import AuditEvent
from webapp.cas.base import Action
from webapp.certificates import service as certificates
from webapp.certificates.models import Certificate
from webapp.csrs import service as csrs
from webapp.dashboard import service as dashboard
from webapp.ecs import EcsClient
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.orders import importing, lifecycle, placing, polling
from webapp.orders.models import Order

pytestmark = pytest.mark.usefixtures("fast_clients")


@pytest.fixture
def env(app, user, sandbox):
    sandbox.seed(certificates=0, seed=3)
    cred = link_sandbox(user, sandbox)
    sandbox.clear_requests()
    return cred


def _order(user, cred, cn: str) -> Order:
    csr = csrs.create_csr(user["operator"], "p256", {"CN": cn}, "")
    return placing.place(user["operator"], sandbox_order_form(cred, csr.id))


def _cert(row: Order) -> Certificate:
    db.session.expire_all()
    return db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()


def _listed(client, expiry: str) -> str:
    page = client.get(f"/certificates/?expiry={expiry}").get_data(as_text=True)
    return page.split('id="certificates-table"')[1].split("</table>")[0]


def _audited(action: str, cert: Certificate) -> int:
    return len(
        db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.object_id == str(cert.id)
            )
        ).all()
    )


def _act(user, action: Action, row: Order, **choices) -> None:
    [outcome] = lifecycle.run(
        user["admin"], action, [row.id], lifecycle.Choices(**choices)
    ).outcomes
    assert outcome.result == "done", outcome.message


def test_suspend_and_resume_in_certdesk(env, user, sandbox, admin_client):
    row = _order(user, env, "held.example.com")
    cert = _cert(row)
    assert certificates.state_of(cert)[0] == "valid" and dashboard.state_counts()["valid"] == 1

    _act(user, Action.SUSPEND, row)
    assert sandbox.status(row.ca_order_id) == "SUSPENDED"
    cert = _cert(row)
    assert cert.suspended_at is not None and certificates.state_of(cert)[0] == "suspended"
    assert _audited("certificate.suspended", cert) == 1
    assert "held.example.com" not in _listed(admin_client, "valid")
    assert "held.example.com" not in _listed(admin_client, "90")
    suspended = _listed(admin_client, "suspended")
    assert "held.example.com" in suspended and ">Suspended</span>" in suspended
    page = admin_client.get(f"/certificates/{cert.id}").get_data(as_text=True)
    assert 'id="cert-suspended">Suspended since' in page and "days left</span>" not in page
    counts = dashboard.state_counts()
    assert (counts["valid"], counts["suspended"], counts["total"]) == (0, 1, 1)
    assert sum(w.count for w in dashboard.expiry_timeline()) == 0
    assert dashboard.urgent() == []
    home = admin_client.get("/").get_data(as_text=True)
    assert "expiry=suspended" in home

    _act(user, Action.RESUME, row)
    cert = _cert(row)
    assert cert.suspended_at is None and certificates.state_of(cert)[0] == "valid"
    assert _audited("certificate.resumed", cert) == 1
    assert "held.example.com" in _listed(admin_client, "valid")
    assert "held.example.com" not in _listed(admin_client, "suspended")
    counts = dashboard.state_counts()
    assert (counts["valid"], counts["suspended"]) == (1, 0)


def test_revoked_after_a_suspension_is_revoked(env, user, sandbox, admin_client):
    row = _order(user, env, "gone.example.com")
    _act(user, Action.SUSPEND, row)
    _act(user, Action.REVOKE, row, reason="keyCompromise")
    assert sandbox.status(row.ca_order_id) == "REVOKED"
    cert = _cert(row)
    assert cert.revoked_at is not None and certificates.state_of(cert)[0] == "revoked"
    assert "gone.example.com" in _listed(admin_client, "revoked")
    assert "gone.example.com" not in _listed(admin_client, "suspended")
    assert _audited("certificate.resumed", cert) == 0  # revoked: it was never valid again
    counts = dashboard.state_counts()
    assert (counts["revoked"], counts["suspended"], counts["valid"]) == (1, 0, 0)


def test_a_status_check_finds_it_suspended_then_resumed(env, user, sandbox, admin_client):
    """Suspended and resumed by an Entrust administrator in Entrust's portal."""
    row = _order(user, env, "portal.example.com")
    sandbox.set_certificate_status(int(row.ca_order_id), "SUSPENDED")
    polling.check([db.session.get(Order, row.id)], "scheduler")
    cert = _cert(row)
    assert certificates.state_of(cert)[0] == "suspended"
    assert "portal.example.com" in _listed(admin_client, "suspended")
    assert dashboard.state_counts()["suspended"] == 1

    sandbox.set_certificate_status(int(row.ca_order_id), "ACTIVE")
    polling.check([db.session.get(Order, row.id)], "scheduler")
    cert = _cert(row)
    assert cert.suspended_at is None and certificates.state_of(cert)[0] == "valid"
    assert dashboard.state_counts()["valid"] == 1


def test_an_import_brings_a_suspended_order_in_suspended(env, user, sandbox, admin_client):
    """Imported while suspended at Entrust: its certificate comes in suspended, audited once
    each (two in one batch of the import, their events written together, the chain whole); the
    next import after a resume at Entrust makes it valid."""
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        tracking_id = ecs.new_certificate(new_request("imported.example.com")).tracking_id
        other_id = ecs.new_certificate(new_request("other.example.com")).tracking_id
    sandbox.set_certificate_status(tracking_id, "SUSPENDED")
    sandbox.set_certificate_status(other_id, "SUSPENDED")
    jobs.result_of(importing.start_import(user["operator"], env.id, []))
    row, other = (
        db.session.execute(select(Order).where(Order.ca_order_id == str(i))).scalar_one()
        for i in (tracking_id, other_id)
    )
    cert = _cert(row)
    assert row.status == "SUSPENDED" and certificates.state_of(cert)[0] == "suspended"
    assert certificates.state_of(_cert(other))[0] == "suspended"
    assert "imported.example.com" not in _listed(admin_client, "valid")
    assert dashboard.state_counts()["suspended"] == 2
    for suspended in (cert, _cert(other)):
        assert _audited("certificate.suspended", suspended) == 1
        event = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "certificate.suspended",
                AuditEvent.object_id == str(suspended.id),
            )
        ).scalar_one()
        assert event.actor_name == "operator" and event.object_type == "certificate"
        assert json.loads(event.detail) == {
            "common_name": suspended.common_name,
            "serial": suspended.serial_hex,
        }
    assert audit.verify().ok
    jobs.result_of(importing.start_import(user["operator"], env.id, []))
    assert _audited("certificate.suspended", cert) == 1  # held suspended: nothing new

    sandbox.set_certificate_status(tracking_id, "ACTIVE")
    jobs.result_of(importing.start_import(user["operator"], env.id, []))
    cert = _cert(row)
    assert cert.suspended_at is None and certificates.state_of(cert)[0] == "valid"
    assert dashboard.state_counts()["valid"] == 1
