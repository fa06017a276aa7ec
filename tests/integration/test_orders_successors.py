"""Reissue Certificate and Renew Certificate against the real sandbox: the new order linked to the
original in both histories, the new certificate in the repository with its CSR and key, the
original read back (and its certificate revoked after a reissue), CertDesk's refusals before any
call (an old key, a certificate too young to renew), and never twice: faults on the create call
never give a second order, and a lost answer is settled by the reconciler."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from tests.conftest import link_sandbox, sandbox_order_form, successor_form
from tests.integration.helpers import make_csr
from webapp import pki
from webapp.audit.models import AuditEvent
from webapp.cas import registry
from webapp.cas.base import Action
from webapp.certificates.models import Certificate
from webapp.credentials import clients
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.ecs import EcsClient, types
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.keys.models import PrivateKey
from webapp.orders import importing, lifecycle, placing, settling, successors
from webapp.orders.checks import OrderInputError
from webapp.orders.models import Order, OrderEvent
from webapp.settings import service as settings

pytestmark = pytest.mark.usefixtures("fast_clients")

BASE = "/enterprise/v2/certificates"


@pytest.fixture
def env(app, user, sandbox):
    sandbox.seed(certificates=0, seed=3)
    cred = link_sandbox(user, sandbox)
    sandbox.clear_requests()
    return cred


def _csr(user, cn="www.example.com", sans=""):
    return csrs.create_csr(user["operator"], "p256", {"CN": cn}, sans)


def _order(user, cred, cn="www.example.com") -> Order:
    form = sandbox_order_form(cred, _csr(user, cn).id, requester_phone="555-0100")
    row = placing.place(user["operator"], form)
    assert row.status == "ACTIVE"
    return row


def _creates(sandbox, kind: str) -> list[dict]:
    return [
        r
        for r in sandbox.requests()
        if r["method"] == "POST" and r["path"].rstrip("/").endswith("/" + kind)
    ]


def _certs(order_id) -> list[Certificate]:
    stmt = select(Certificate).where(Certificate.order_id == order_id)
    return list(db.session.execute(stmt).scalars())


def _kinds(order_id) -> list[str]:
    stmt = select(OrderEvent.kind).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
    return list(db.session.execute(stmt).scalars())


def test_reissue_with_a_new_csr_made_in_certdesk(env, user, sandbox):
    old = _order(user, env)
    old_cert = _certs(old.id)[0]
    old_expiry = sandbox.order(old.ca_order_id)["expiresAfter"]
    new_csr = _csr(user, "www.example.com")
    sandbox.clear_requests()

    form = successor_form(old, csr_id=new_csr.id, additional_emails="team@example.com")
    new = successors.reissue(user["operator"], old, form)

    assert new.placement == "placed" and new.status == "ACTIVE" and new.origin == "reissue"
    assert new.parent_id == old.id and new.ca_order_id != old.ca_order_id
    [post] = _creates(sandbox, "reissues")
    assert post["path"] == f"{BASE}/{old.ca_order_id}/reissues"
    assert post["body"]["tracking"]["trackingInfo"] == new.request_id
    assert post["body"]["tracking"]["requesterPhone"] == "555-0100"  # the tracking details kept
    assert post["body"]["tracking"]["customFields"] == {"text2": "billing"}
    assert post["body"]["tracking"]["additionalEmails"] == ["team@example.com"]
    assert post["body"]["csr"].strip() == new_csr.pem.strip()
    # The new certificate is in the repository, linked to the new order, its CSR and its key.
    [cert] = _certs(new.id)
    assert cert.csr_id == new_csr.id and cert.private_key_id == new_csr.private_key_id
    assert cert.public_key_id != old_cert.public_key_id
    assert sandbox.order(new.ca_order_id)["expiresAfter"] == old_expiry  # the expiry stays
    # The original, read back: REISSUED, and its certificate revoked in the repository.
    db.session.refresh(old)
    db.session.refresh(old_cert)
    assert old.status == "REISSUED" == sandbox.status(old.ca_order_id)
    assert old_cert.revoked_at is not None
    assert "reissued_into" in _kinds(old.id) and "reissue_of" in _kinds(new.id)
    into = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == old.id, OrderEvent.kind == "reissued_into")
    ).scalar_one()
    assert into.related_order_id == new.id and into.new_status == "REISSUED"
    actions = set(db.session.execute(select(AuditEvent.action)).scalars())
    assert {"order.request", "order.place", "order.replaced", "certificate.revoked"} <= actions


def test_reissue_with_a_pasted_csr_and_its_key(env, user, sandbox):
    old = _order(user, env)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    new = successors.reissue(
        user["operator"],
        old,
        successor_form(old, csr_source="paste", csr_text=csr, key_text=key_pem),
    )
    [cert] = _certs(new.id)
    assert cert.private_key_id is not None and cert.csr_id == new.csr_id is not None


def test_reissue_with_a_key_and_csr_made_for_it(env, user, sandbox):
    old = _order(user, env)
    new = successors.reissue(user["operator"], old, successor_form(old, csr_source="new"))
    [cert] = _certs(new.id)
    key_row = db.session.get(PrivateKey, cert.private_key_id)
    assert key_row.origin == "generated" and key_row.label == "RSA 2048"  # the default
    assert cert.csr_id == new.csr_id is not None and new.san_list == old.san_list
    assert key_row.id != _certs(old.id)[0].private_key_id


def test_the_same_reissue_form_sent_twice_places_one_reissue(env, user, sandbox):
    """Back, then Reissue again with the same form, while CertDesk could not read the original
    back (it still shows ACTIVE): the form carries the request id it was shown with, so the
    second sending finds the reissue the first one placed and sends nothing to Entrust."""
    old = _order(user, env)
    form = dataclasses.replace(
        successor_form(old, csr_id=_csr(user).id), request_id=placing.new_request_id()
    )
    sandbox.faults([{"kind": "http_503", "method": "GET", "path": f"{BASE}/{old.ca_order_id}"}])
    sandbox.clear_requests()
    new = successors.reissue(user["operator"], old, form)
    sandbox.clear_faults()
    assert new.placement == "placed" and new.request_id == form.request_id
    db.session.refresh(old)
    assert old.status == "ACTIVE" and "could not be read" in old.message
    with pytest.raises(placing.SentAlready) as sent:
        successors.reissue(user["operator"], old, form)
    assert sent.value.order_id == new.id
    assert len(_creates(sandbox, "reissues")) == 1
    assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 2


@pytest.mark.parametrize("origin", ["reissue", "renew"])
def test_two_forms_whose_checks_passed_before_the_first_settled_send_one_call(
    env, user, sandbox, monkeypatch, origin
):
    """Two Reissue (or Renew) forms of one order, each with its own request id, sent at once: the
    second's checks pass while the first is on its way (the original still ACTIVE), then it waits
    for the original's row. Once the first has settled, Entrust holds the original as reissued
    (renewed): the second is refused there, with nothing sent, rather than asking Entrust."""
    old = _aged_order(user, env, sandbox) if origin == "renew" else _order(user, env)
    forms = [
        dataclasses.replace(
            successor_form(old, csr_id=_csr(user).id), request_id=placing.new_request_id()
        )
        for _ in range(2)
    ]
    place = getattr(successors, origin)
    real_prepare = successors.prepare
    firsts: list = []

    def prepare_then_let_the_other_settle(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        if not firsts:  # the second form's checks have passed: the first goes through now
            firsts.append(None)
            firsts[0] = place(user["admin"], old, forms[0])
        return prepared

    monkeypatch.setattr(successors, "prepare", prepare_then_let_the_other_settle)
    sandbox.clear_requests()
    with pytest.raises(OrderInputError, match="this one is (REISSUED|RENEWED)"):
        place(user["operator"], old, forms[1])
    assert firsts[0].placement == "placed"
    kind = "reissues" if origin == "reissue" else "renewals"
    assert len(_creates(sandbox, kind)) == 1
    assert (
        db.session.scalar(select(func.count()).select_from(Order).where(Order.parent_id == old.id))
        == 1
    )


@pytest.mark.parametrize(
    ("organization", "cn", "client_id", "org"),
    [
        ("1:CertDesk Labs", "www.example.com", 1, "CertDesk Labs"),
        ("2:Example Subsidiary Ltd", "www.subsidiary.example", 2, None),
    ],
)
def test_a_reissue_and_a_renewal_name_the_originals_client_and_organization(
    env, user, sandbox, organization, cn, client_id, org
):
    """ECS takes client 1, and that client's own name, for a reissue or renewal that names
    neither: each names the original's client, and (for client 1, the only one that may name
    one) its organization, so that the new certificate stays with them."""

    def placed():
        form = sandbox_order_form(env, _csr(user, cn).id, organization=organization)
        row = placing.place(user["operator"], form)
        assert row.status == "ACTIVE"
        return row

    sandbox.advance_clock(-40)  # one issued 40 days ago, old enough to renew
    aged = placed()
    sandbox.advance_clock(40)
    old = placed()
    sandbox.clear_requests()
    new = successors.reissue(user["operator"], old, successor_form(old, csr_id=_csr(user, cn).id))
    renewed = successors.renew(
        user["operator"], aged, successor_form(aged, "renew", csr_id=_csr(user, cn).id)
    )
    for kind in ("reissues", "renewals"):
        (sent,) = _creates(sandbox, kind)
        assert sent["body"]["clientId"] == client_id and sent["body"].get("org") == org, kind
    for row in (new, renewed):
        detail = requests.get(
            f"{sandbox.base_url}certificates/{row.ca_order_id}",
            auth=(sandbox.api_user, sandbox.api_key),
            timeout=10,
        ).json()
        assert detail["org"] == organization.split(":")[1] == row.organization


@pytest.mark.parametrize("origin", ["reissue", "renew"])
def test_a_reissue_and_a_renewal_keep_the_originals_ou(env, user, sandbox, origin):
    """An order placed in the Entrust portal with OU=IT, imported: ECS takes the new CSR's OU (a
    CSR made in CertDesk has none) for a reissue or renewal that names none, so each resends the
    original's, and the new certificate keeps it."""
    sandbox.advance_clock(-40)  # old enough to renew
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        placed = ecs.new_certificate(
            types.NewCertificateRequest(
                cert_type="STANDARD_SSL",
                csr=make_csr("www.example.com", ["www.example.com"]),
                cert_lifetime="P1Y",
                ou=["IT"],
                tracking=types.Tracking(custom_fields={"text2": "billing"}),
            )
        )
    sandbox.advance_clock(40)
    jobs.result_of(importing.start_import(user["operator"], env.id, []))
    old = db.session.execute(
        select(Order).where(Order.ca_order_id == str(placed.tracking_id))
    ).scalar_one()
    assert "OU=IT" in _certs(old.id)[0].subject
    csr = _csr(user)
    assert "OU=" not in pki.parse_csr(csr.pem).subject
    sandbox.clear_requests()
    new = getattr(successors, origin)(
        user["operator"], old, successor_form(old, origin, csr_id=csr.id)
    )
    [sent] = _creates(sandbox, "reissues" if origin == "reissue" else "renewals")
    assert sent["body"]["ou"] == ["IT"]
    assert sandbox.order(new.ca_order_id)["ou"] == ["IT"]
    [cert] = _certs(new.id)
    assert "OU=IT" in cert.subject


def test_an_original_that_could_not_be_read_back_is_left_to_the_status_check(env, user, sandbox):
    """The reissue is placed and linked, but Entrust does not answer the read of the original:
    after the call's deadline, the scheduled status check reads the original, which Entrust holds
    as REISSUED, although CertDesk does not follow an ACTIVE order."""
    from webapp.orders import polling

    old = _order(user, env)
    sandbox.faults([{"kind": "http_503", "method": "GET", "path": f"{BASE}/{old.ca_order_id}"}])
    new = successors.reissue(user["operator"], old, successor_form(old, csr_id=_csr(user).id))
    sandbox.clear_faults()
    assert new.placement == "placed" and new.status == "ACTIVE"
    db.session.refresh(old)
    assert old.status == "ACTIVE" and sandbox.status(old.ca_order_id) == "REISSUED"
    assert "could not be read" in old.message
    deadline = utcnow() + registry.answer_deadline("entrust")
    assert polling.due(now=deadline) == []  # not while the call may be under way
    later = deadline + polling.poll_interval()
    assert polling.poll("scheduler", now=later).counts["changed"] == 1
    db.session.refresh(old)
    assert old.status == "REISSUED" and old.next_check_at is None
    # Entrust revoked the original certificate with the reissue: the repository says so too.
    assert [c.revoked_at is not None for c in _certs(old.id)] == [True]


class Died(BaseException):
    """The process dies here (not an error CertDesk could catch and record)."""


def _die(*args, **kwargs):
    raise Died("the process died here")


def _lines(order_id) -> list[tuple]:
    stmt = select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
    return [
        (e.kind, e.old_status, e.new_status, e.related_order_id, e.actor_name)
        for e in db.session.execute(stmt).scalars()
    ]


def _audited(action: str, object_id: int) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.object_id == str(object_id)
    )
    return list(db.session.execute(stmt.order_by(AuditEvent.seq)).scalars())


@pytest.mark.parametrize("origin", ["reissue", "renew"])
@pytest.mark.parametrize("dies", [None, "placing", "reconciling"])
def test_a_reissue_or_renewal_interrupted_after_entrust_took_it_is_recorded_in_full_once(
    env, user, sandbox, monkeypatch, origin, dies, ecs_calls_holding_writes
):
    """CertDesk stops after Entrust took the reissue or renewal, before it has recorded the link
    (while the user's request records Entrust's answer, or while the reconciler records what it
    found): the reconciler that settles the new order records the link in both histories and the
    audit trail as an uninterrupted one does, once, as the reconciler's doing. Both orders are read
    back before anything is written."""
    from webapp.orders import lineage

    old = _aged_order(user, env, sandbox)
    form = successor_form(old, origin=origin, csr_source="certdesk", csr_id=_csr(user).id)
    place = successors.reissue if origin == "reissue" else successors.renew
    if dies is None:
        new = place(user["operator"], old, form)
        by, words = "operator", "placed"
    else:
        # Killed while Entrust's answer is recorded (with the link), or (then killed again, while
        # the reconciler records what it found) as soon as the answer is in.
        where = (lineage, "successor_linked") if dies == "placing" else (placing, "_placed")
        monkeypatch.setattr(*where, _die)
        with pytest.raises(Died):
            place(user["operator"], old, form)
        monkeypatch.undo()
        db.session.rollback()
        new = db.session.execute(select(Order).where(Order.parent_id == old.id)).scalar_one()
        assert _kinds(old.id) == ["requested", "placed"]  # the original's own placing
        by, words = "scheduler", "reconciled"
        due = new.attempted_at + registry.answer_deadline("entrust")
        if dies == "reconciling":
            monkeypatch.setattr(lineage, "successor_linked", _die)
            with pytest.raises(Died):
                settling.reconcile_due("scheduler", now=due)
            monkeypatch.undo()
            db.session.rollback()
        settling.reconcile_due("scheduler", now=due)
        settling.reconcile_due("scheduler", now=due + registry.answer_deadline("entrust"))
        db.session.expire_all()
        new, old = db.session.get(Order, new.id), db.session.get(Order, old.id)
    reissue = origin == "reissue"
    status = "REISSUED" if reissue else "RENEWED"
    into, of = ("reissued_into", "reissue_of") if reissue else ("renewed_into", "renewal_of")
    assert _lines(old.id)[2:] == [(into, "ACTIVE", status, new.id, by)]
    assert [line[0] for line in _lines(new.id)] == ["requested", words, of]
    assert _lines(new.id)[2] == (of, "", "", old.id, by)
    [replaced] = _audited("order.replaced", old.id)
    assert replaced.actor_name == by and replaced.outcome == "success"
    assert json.loads(replaced.detail) == {
        "by": new.id,
        "how": origin,
        "ca_order_id": old.ca_order_id,
        "new_ca_order_id": new.ca_order_id,
        "status": status,
        "certificate_revoked": reissue,
    }
    assert len(_audited("order.place" if dies is None else "order.reconcile", new.id)) == 1
    assert new.placement == "placed" and new.status == "ACTIVE" and old.status == status
    assert [c.revoked_at is not None for c in _certs(old.id)] == [reissue]
    assert len(_audited("certificate.revoked", _certs(old.id)[0].id)) == int(reissue)
    assert len(_certs(new.id)) == 1
    assert len(_creates(sandbox, "reissues" if reissue else "renewals")) == 1
    assert ecs_calls_holding_writes == []


@pytest.mark.parametrize(("status", "revoked"), [("REISSUED", True), ("RENEWED", False)])
def test_a_reissue_done_in_the_entrust_portal_revokes_the_certificate_here_too(
    env, user, sandbox, status, revoked
):
    """A status check (or an import) reads an order reissued outside CertDesk: its certificate
    is marked revoked in SSL › Certificates, as Entrust revoked it; a renewed one stays valid."""
    from webapp.orders import polling

    old = _order(user, env)
    sandbox.set_certificate_status(int(old.ca_order_id), status)
    polling.check([old], "operator")
    db.session.refresh(old)
    assert old.status == status
    assert [c.revoked_at is not None for c in _certs(old.id)] == [revoked]
    events = db.session.execute(
        select(AuditEvent.action).where(AuditEvent.action == "certificate.revoked")
    ).all()
    assert len(events) == int(revoked)


def test_a_reissue_needs_a_new_key(env, user, sandbox):
    old = _order(user, env)
    same_key_csr = db.session.get(Order, old.id).csr_id
    sandbox.clear_requests()
    with pytest.raises(OrderInputError) as err:
        successors.reissue(user["operator"], old, successor_form(old, csr_id=same_key_csr))
    assert err.value.field == "csr_source" and "new key pair" in str(err.value)
    with pytest.raises(OrderInputError):
        successors.reissue(user["operator"], old, successor_form(old, csr_source="keep"))
    # Nor the key another certificate holds: two certificates would share a key pair.
    other = _order(user, env, "shop.example.com")
    other_key_csr = db.session.get(Order, other.id).csr_id
    with pytest.raises(OrderInputError) as err:
        successors.reissue(user["operator"], old, successor_form(old, csr_id=other_key_csr))
    assert err.value.field == "csr_source" and "another certificate (shop.example.com" in str(
        err.value
    )
    assert _creates(sandbox, "reissues") == []
    assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 2


def test_a_renewal_inside_30_days_is_refused_before_any_call(env, user, sandbox):
    old = _order(user, env)
    page = successors.page(old, "renew")
    assert "at least 30 days old" in page.problem and "can be renewed from" in page.problem
    sandbox.clear_requests()
    with pytest.raises(OrderInputError) as err:
        successors.renew(user["operator"], old, successor_form(old, origin="renew"))
    assert "at least 30 days old" in str(err.value)
    assert _creates(sandbox, "renewals") == []  # Entrust was not asked
    assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 1


def _aged_order(user, env, sandbox, days=40) -> Order:
    """An order Entrust issued ``days`` ago (the sandbox's clock moved back, then forward)."""
    sandbox.advance_clock(-days)
    row = _order(user, env)
    sandbox.advance_clock(days)
    return row


@pytest.mark.parametrize("new_key", [False, True])
def test_renew_after_30_days(env, user, sandbox, new_key):
    old = _aged_order(user, env, sandbox)
    old_cert = _certs(old.id)[0]
    assert successors.page(old, "renew").problem == ""
    expires = successors.page(old, "renew").dates[1]  # the longest the product allows
    kw = {"origin": "renew", "expires_on": expires}
    if new_key:
        kw.update(csr_source="certdesk", csr_id=_csr(user).id)
    sandbox.clear_requests()
    new = successors.renew(user["operator"], old, successor_form(old, **kw))
    assert new.origin == "renew" and new.parent_id == old.id and new.status == "ACTIVE"
    [post] = _creates(sandbox, "renewals")
    assert post["body"]["certExpiryDate"] == expires
    assert post["body"]["tracking"]["trackingInfo"] == new.request_id
    assert ("csr" in post["body"]) is new_key
    [cert] = _certs(new.id)
    assert cert.not_after.date().isoformat() == expires
    assert (cert.public_key_id == old_cert.public_key_id) is not new_key
    assert cert.private_key_id is not None  # the key CertDesk holds, old or new
    db.session.refresh(old)
    db.session.refresh(old_cert)
    assert old.status == "RENEWED" and old_cert.revoked_at is None  # a renewal revokes nothing
    assert "renewed_into" in _kinds(old.id) and "renewal_of" in _kinds(new.id)


def test_a_renewal_beyond_the_product_limit_is_refused(env, user, sandbox):
    old = _aged_order(user, env, sandbox)
    with pytest.raises(OrderInputError) as err:
        successors.renew(
            user["operator"], old, successor_form(old, origin="renew", expires_on="2999-01-01")
        )
    assert err.value.field == "expires_on" and "at most 398 days" in str(err.value)


NOT_ORDERED_HERE = {
    "CODE_SIGNING": {"end_user_key_storage_agreement": True},
    "SMIME_ENT": {"cert_email": "ann@example.com"},
    "CDS_INDIVIDUAL": {"cert_email": "ann@example.com"},
}


@pytest.mark.parametrize("product", sorted(NOT_ORDERED_HERE))
def test_a_product_certdesk_does_not_order_is_revoked_here_but_not_reissued_or_renewed(
    env, user, sandbox, product
):
    """A code signing, S/MIME or document signing certificate bought in the Entrust portal and
    imported: Reissue and Renew say at once, on their pages and before any call, that it is done
    in the portal (their forms ask for DNS names and SSL choices it does not take); Revoke works."""
    sandbox.advance_clock(-40)  # old enough to renew: its age is not what stops it
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        placed = ecs.new_certificate(
            types.NewCertificateRequest(
                cert_type=product,
                csr=make_csr("Ann Admin", ["ann.example.com"]),
                cert_lifetime="P1Y",
                tracking=types.Tracking(custom_fields={"text2": "billing"}),
                **NOT_ORDERED_HERE[product],
            )
        )
    sandbox.advance_clock(40)
    jobs.result_of(importing.start_import(user["operator"], env.id, []))
    row = db.session.execute(
        select(Order).where(Order.ca_order_id == str(placed.tracking_id))
    ).scalar_one()
    assert row.product == product and row.status == "ACTIVE"
    sandbox.clear_requests()
    for origin in ("reissue", "renew"):
        problem = successors.page(row, origin).problem
        assert f"reissue or renew this {product} certificate in the Entrust portal" in problem
        form = successor_form(row, origin, csr_id=_csr(user).id, csr_source="certdesk")
        with pytest.raises(OrderInputError) as err:
            getattr(successors, origin)(user["operator"], row, form)
        assert str(err.value) == problem and err.value.field == "form"
    assert _creates(sandbox, "reissues") == _creates(sandbox, "renewals") == []
    assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 1
    result = lifecycle.run(user["admin"], Action.REVOKE, [row.id], lifecycle.Choices("unspecified"))
    assert result.outcomes[0].result == "done", result.outcomes[0].message
    assert sandbox.status(row.ca_order_id) == "REVOKED"
    [cert] = _certs(row.id)
    db.session.refresh(cert)
    assert cert.revoked_at is not None


CREATE_FAULTS = [
    ("commit_then_500", True),
    ("commit_then_timeout", True),
    ("reset", False),
    ("http_502", False),
    ("timeout", False),
]


@pytest.mark.parametrize(("fault", "carried_out"), CREATE_FAULTS)
@pytest.mark.parametrize("origin", ["reissue", "renew"])
def test_faults_on_the_create_call_never_give_a_duplicate(
    env, user, sandbox, origin, fault, carried_out
):
    settings.put(clients.READ_TIMEOUT, 1)
    settings.put(clients.CONNECT_TIMEOUT, 1)
    db.session.commit()
    old = _aged_order(user, env, sandbox)
    kind = "reissues" if origin == "reissue" else "renewals"
    form = successor_form(old, origin=origin, csr_source="certdesk", csr_id=_csr(user).id)
    sandbox.clear_requests()
    sandbox.faults([{"kind": fault, "method": "POST", "path": f"{BASE}/*", "ms": 1500}])
    try:
        new = (successors.reissue if origin == "reissue" else successors.renew)(
            user["operator"], old, form
        )
    except placing.OrderRefused:
        new = None
    sandbox.clear_faults()
    assert len(_creates(sandbox, kind)) == 1  # sent once, never again
    if new is None:  # an answer that says nothing was done (a reset before the request)
        assert not carried_out
        assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 1
        return
    # Settle whatever is still unknown once the call can no longer take effect.
    settling.reconcile_due("scheduler", now=new.attempted_at + registry.answer_deadline("entrust"))
    db.session.expire_all()
    new = db.session.get(Order, new.id)
    held = sandbox.held()
    assert held.get(new.request_id, 0) == (1 if carried_out else 0)  # never two
    assert len(_creates(sandbox, kind)) == 1  # the reconciler only searched
    old = db.session.get(Order, old.id)
    if carried_out:
        assert new.placement == "placed" and new.status == "ACTIVE"
        assert len(_certs(new.id)) == 1
        assert old.status == ("REISSUED" if origin == "reissue" else "RENEWED")
        into = "reissued_into" if origin == "reissue" else "renewed_into"
        assert into in _kinds(old.id)
    else:
        assert new.placement == "not_placed" and _certs(new.id) == []
        assert old.status == "ACTIVE"


def test_a_reissue_not_placed_is_placed_again_as_a_reissue(env, user, sandbox):
    settings.put(clients.READ_TIMEOUT, 1)
    settings.put(clients.CONNECT_TIMEOUT, 1)
    db.session.commit()
    old = _order(user, env)
    sandbox.faults([{"kind": "http_502", "method": "POST", "path": f"{BASE}/*", "count": 1}])
    lost = successors.reissue(user["operator"], old, successor_form(old, csr_id=_csr(user).id))
    assert lost.placement == "unknown"
    # Meanwhile no second reissue of the same order can be sent.
    sandbox.clear_requests()
    with pytest.raises(OrderInputError) as err:
        successors.reissue(user["operator"], old, successor_form(old, csr_id=_csr(user).id))
    assert "still checking" in str(err.value)
    assert _creates(sandbox, "reissues") == []
    settling.reconcile_due("scheduler", now=lost.attempted_at + registry.answer_deadline("entrust"))
    db.session.expire_all()
    lost = db.session.get(Order, lost.id)
    assert lost.placement == "not_placed"
    again = placing.place_again(user["operator"], lost)
    assert again.id != lost.id and again.origin == "reissue" and again.parent_id == old.id
    assert again.status == "ACTIVE"
    [post] = _creates(sandbox, "reissues")
    assert post["body"]["tracking"]["trackingInfo"] == again.request_id != lost.request_id
    assert db.session.get(Order, old.id).status == "REISSUED"
    assert json.loads(again.request)["csr_pem"] == json.loads(lost.request)["csr_pem"]


def test_entrusts_pickup_link_is_neither_kept_nor_shown(env, user, sandbox, auditor_client):
    """Entrust's pickupUrl hands the certificate (and, for S/MIME made without a CSR, its key) to
    whoever holds the link. CertDesk fetches certificates through the API: it keeps the link
    nowhere and shows it to nobody, auditors included; the other fields read back are kept."""
    old = _order(user, env)
    new = successors.reissue(user["operator"], old, successor_form(old, csr_id=_csr(user).id))
    api = EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key)
    assert "certpickup" in (api.get_certificate(int(new.ca_order_id)).pickup_url or "")
    db.session.refresh(new)
    assert "creatorName" in json.loads(new.details)  # the reissue was read back in full
    for row in (new, old):
        assert "certpickup" not in row.details and "pickupUrl" not in row.details
        page = auditor_client.get(f"/entrust/{row.id}").get_data(as_text=True)
        assert "<dt>trackingId</dt>" in page
        assert "certpickup" not in page and "pickupUrl" not in page


def test_a_reissue_placed_here_whose_new_order_was_deleted_is_not_said_to_be_done_elsewhere(
    env, user, sandbox, admin_client
):
    """Reissued from CertDesk, the new order then deleted from CertDesk (local only): the
    original's page does not say it was reissued outside CertDesk (its history says where)."""
    import html

    old = _order(user, env)
    new = successors.reissue(
        user["operator"], old, successor_form(old, csr_id=_csr(user, "www.example.com").id)
    )
    assert new.placement == "placed"
    assert (
        lifecycle.delete_selected(
            user["admin"], [new.id], confirmed=True, unsettled_confirmed=False
        )[0]
        == 1
    )
    page = html.unescape(admin_client.get(f"/entrust/{old.id}").get_data(as_text=True))
    assert "REISSUED" in page
    assert 'id="replaced-elsewhere"' not in page
    assert "outside CertDesk" not in page
