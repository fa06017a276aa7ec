"""Order Certificate against the real sandbox: an order of every SSL product the account can buy,
CertDesk's own checks (nothing stored, nothing sent), Entrust's refusals next to the fields,
Validate, lost answers settled by the reconciler, and a crash between the call and the commit."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from tests.conftest import link_sandbox
from tests.helpers import together
from tests.integration.helpers import make_csr
from webapp.audit.models import AuditEvent
from webapp.cas import registry
from webapp.catalog import service as catalog
from webapp.certificates.models import Certificate
from webapp.csrs import service as csrs
from webapp.csrs.models import Csr
from webapp.extensions import db
from webapp.keys.models import PrivateKey
from webapp.orders import checks, placing, polling, settling
from webapp.orders.models import Order, OrderEvent
from webapp.pki import PkiError
from webapp.settings import service as settings

pytestmark = pytest.mark.usefixtures("fast_clients")


@pytest.fixture
def env(app, user, sandbox):
    sandbox.seed(certificates=0, seed=3, api_mandatory=("text2",))  # "Application"
    cred = link_sandbox(user, sandbox)
    sandbox.clear_requests()
    return cred


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _form(cred, csr_row=None, **kw) -> checks.OrderForm:
    kw.setdefault("organization", "1:CertDesk Demo Corp")
    kw.setdefault("product", "STANDARD_SSL")
    kw.setdefault("requester_name", "Ann Admin")
    kw.setdefault("requester_email", "ann@example.com")
    kw.setdefault("custom", {"text2": "billing"})  # "Application" is required by the account
    if csr_row is not None:
        kw.setdefault("csr_source", "certdesk")
        kw.setdefault("csr_id", csr_row.id)
    return checks.OrderForm(credential_id=cred.id, **kw)


def _csr(user, cn, sans=""):
    return csrs.create_csr(user["operator"], "p256", {"CN": cn}, sans)


def _posts(sb) -> list[dict]:
    return [
        r
        for r in sb.requests()
        if r["method"] == "POST" and r["path"].rstrip("/") == "/enterprise/v2/certificates"
    ]


@pytest.mark.parametrize(
    ("product", "cn", "sans"),
    [
        ("STANDARD_SSL", "www.example.com", ""),
        ("ADVANTAGE_SSL", "shop.example.com", "shop.example.com example.com"),
        ("UC_SSL", "mail.example.com", "mail.example.com autodiscover.example.org"),
        ("EV_SSL", "secure.example.com", ""),
        ("WILDCARD_SSL", "*.example.org", "*.example.org example.org"),
        ("PRIVATE_SSL", "intranet.example.net", ""),
    ],
)
def test_an_order_of_each_product_is_issued_into_the_repository(
    env, user, sandbox, product, cn, sans
):
    csr_row = _csr(user, cn, sans)
    others = "ops@example.com, sec@example.com"
    form = _form(env, csr_row, product=product, friendly_name=cn, additional_emails=others)
    row = placing.place(user["operator"], form)
    assert row.placement == "placed" and row.status == "ACTIVE" and row.phase == "issued"
    assert row.ca_order_id and row.product == product and row.request_id.startswith("certdesk:")
    cert = db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()
    assert cert.csr_id == csr_row.id and cert.private_key_id == csr_row.private_key_id
    assert cert.source == "entrust" and cert.chain_pem  # the issuer came with it
    assert set(cert.san_list) >= set(row.san_list) and row.san_list[0] == cn
    # Entrust holds it under CertDesk's request id, exactly once.
    posts = _posts(sandbox)
    assert len(posts) == 1 and posts[0]["body"]["tracking"]["trackingInfo"] == row.request_id
    assert posts[0]["body"]["certType"] == product
    # Who else Entrust notifies goes with it.
    tracking = posts[0]["body"]["tracking"]
    assert tracking["additionalEmails"] == ["ops@example.com", "sec@example.com"]
    assert (tracking["requesterName"], tracking["requesterEmail"]) == (
        "Ann Admin",
        "ann@example.com",
    )
    kinds = [e.kind for e in db.session.execute(select(OrderEvent)).scalars()]
    assert kinds == ["requested", "placed"]
    actions = set(db.session.execute(select(AuditEvent.action)).scalars())
    assert {"order.request", "order.place", "certificate.add"} <= actions


def _flex_used(sandbox) -> int:
    inventories = sandbox._api_get("/inventories")["inventories"]
    return next(i["usedCount"] for i in inventories if i["productType"] == "FLEX")


@pytest.mark.parametrize(
    ("product", "cn"), [("QWAC_SSL", "q.example.com"), ("PSD2_SSL", "p.example.com")]
)
def test_a_pooled_product_the_inventory_has_no_line_of_is_ordered_from_flex(
    env, user, sandbox, product, cn
):
    """The pooled FLEX inventory grants every SSL product but PD_SSL, also one the account's
    inventory does not list: the form offers it and Entrust issues it from the pool. PD_SSL,
    which FLEX does not grant, is offered only with inventory of its own (none here)."""
    offered = [p for p, _ in checks.choices(env.id, with_custom=False).products]
    assert product in offered and "PD_SSL" not in offered
    used = _flex_used(sandbox)
    row = placing.place(user["operator"], _form(env, _csr(user, cn), product=product))
    assert row.status == "ACTIVE" and row.product == product
    assert _posts(sandbox)[0]["body"]["certType"] == product
    assert _flex_used(sandbox) == used + 1
    with pytest.raises(checks.OrderInputError) as err:
        checks.prepare(user["operator"], _form(env, _csr(user, cn), product="PD_SSL"))
    assert err.value.field == "product" and "no PD_SSL inventory left" in str(err.value)


def test_a_pasted_csr_and_its_encrypted_key_are_kept_and_linked(env, user):
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"key password 1"),
    ).decode()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpn.example.com")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    form = _form(
        env, csr_source="paste", csr_text=csr, key_text=key_pem, key_password="key password 1"
    )
    row = placing.place(user["operator"], form)
    assert row.phase == "issued" and row.csr_id is not None
    csr_row = db.session.get(Csr, row.csr_id)
    assert csr_row.private_key_id is not None and csr_row.source == "imported"
    sealed = db.session.get(PrivateKey, csr_row.private_key_id).sealed_pem
    assert "PRIVATE KEY" not in sealed  # stored sealed, never as PEM
    cert = db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()
    assert cert.private_key_id == csr_row.private_key_id and cert.csr_id == csr_row.id
    # The same CSR pasted again later is not stored twice.
    row2 = placing.place(user["operator"], form)
    assert row2.csr_id == row.csr_id and _count(Csr) == 1 and _count(PrivateKey) == 1


def test_a_new_key_and_csr_made_with_the_order(env, user, sandbox):
    form = _form(env, csr_source="new", new_key_type="p256", sans="shop.example.com")
    row = placing.place(user["operator"], form)
    assert row.phase == "issued" and row.san_list == ["shop.example.com"]
    csr_row = db.session.get(Csr, row.csr_id)
    key_row = db.session.get(PrivateKey, csr_row.private_key_id)
    assert csr_row.common_name == "shop.example.com" and key_row.origin == "generated"
    assert key_row.label == "ECDSA P-256" and "PRIVATE KEY" not in key_row.sealed_pem
    cert = db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()
    assert cert.private_key_id == key_row.id and cert.csr_id == csr_row.id
    [post] = _posts(sandbox)
    assert post["body"]["csr"].strip() == csr_row.pem.strip()
    # Without names there is nothing to make the CSR for; a key type not offered is refused.
    for change, field in (({"sans": ""}, "sans"), ({"new_key_type": "dsa1024"}, "new_key_type")):
        with pytest.raises(checks.OrderInputError) as refused:
            placing.place(user["operator"], dataclasses.replace(form, **change))
        assert refused.value.field == field
    assert _count(Csr) == 1 and _count(PrivateKey) == 1


def _uncovered(cred, csr_row):
    return _form(cred, csr_row, sans="www.example.com www.not-ours.example")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c, r: _form(c, r, organization="1:Future Ventures"), "organization"),
        (lambda c, r: _form(c, r, product="PD_SSL"), "product"),  # no inventory left
        (lambda c, r: _form(c, r, product="NO_SUCH"), "product"),
        (_uncovered, "sans"),
        (lambda c, r: _form(c, r, sans="10.0.0.1"), "sans"),
        (lambda c, r: _form(c, r, domain="example.org"), "sans"),  # www.example.com is not under it
        (
            lambda c, r: _form(c, r, expires_on=(date.today() + timedelta(days=399)).isoformat()),
            "expires_on",
        ),
        (lambda c, r: _form(c, r, expires_on="tomorrow"), "expires_on"),
        (lambda c, r: _form(c, r, requester_email="not an address"), "requester_email"),
        (lambda c, r: _form(c, r, additional_emails="ok@example.com, bad@"), "additional_emails"),
        (lambda c, r: _form(c, r, custom={}), "custom_text2"),
        (lambda c, r: _form(c, r, custom={"text2": "x", "dropdown1": "moon"}), "custom_dropdown1"),
        (lambda c, r: _form(c, None, csr_source="certdesk", csr_id=None), "csr_id"),
        (lambda c, r: _form(c, None, csr_source="paste", csr_text="not a csr"), "csr"),
        (lambda c, r: _form(c, r, eku="ANY"), "eku"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent_or_stored(env, user, sandbox, change, field):
    csr_row = _csr(user, "www.example.com")
    before = _count(AuditEvent)
    with pytest.raises((checks.OrderInputError, PkiError)) as refused:
        placing.place(user["operator"], change(env, csr_row))
    assert refused.value.field == field, str(refused.value)
    assert _count(Order) == 0 and _count(Certificate) == 0
    assert _count(AuditEvent) == before
    assert _posts(sandbox) == []


def test_a_key_that_does_not_belong_to_the_csr_is_refused(env, user):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    form = _form(
        env, csr_source="paste", csr_text=make_csr("www.example.com"), key_text=other.decode()
    )
    with pytest.raises(checks.OrderInputError) as refused:
        placing.place(user["operator"], form)
    assert refused.value.field == "key" and _count(PrivateKey) == 0


def test_entrust_refusals_appear_next_to_the_fields_and_leave_nothing_behind(env, user, sandbox):
    key = ec.generate_private_key(ec.SECP256R1())
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    # The domain was declined at Entrust since the last sync: only Entrust knows.
    sandbox.set_domain_status("example.com", "DECLINED", client_id=1)
    form = _form(env, csr_source="paste", csr_text=csr, key_text=key_pem)
    with pytest.raises(placing.OrderRefused) as refused:
        placing.place(user["operator"], form)
    assert "www.example.com" in refused.value.errors["sans"]
    assert len(_posts(sandbox)) == 1  # it was asked, once
    # Nothing was ordered: no order row, and the key stored for this attempt is gone again.
    assert _count(Order) == 0 and _count(OrderEvent) == 0 and _count(PrivateKey) == 0
    failure = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "order.place")
    ).scalar_one()
    assert failure.outcome == "failure" and "www.example.com" in failure.detail


def test_sha1_is_refused_before_asking_entrust_except_for_private_ssl(env, user, sandbox):
    # Entrust signs every product but Private SSL with SHA-2 whatever is asked: CertDesk says so
    # instead of ordering something other than what the form shows.
    csr_row = _csr(user, "www.example.com")
    with pytest.raises(checks.OrderInputError) as refused:
        placing.place(user["operator"], _form(env, csr_row, signature_algorithm="SHA-1"))
    assert refused.value.field == "signature_algorithm"
    assert "PRIVATE_SSL" in str(refused.value) and "SHA-2" in str(refused.value)
    assert _posts(sandbox) == [] and _count(Order) == 0
    private = _form(env, csr_row, product="PRIVATE_SSL", signature_algorithm="SHA-1")
    assert placing.place(user["operator"], private).status == "ACTIVE"
    assert _posts(sandbox)[0]["body"]["signingAlg"] == "SHA-1"


def test_a_standard_ssl_order_for_two_hosts_is_refused_next_to_the_sans(env, user, sandbox):
    # Entrust's Standard SSL covers one host and its www. twin; a multi-domain order needs UC.
    csr_row = _csr(user, "www.example.com", "www.example.com mail.example.com")
    with pytest.raises(placing.OrderRefused) as refused:
        placing.place(user["operator"], _form(env, csr_row))
    assert "STANDARD_SSL" in refused.value.errors["sans"]
    assert "mail.example.com" in refused.value.errors["sans"]
    assert len(_posts(sandbox)) == 1 and _count(Order) == 0
    twin = _csr(user, "example.com", "example.com www.example.com")
    assert placing.place(user["operator"], _form(env, twin)).status == "ACTIVE"


def test_validate_asks_entrust_and_places_nothing(env, user, sandbox):
    csr_row = _csr(user, "api.example.com")
    result = placing.validate(user["operator"], _form(env, csr_row))
    assert result.ok and "Nothing was ordered" in result.message
    posts = _posts(sandbox)
    assert len(posts) == 1 and posts[0]["body"]["validateOnly"] is True
    two_hosts = _csr(user, "www.example.com", "www.example.com mail.example.com")
    bad = placing.validate(user["operator"], _form(env, two_hosts))  # Entrust refuses it
    assert not bad.ok and "mail.example.com" in bad.errors["sans"]
    assert _count(Order) == 0
    assert (
        db.session.execute(
            select(func.count()).where(AuditEvent.action == "order.validate")
        ).scalar_one()
        == 2
    )


def test_a_queued_order_is_pending_until_approved_then_the_poller_brings_its_certificate(
    env, user, sandbox
):
    csr_row = _csr(user, "queue.example.com")
    row = placing.place(user["operator"], _form(env, csr_row, queue_for_approval=True))
    assert row.placement == "placed" and row.status == "PENDING" and row.phase == "pending"
    assert row.next_check_at is not None and _count(Certificate) == 0
    sandbox.set_certificate_status(int(row.ca_order_id), "ACTIVE")  # an Entrust administrator
    sandbox.clear_requests()
    result = polling.poll(now=row.next_check_at)
    assert result.counts["changed"] == 1 and result.counts["certificates"] == 1
    db.session.refresh(row)
    assert row.status == "ACTIVE" and row.phase == "issued" and row.next_check_at is None
    cert = db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()
    assert cert.csr_id == csr_row.id and cert.private_key_id == csr_row.private_key_id
    change = db.session.execute(select(OrderEvent).where(OrderEvent.kind == "status")).scalar_one()
    assert (change.old_status, change.new_status) == ("PENDING", "ACTIVE")
    assert change.notify_user_id == user["operator"].id  # shown to whoever placed it
    calls = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in sandbox.requests()]
    assert calls == [("GET", "certificates"), ("GET", row.ca_order_id)]


def _lost(sandbox, kind, **extra):
    sandbox.faults(
        [{"kind": kind, "method": "POST", "path": "/enterprise/v2/certificates", **extra}]
    )


@pytest.fixture
def short_timeouts(app):
    from webapp.credentials import clients

    settings.put(clients.READ_TIMEOUT, 1)
    settings.put(clients.CONNECT_TIMEOUT, 1)
    db.session.commit()


@pytest.mark.parametrize("kind", ["commit_then_500", "commit_then_timeout"])
def test_a_lost_answer_of_a_placed_order_is_found_at_once(env, user, sandbox, short_timeouts, kind):
    _lost(sandbox, kind, ms=1500)
    csr_row = _csr(user, "lost.example.com")
    row = placing.place(user["operator"], _form(env, csr_row))
    sandbox.clear_faults()
    assert row.placement == "placed" and row.phase == "issued", row.message
    kinds = [
        e.kind for e in db.session.execute(select(OrderEvent).order_by(OrderEvent.id)).scalars()
    ]
    assert kinds == ["requested", "unknown", "reconciled"]
    assert _count(Certificate) == 1 and len(_posts(sandbox)) == 1


@pytest.mark.parametrize("kind", ["reset", "http_502", "timeout"])
def test_an_order_that_never_arrived_is_not_placed_after_the_deadline_and_can_be_placed_again(
    env, user, sandbox, short_timeouts, kind
):
    _lost(sandbox, kind, ms=1500)
    csr_row = _csr(user, "again.example.com")
    row = placing.place(user["operator"], _form(env, csr_row))
    sandbox.clear_faults()
    assert row.placement == "unknown" and row.display_status == "UNKNOWN_OUTCOME"
    deadline = registry.answer_deadline("entrust")
    # Before the deadline the reconciler does not conclude anything.
    assert settling.reconcile_due("scheduler", now=row.attempted_at + deadline / 2) == {
        "found": 0,
        "not_placed": 0,
        "unsettled": 0,
    }
    counts = settling.reconcile_due("scheduler", now=row.attempted_at + deadline)
    assert counts == {"found": 0, "not_placed": 1, "unsettled": 0}
    db.session.refresh(row)
    assert row.placement == "not_placed" and row.display_status == "NOT_PLACED"
    again = placing.place_again(user["operator"], row)
    assert again.id != row.id and again.placement == "placed" and again.phase == "issued"
    assert again.request_id != row.request_id
    # Placed with the same custom fields, still named by the account's labels.
    assert placing.custom_labels(again) == placing.custom_labels(row) == {"text2": "Application"}
    posts = _posts(sandbox)
    assert [p["body"]["tracking"]["customFields"] for p in posts] == [{"text2": "billing"}] * 2
    assert [p["body"]["tracking"]["trackingInfo"] for p in posts] == [
        row.request_id,
        again.request_id,
    ]
    last = (
        db.session.execute(
            select(OrderEvent).where(OrderEvent.order_id == row.id).order_by(OrderEvent.id.desc())
        )
        .scalars()
        .first()
    )
    assert last.kind == "placed_again" and last.related_order_id == again.id
    with pytest.raises(checks.OrderInputError):
        placing.place_again(user["operator"], again)
    # The old order stays "not placed"; a second click does not place it a third time.
    db.session.refresh(row)
    assert row.placement == "not_placed" and row.again_id == again.id
    with pytest.raises(checks.OrderInputError, match=f"already, as order {again.ca_order_id}"):
        placing.place_again(user["operator"], row)
    assert len(_posts(sandbox)) == 2 and _count(Order) == 2


def _not_placed(env, user, sandbox, cn) -> Order:
    """An order whose answer was lost and which the reconciler found nowhere."""
    _lost(sandbox, "http_502")
    row = placing.place(user["operator"], _form(env, _csr(user, cn)))
    sandbox.clear_faults()
    settling.reconcile_due("scheduler", now=row.attempted_at + registry.answer_deadline("entrust"))
    db.session.refresh(row)
    assert row.placement == "not_placed"
    return row


def test_two_clicks_at_once_place_a_not_placed_order_again_once(app, env, user, sandbox):
    """Two users (or two tabs) press "Place it again" together while Entrust is slow: one new
    order is placed, the other request is refused and sends nothing."""
    from webapp.auth.models import User

    row = _not_placed(env, user, sandbox, "twice.example.com")
    sandbox.faults([{"kind": "latency", "method": "POST", "ms": 800}])
    before = len(_posts(sandbox))

    def click():
        actor = db.session.get(User, user["operator"].id)
        return placing.place_again(actor, db.session.get(Order, row.id))

    outcomes = together(app, click, click)
    sandbox.clear_faults()
    placed = [o for o in outcomes if isinstance(o, Order)]
    refused = [o for o in outcomes if isinstance(o, checks.OrderInputError)]
    assert len(placed) == 1 and len(refused) == 1, outcomes
    assert len(_posts(sandbox)) == before + 1
    assert _count(Order) == 2
    db.session.refresh(row)
    assert row.again_id == placed[0].id


def test_the_same_form_sent_twice_at_once_places_one_order(app, env, user, sandbox):
    """A double click on Order Certificate while Entrust is slow: both requests carry the request
    id the form was shown with; one order is placed, the other request is refused naming it, and
    sends nothing."""
    from webapp.auth.models import User

    form = _form(env, _csr(user, "double.example.com"), request_id=placing.new_request_id())
    sandbox.faults([{"kind": "latency", "method": "POST", "ms": 800}])

    def click():
        return placing.place(db.session.get(User, user["operator"].id), form)

    outcomes = together(app, click, click)
    sandbox.clear_faults()
    placed = [o for o in outcomes if isinstance(o, Order)]
    refused = [o for o in outcomes if isinstance(o, placing.SentAlready)]
    assert len(placed) == 1 and len(refused) == 1, outcomes
    assert refused[0].order_id == placed[0].id and placed[0].request_id == form.request_id
    assert len(_posts(sandbox)) == 1 and _count(Order) == 1
    # Sent again later (Back, then Order Certificate): still the one order.
    with pytest.raises(placing.SentAlready):
        placing.place(user["operator"], form)
    assert len(_posts(sandbox)) == 1 and _count(Order) == 1


def test_a_refused_placing_again_leaves_the_order_free_to_place_again(env, user, sandbox):
    row = _not_placed(env, user, sandbox, "refused.example.com")
    sandbox.set_domain_status("example.com", "EXPIRED")  # Entrust refuses the new order
    with pytest.raises(placing.OrderRefused):
        placing.place_again(user["operator"], row)
    sandbox.set_domain_status("example.com", "APPROVED")
    db.session.refresh(row)
    assert row.again_id is None and _count(Order) == 1  # the intent went, and its claim with it
    again = placing.place_again(user["operator"], row)
    assert again.placement == "placed"


def test_place_again_links_an_order_that_turned_up_after_all(env, user, sandbox, short_timeouts):
    row = placing.place(user["operator"], _form(env, _csr(user, "late.example.com")))
    assert row.placement == "placed"
    # Pretend its answer had been lost and the search had not found it.
    row.placement = "not_placed"
    db.session.commit()
    linked = placing.place_again(user["operator"], row)
    assert linked.id == row.id and linked.placement == "placed" and len(_posts(sandbox)) == 1


def _placed_then_died(env, user, monkeypatch, cn: str) -> Order:
    """An order Entrust took, whose process died before it recorded the answer."""

    class Died(BaseException):
        """The process dies here (not an error CertDesk could catch and record)."""

    def crash(*args, **kwargs):
        raise Died("the process died here")

    monkeypatch.setattr(placing, "_placed", crash)
    with pytest.raises(Died):
        placing.place(user["operator"], _form(env, _csr(user, cn)))
    monkeypatch.undo()
    return db.session.execute(select(Order)).scalar_one()


def test_a_crash_between_the_call_and_the_commit_is_settled_by_the_reconciler(
    env, user, sandbox, monkeypatch
):
    row = _placed_then_died(env, user, monkeypatch, "crash.example.com")
    assert row.placement == "intent" and len(_posts(sandbox)) == 1
    # Still within the call's deadline: left alone (the call might be under way).
    assert settling.reconcile_due("scheduler") == {"found": 0, "not_placed": 0, "unsettled": 0}
    later = row.attempted_at + registry.answer_deadline("entrust")
    assert settling.reconcile_due("scheduler", now=later)["found"] == 1
    db.session.refresh(row)
    assert row.placement == "placed" and row.phase == "issued" and _count(Certificate) == 1
    assert len(_posts(sandbox)) == 1  # found, not ordered again


def test_an_order_found_suspended_after_a_crash_comes_with_its_certificate_marked(
    env, user, sandbox, monkeypatch
):
    """The order was placed, the process died before it recorded the answer, and an Entrust
    administrator suspended it meanwhile: the reconciler links it and stores its certificate,
    marked suspended, instead of leaving it to a later status check."""
    row = _placed_then_died(env, user, monkeypatch, "held.example.com")
    [placed] = sandbox.orders()
    sandbox.set_certificate_status(placed["trackingId"], "SUSPENDED")

    later = row.attempted_at + registry.answer_deadline("entrust")
    assert settling.reconcile_due("scheduler", now=later)["found"] == 1
    db.session.refresh(row)
    assert row.placement == "placed" and row.phase == "suspended"
    cert = db.session.execute(select(Certificate)).scalar_one()
    assert cert.order_id == row.id and cert.suspended_at is not None
    assert len(_posts(sandbox)) == 1


def test_an_internationalised_name_made_into_a_csr_is_ordered_in_its_xn_form(env, user, sandbox):
    """A CSR made in CertDesk for bücher.example names xn--bcher-kva.example in its CN as in its
    SANs, so the order Entrust gets is one it takes (it refuses a CN in Unicode)."""
    sandbox.add_domain(1, "xn--bcher-kva.example")
    assert catalog.start_sync(user["operator"], [env.id], ["domains"]).state == "succeeded"
    csr_row = _csr(user, "bücher.example")
    assert csr_row.common_name == "xn--bcher-kva.example"
    row = placing.place(user["operator"], _form(env, csr_row))
    assert row.status == "ACTIVE" and row.common_name == "xn--bcher-kva.example"
    assert row.san_list == ["xn--bcher-kva.example"]


def test_an_answer_that_comes_after_the_order_was_called_not_placed_is_linked(
    app, env, user, sandbox
):
    """A call held up (in another process's request budget, or by Entrust) past the deadline:
    meanwhile the order was searched for, not found, called not placed and placed again. When
    Entrust's 201 comes, the order is linked to it all the same, never dropped: the user is told
    Entrust holds both orders, and which they are; the trail says so."""
    import threading
    import time

    from webapp.audit.models import AuditEvent

    sandbox.faults(
        [
            {
                "kind": "latency",
                "ms": 3000,
                "count": 1,
                "method": "POST",
                "path": "/enterprise/v2/certificates",
            }
        ]
    )
    form = _form(env, _csr(user, "late.example.com"))
    placed = {}

    def place():
        with app.app_context():
            try:
                placed["id"] = placing.place(user["operator"], form).id
            finally:
                db.session.remove()

    slow = threading.Thread(target=place)
    slow.start()
    try:
        deadline = time.monotonic() + 10
        while (row := db.session.execute(select(Order)).scalars().first()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The deadline counted from the call, as another process sees it: nothing is found.
        later = row.attempted_at + registry.answer_deadline("entrust")
        row = settling.reconcile(row, "scheduler", now=later)
        assert row.placement == "not_placed"
        again = placing.place_again(user["operator"], row)
        assert again.placement == "placed"
    finally:
        slow.join(30)
    assert placed["id"] == row.id
    db.session.expire_all()
    row = db.session.get(Order, row.id)
    assert row.placement == "placed" and row.ca_order_id and row.ca_order_id != again.ca_order_id
    assert "placed it after all, as order " + row.ca_order_id in row.message
    assert f"placed again meanwhile, as order {again.display_name}: Entrust holds both" in (
        row.message
    )
    assert sorted(o["trackingId"] for o in sandbox.orders()) == sorted(
        [int(row.ca_order_id), int(again.ca_order_id)]
    )
    late = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "order.place", AuditEvent.object_id == str(row.id)
        )
    ).scalar_one()
    assert '"after_not_placed": true' in late.detail


def test_a_queued_order_declined_unseen_is_placed_again_only_once_looked_for(
    env, user, sandbox, short_timeouts, operator_client
):
    """Entrust's list leaves out declined orders. A queued order whose answer was lost, and
    which an Entrust administrator declined before CertDesk could search, is found nowhere and
    called not placed: Place again would order it a second time, back in front of the people
    who declined it. The page says so, and placing it again waits until the user says they
    looked in Entrust's portal; nothing is sent before."""
    sandbox.faults(
        [
            {
                "kind": "commit_then_timeout",
                "ms": 1500,
                "count": 1,
                "method": "POST",
                "path": "/enterprise/v2/certificates",
            },
            {
                "kind": "http_503",
                "count": 4,
                "method": "GET",
                "path": "/enterprise/v2/certificates",
            },
        ]
    )
    row = placing.place(
        user["operator"], _form(env, _csr(user, "declined.example.com"), queue_for_approval=True)
    )
    sandbox.clear_faults()
    assert row.placement == "unknown"
    [held] = [o for o in sandbox.orders("trackingId,status") if o["status"] == "PENDING"]
    sandbox.set_certificate_status(held["trackingId"], "DECLINED")  # an Entrust administrator
    settling.reconcile_due("scheduler", now=row.attempted_at + registry.answer_deadline("entrust"))
    db.session.refresh(row)
    assert row.placement == "not_placed" and placing.may_be_unlisted(row)
    page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    assert "Not placed, as far as CertDesk can see." in page and "Nothing was charged" not in page
    assert 'name="looked_in_portal"' in page and f"<code>{row.request_id}</code>" in page
    sandbox.clear_requests()
    refused = operator_client.post(f"/entrust/{row.id}/place-again")
    assert refused.status_code in (302, 303)
    shown = operator_client.get(refused.headers["Location"]).get_data(as_text=True)
    assert "Entrust&#39;s list does not show declined orders" in shown
    assert sandbox.requests() == [] and _count(Order) == 1
    taken = operator_client.post(f"/entrust/{row.id}/place-again", data={"looked_in_portal": "1"})
    assert taken.status_code in (302, 303)
    db.session.refresh(row)
    assert row.again_id is not None and len(_posts(sandbox)) == 1
    # An order that did not wait for approval, through an administrator's API user, is one the
    # list shows whatever became of it: no such question.
    plain = _not_placed(env, user, sandbox, "plain.example.com")
    assert not placing.may_be_unlisted(plain)
    assert 'name="looked_in_portal"' not in operator_client.get(f"/entrust/{plain.id}").get_data(
        as_text=True
    )


def test_a_new_key_for_a_first_name_longer_than_a_common_name_takes_the_next(env, user, sandbox):
    """A host name may run to 253 characters, a common name to 64: a new key's CSR named its
    first SAN in its CN, and a long first name refused the order as "Common name: at most 64
    characters", on a form without a common name. The CN is now the first name that fits; with
    none, the refusal says what to add."""
    from cryptography import x509

    long = "l" * 60 + ".example.com"
    row = placing.place(
        user["operator"],
        _form(
            env,
            csr_source="new",
            new_key_type="p256",
            product="UC_SSL",
            sans=f"{long} www.example.com",
        ),
    )
    assert row.placement == "placed", row.message
    csr = x509.load_pem_x509_csr(db.session.get(Csr, row.csr_id).pem.encode())
    [cn] = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert cn.value == "www.example.com"
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [long, "www.example.com"]
    with pytest.raises(checks.OrderInputError, match="Every name is longer than 64 characters"):
        placing.place(
            user["operator"],
            _form(env, csr_source="new", new_key_type="p256", product="UC_SSL", sans=long),
        )
