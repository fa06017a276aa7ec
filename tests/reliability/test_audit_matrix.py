"""Every change leaves its audit event: for each route that accepts a change (POST, PUT, PATCH,
DELETE), a real, valid change made through the pages by a user allowed to make it adds exactly the
expected events (action, actor, object), none holding a secret; the same request from a role
that may not make it is refused (403), changes nothing and is itself recorded as refused; sent
signed out, it leads to the sign-in page and changes nothing.

The routes come from the app's URL map: a new route that changes something fails here until it
has a case below (or a reasoned place in ``UNAUDITED``)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from tests.conftest import Client, link_sandbox
from tests.helpers import HTMX, PASSWORD
from tests.unit.certs.factory import MiniPki, p12
from tests.unit.test_credentials import make_cert, pem
from webapp.audit.models import AuditEvent, AuditHead
from webapp.auth import service as auth
from webapp.auth.models import LoginAttempt, UserSession
from webapp.certificates.models import Certificate
from webapp.credentials import service as credentials
from webapp.credentials.models import EcsCredential
from webapp.csrs import service as csrs
from webapp.csrs.models import Csr
from webapp.extensions import db
from webapp.jobs.models import Job
from webapp.orders import checks, lifecycle, placing, polling, settling, successors
from webapp.orders.models import Order
from webapp.security import rbac

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
NEW_PASSWORD = "another horse battery 9"
KEY_PASSWORD = "key-download-pass-1"
P12_PASSWORD = "import-pass-1"
# Rows a request may touch without changing anything a person did: the trail itself, and the
# session's last activity and sign-in attempts kept by every request.
NOT_COMPARED = {
    AuditEvent.__tablename__,
    AuditHead.__tablename__,
    UserSession.__tablename__,
    LoginAttempt.__tablename__,
}

# Routes that accept a POST but change nothing worth a trail entry, each with the reason.
UNAUDITED = {
    # Reissue and Renew from the list only take the one order ticked on to its own form
    # (orders.reissue_order, orders.renew_order), where the change is made and audited.
    "orders.reissue": "leads on to the order's Reissue form; changes nothing",
    "orders.renew": "leads on to the order's Renew form; changes nothing",
}

# Routes whose case needs an app of its own, covered by the test named here.
OWN_TEST = {
    "auth.setup": "test_first_run_setup_records_the_first_administrator",
}


@dataclass
class Change:
    """One change through the pages, and the events it must leave."""

    role: str | None  # who makes it; None: a visitor not signed in
    url: str
    # (action, actor, object type, object id); an object id may be a function, called after.
    events: list[tuple]
    data: dict | Callable[[], dict] = field(default_factory=dict)
    status: tuple[int, ...] = (302, 303)
    headers: dict = field(default_factory=dict)
    outcome: str = "success"
    refused: str | None = None  # a role refused this change (default: one the route leaves out)
    then: Callable[[], None] | None = None  # what else to check once it is done


CASES: dict[str, Callable] = {}  # "endpoint", or "endpoint: what this case does differently"


def case(name: str):
    def register(fn):
        assert name not in CASES, name
        CASES[name] = fn
        return fn

    return register


def _endpoint(name: str) -> str:
    return name.partition(":")[0]


class Bench:
    """What a case needs: the users, a client per role, fixtures on demand."""

    def __init__(self, request, app, user, clients):
        self.request, self.app, self.user, self.clients = request, app, user, clients
        self.secrets = [PASSWORD, NEW_PASSWORD, KEY_PASSWORD, P12_PASSWORD]

    def fixture(self, name):
        return self.request.getfixturevalue(name)

    def linked(self) -> EcsCredential:
        sandbox = self.fixture("sandbox")
        self.fixture("fast_clients")
        sandbox.seed(certificates=0, seed=2)
        self.secrets.append(sandbox.api_key)
        return link_sandbox(self.user, sandbox)

    def place(self, cred, cn: str, queue: bool = False) -> Order:
        csr = csrs.create_csr(self.user["operator"], "p256", {"CN": cn}, "")
        return placing.place(self.user["operator"], _order_form(cred, csr.id, queue=queue))


def _order_form(cred, csr_id, queue=False) -> checks.OrderForm:
    return checks.OrderForm(
        credential_id=cred.id,
        organization="1:CertDesk Demo Corp",
        product="STANDARD_SSL",
        csr_source="certdesk",
        csr_id=csr_id,
        custom={"text2": "audit"},
        queue_for_approval=queue,
    )


def _last(model, **where):
    return db.session.execute(
        select(model).filter_by(**where).order_by(model.id.desc()).limit(1)
    ).scalar_one()


# --- Admin › Users, sign-in, Admin › Settings -----------------------------------------------------


@case("users.new")
def _(t):
    return Change(
        "admin",
        "/admin/users/new",
        [("user.create", "admin", "user", lambda: auth.by_username("newbie").id)],
        {"username": "newbie", "password": NEW_PASSWORD, "role": "operator"},
    )


@case("users.role")
def _(t):
    target = t.user["operator"].id
    return Change(
        "admin",
        f"/admin/users/{target}/role",
        [("user.role_change", "admin", "user", target)],
        {"role": "auditor"},
    )


@case("users.profile")
def _(t):
    target = t.user["operator"].id
    return Change(
        "admin",
        f"/admin/users/{target}/profile",
        [("user.profile_change", "admin", "user", target)],
        {"full_name": "Olga Operator", "email": "olga@example.com"},
    )


@case("users.active")
def _(t):
    target = t.user["operator"].id
    return Change(
        "admin",
        f"/admin/users/{target}/active",
        [("user.disable", "admin", "user", target)],
        {"active": "0"},
    )


@case("users.active: enable")
def _(t):
    target = auth.create_user(t.user["admin"], "sleeper", NEW_PASSWORD, "operator")
    auth.set_active(t.user["admin"], target, False)
    return Change(
        "admin",
        f"/admin/users/{target.id}/active",
        [("user.enable", "admin", "user", target.id)],
        {"active": "1"},
    )


@case("users.password")
def _(t):
    target = t.user["operator"].id
    return Change(
        "admin",
        f"/admin/users/{target}/password",
        [("user.password_reset", "admin", "user", target)],
        {"password": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )


@case("users.end_sessions")
def _(t):
    target = t.user["operator"].id
    return Change(
        "admin",
        f"/admin/users/{target}/sessions/end",
        [("user.sessions_ended", "admin", "user", target)],
    )


@case("users.clear_throttle")
def _(t):
    stranger = t.app.test_client()
    assert stranger.login("operator", "wrong password").status_code == 401
    return Change(
        "admin",
        "/admin/users/throttle/clear",
        [("auth.throttle_cleared", "admin", "user", t.user["operator"].id)],
        {"username": "operator", "address": "127.0.0.1"},
    )


@case("auth.login")
def _(t):
    return Change(
        None,
        "/login",
        [("auth.login", "operator", "user", t.user["operator"].id)],
        {"username": "operator", "password": PASSWORD},
    )


@case("auth.logout")
def _(t):
    return Change(
        "operator", "/logout", [("auth.logout", "operator", "user", t.user["operator"].id)]
    )


@case("auth.change_password")
def _(t):
    return Change(
        "operator",
        "/account/password",
        [("user.password_change", "operator", "user", t.user["operator"].id)],
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )


@case("settings.save")
def _(t):
    return Change(
        "admin",
        "/admin/settings/",
        [("settings.update", "admin", "settings", "")],
        {"catalog.sync_interval_hours": "12"},
    )


@case("trailcheck.verify_now")
def _(t):
    # The request, then the check's own record that it found the chain intact (a broken trail's
    # audit.verify_failed is tested in tests/views/test_audit_views.py).
    return Change(
        "admin",
        "/admin/audit/verify",
        [
            ("audit.verify_requested", "admin", "audit", ""),
            ("audit.verify_passed", "admin", "audit", ""),
        ],
        refused="auditor",
    )


# --- SSL › Entrust › Manage ---------------------------------------------------------------------


def _credential_form(sandbox, **kw) -> dict:
    values = {
        "name": "Audited",
        "api_user": sandbox.api_user,
        "api_key": sandbox.api_key,
        "base_url": sandbox.base_url,
        "proxy": "",
        "is_admin": "1",
    }
    return values | kw


def _new_credential_id():
    return _last(EcsCredential).id


# A credential added starts its first sync at once (a job, run inline here): its events follow.
def _first_sync(actor, cred_id):
    return [
        ("credential.create", actor, "credential", cred_id),
        ("catalog.sync", actor, "credential", cred_id),
    ]


@case("credentials.new")
def _(t):
    sandbox = t.fixture("sandbox")
    t.fixture("fast_clients")
    t.secrets.append(sandbox.api_key)
    return Change(
        "admin",
        "/entrust/manage/credentials/new",
        _first_sync("admin", _new_credential_id),
        _credential_form(sandbox),
    )


@case("credentials.add_sandbox")
def _(t):
    sandbox = t.fixture("sandbox")
    t.fixture("fast_clients")
    t.secrets.append(sandbox.api_key)
    t.app.config.update(
        DEMO_SANDBOX_URL=sandbox.base_url,
        DEMO_SANDBOX_USER=sandbox.api_user,
        DEMO_SANDBOX_KEY=sandbox.api_key,
    )
    return Change(
        "admin",
        "/entrust/manage/credentials/sandbox",
        _first_sync("admin", _new_credential_id),
    )


@case("credentials.edit")
def _(t):
    cred = t.linked()
    sandbox = t.fixture("sandbox")
    # A new API key and client certificate: the event names what changed, never the values.
    new_key = "Xy-changed-api-key-0042"
    cert_pem, key_pem = pem(*make_cert())
    t.secrets += [new_key, key_pem.decode().splitlines()[1]]
    return Change(
        "admin",
        f"/entrust/manage/credentials/{cred.id}",
        [("credential.update", "admin", "credential", cred.id)],
        lambda: _credential_form(
            sandbox,
            name="Renamed",
            api_key=new_key,
            client_cert=(io.BytesIO(cert_pem), "c.pem"),
            client_key=(io.BytesIO(key_pem), "k.pem"),
        ),
    )


@case("credentials.enabled")
def _(t):
    cred = t.linked()
    return Change(
        "admin",
        f"/entrust/manage/credentials/{cred.id}/enabled",
        [("credential.disable", "admin", "credential", cred.id)],
        {"enabled": "0"},
    )


@case("credentials.enabled: enable")
def _(t):
    cred = t.linked()
    credentials.set_enabled(t.user["admin"], cred, False)
    return Change(
        "admin",
        f"/entrust/manage/credentials/{cred.id}/enabled",
        [("credential.enable", "admin", "credential", cred.id)],
        {"enabled": "1"},
    )


@case("credentials.delete")
def _(t):
    cred = t.linked()
    return Change(
        "admin",
        f"/entrust/manage/credentials/{cred.id}/delete",
        [("credential.delete", "admin", "credential", cred.id)],
        {"confirm": "1"},
    )


@case("credentials.test")
def _(t):
    cred = t.linked()
    return Change(
        "operator",
        f"/entrust/manage/credentials/{cred.id}/test",
        [("credential.test", "operator", "credential", cred.id)],
        headers=HTMX,
        status=(200,),
    )


@case("credentials.test_form")
def _(t):
    sandbox = t.fixture("sandbox")
    t.fixture("fast_clients")
    t.secrets.append(sandbox.api_key)
    return Change(
        "admin",
        "/entrust/manage/credentials/test",
        [("credential.test", "admin", "credential", "")],
        _credential_form(sandbox),
        headers=HTMX,
        status=(200,),
    )


@case("credentials.test_form: a stored credential")
def _(t):
    cred = t.linked()
    sandbox = t.fixture("sandbox")
    return Change(
        "admin",
        "/entrust/manage/credentials/test",
        [("credential.test", "admin", "credential", cred.id)],
        _credential_form(sandbox, api_key="", credential_id=cred.id),
        headers=HTMX,
        status=(200,),
    )


@case("catalog.sync")
def _(t):
    cred = t.linked()
    return Change(
        "operator",
        "/entrust/manage/sync",
        [("catalog.sync", "operator", "credential", cred.id)],
        {"kind": "all", "credential": cred.id},
    )


# --- SSL › CSRs and SSL › Certificates ----------------------------------------------------------


def _csr_and_key() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "made.example.com")]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


@case("csrs.new")
def _(t):
    return Change(
        "operator",
        "/csrs/new",
        [("csr.create", "operator", "csr", lambda: _last(Csr).id)],
        {"CN": "new.example.com", "key_type": "p256", "hash": "sha256", "sans": ""},
    )


@case("csrs.import_csr")
def _(t):
    csr_pem, key_pem = _csr_and_key()
    t.secrets.append(key_pem.decode().splitlines()[1])
    return Change(
        "operator",
        "/csrs/import",
        [("csr.import", "operator", "csr", lambda: _last(Csr).id)],
        {"csr_text": csr_pem.decode(), "key_text": key_pem.decode(), "key_password": ""},
    )


@case("csrs.import_csr: a key under a password")
def _(t):
    csr_pem, _ = _csr_and_key()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed.example.com")]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
    )
    return Change(
        "operator",
        "/csrs/import",
        [("csr.import", "operator", "csr", lambda: _last(Csr).id)],
        lambda: {
            "csr_file": (io.BytesIO(csr.public_bytes(serialization.Encoding.PEM)), "s.csr"),
            "key_file": (io.BytesIO(key_pem), "s.key"),
            "key_password": KEY_PASSWORD,
        },
    )


@case("csrs.delete")
def _(t):
    row = csrs.create_csr(t.user["operator"], "p256", {"CN": "gone.example.com"}, "")
    return Change("operator", f"/csrs/{row.id}/delete", [("csr.delete", "operator", "csr", row.id)])


@case("csrs.download_key")
def _(t):
    row = csrs.create_csr(t.user["operator"], "p256", {"CN": "key.example.com"}, "")
    return Change(
        "operator",
        f"/csrs/{row.id}/key",
        [("key.download", "operator", "private_key", row.private_key_id)],
        {"format": "pkcs8", "password": KEY_PASSWORD, "password2": KEY_PASSWORD},
        status=(200,),
    )


def _p12_upload(cn: str) -> Callable[[], dict]:
    pki = MiniPki()
    key, cert = pki.leaf(cn, [cn])
    body = p12(key, cert, pki.chain, P12_PASSWORD)
    return lambda: {"files": [(io.BytesIO(body), "site.p12")], "password": P12_PASSWORD}


@case("certificates.import_files")
def _(t):
    return Change(
        "operator",
        "/certificates/import",
        [("certificate.add", "operator", "certificate", lambda: _last(Certificate).id)],
        _p12_upload("import.example.com"),
    )


def _imported(t, cn: str, role: str = "operator") -> Certificate:
    client = t.clients[role]
    data = _p12_upload(cn)()
    resp = client.post("/certificates/import", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return _last(Certificate)


@case("certificates.delete")
def _(t):
    row = _imported(t, "delete.example.com")
    return Change(
        "operator",
        f"/certificates/{row.id}/delete",
        [("certificate.delete", "operator", "certificate", row.id)],
    )


@case("certificates.pkcs12")
def _(t):
    row = _imported(t, "p12.example.com")
    return Change(
        "operator",
        f"/certificates/{row.id}/pkcs12",
        [("key.download", "operator", "private_key", row.private_key_id)],
        {"password": KEY_PASSWORD, "password2": KEY_PASSWORD},
        status=(200,),
    )


@case("certificates.pkcs12: a key another user imported")
def _(t):
    # Operators may download only the keys they brought; the service refuses the others (403).
    row = _imported(t, "theirs.example.com", role="admin")
    return Change(
        "admin",
        f"/certificates/{row.id}/pkcs12",
        [("key.download", "admin", "private_key", row.private_key_id)],
        {"password": KEY_PASSWORD, "password2": KEY_PASSWORD},
        status=(200,),
        refused="operator",
    )


# --- SSL › Entrust: orders against the sandbox ---------------------------------------------------


@case("orders.new")
def _(t):
    cred = t.linked()
    csr = csrs.create_csr(t.user["operator"], "p256", {"CN": "ordered.example.com"}, "")
    return Change(
        "operator",
        "/entrust/new",
        _placed("operator", lambda: _last(Order).id, lambda: _last(Certificate).id),
        {
            "credential_id": cred.id,
            "organization": "1:CertDesk Demo Corp",
            "product": "STANDARD_SSL",
            "eku": "SERVER_AND_CLIENT_AUTH",
            "csr_source": "certdesk",
            "csr_id": csr.id,
            "signature_algorithm": "SHA-2",
            "requester_name": "Ann Admin",
            "requester_email": "ann@example.com",
            "custom_text2": "audit",
            "action": "order",
        },
    )


def _order_fields(cred, **kw) -> dict:
    return {
        "credential_id": cred.id,
        "organization": "1:CertDesk Demo Corp",
        "product": "STANDARD_SSL",
        "eku": "SERVER_AND_CLIENT_AUTH",
        "signature_algorithm": "SHA-2",
        "requester_name": "Ann Admin",
        "requester_email": "ann@example.com",
        "custom_text2": "audit",
        "queue_for_approval": "1",
        "action": "order",
        **kw,
    }


def _order_with_csr(csr_action: str) -> list[tuple]:
    """An order queued for approval whose CSR CertDesk records once the order exists."""
    return [
        ("order.request", "operator", "order", lambda: _last(Order).id),
        (csr_action, "operator", "csr", lambda: _last(Csr).id),
        ("order.place", "operator", "order", lambda: _last(Order).id),
    ]


@case("orders.new: a key pair made for it")
def _(t):
    # CertDesk made the key pair and the CSR: the CSR is recorded as made here, not imported.
    def made_here():
        assert _last(Csr).source == "generated"

    return Change(
        "operator",
        "/entrust/new",
        _order_with_csr("csr.create"),
        _order_fields(t.linked(), csr_source="new", new_key_type="p256", sans="fresh.example.com"),
        then=made_here,
    )


@case("orders.new: a CSR pasted with its key")
def _(t):
    csr_pem, key_pem = _csr_and_key()
    t.secrets.append(key_pem.decode().splitlines()[1])

    def imported():
        assert _last(Csr).source == "imported"

    return Change(
        "operator",
        "/entrust/new",
        _order_with_csr("csr.import"),
        _order_fields(
            t.linked(), csr_source="paste", csr_text=csr_pem.decode(), key_text=key_pem.decode()
        ),
        then=imported,
    )


@case("orders.new: a CSR held without its key, pasted with it")
def _(t):
    csr_pem, key_pem = _csr_and_key()
    held = csrs.import_csr(t.user["operator"], csr_pem)
    t.secrets.append(key_pem.decode().splitlines()[1])

    def key_linked():
        db.session.refresh(held)
        assert held.private_key_id is not None

    return Change(
        "operator",
        "/entrust/new",
        [
            ("order.request", "operator", "order", lambda: _last(Order).id),
            ("csr.update", "operator", "csr", held.id),
            ("order.place", "operator", "order", lambda: _last(Order).id),
        ],
        _order_fields(
            t.linked(), csr_source="paste", csr_text=csr_pem.decode(), key_text=key_pem.decode()
        ),
        then=key_linked,
    )


@case("orders.check")
def _(t):
    row = t.place(t.linked(), "check.example.com", queue=True)
    return Change(
        "operator",
        "/entrust/check",
        [("order.check", "operator", "order", row.id)],
        {"order": [row.id], "next": "/entrust/"},
    )


@case("orders.check: as a background job")
def _(t):
    t.fixture("monkeypatch").setattr(polling, "INLINE_LIMIT", 1)
    cred = t.linked()
    rows = [t.place(cred, f"wait{i}.example.com", queue=True).id for i in (1, 2)]
    return Change(
        "operator",
        "/entrust/check",
        [("order.check", "operator", "order", "")],  # the job finds nothing changed
        {"order": rows},
    )


@case("orders.update_status")
def _(t):
    row = t.place(t.linked(), "queue.example.com", queue=True)
    return Change(
        "admin",
        "/entrust/status?action=approve",
        [
            ("certificate.add", "admin", "certificate", lambda: _last(Certificate).id),
            ("order.approve", "admin", "order", row.id),
        ],
        {"order": [row.id]},
        status=(200,),
    )


# What a status action does to the certificate of an issued order (held by the CA, or again valid).
_CERTIFICATE_EVENTS = {"suspend": "certificate.suspended", "resume": "certificate.resumed"}


def _status_action(t, action: str, cn: str, queue: bool, before: str | None = None) -> Change:
    row = t.place(t.linked(), cn, queue=queue)
    if before:
        lifecycle.run(t.user["admin"], lifecycle.ACTIONS[before], [row.id], lifecycle.Choices())
    certificate = []
    if action in _CERTIFICATE_EVENTS:
        certificate = [(_CERTIFICATE_EVENTS[action], "admin", "certificate", row_cert(row))]
    return Change(
        "admin",
        f"/entrust/status?action={action}",
        [*certificate, (f"order.{action}", "admin", "order", row.id)],
        {"order": [row.id], "reason": "not ours"},
        status=(200,),
    )


@case("orders.update_status: suspend, as a background job")
def _(t):
    # More orders than are done at once: a job, started by the administrator, does each one.
    t.fixture("monkeypatch").setattr(lifecycle, "INLINE_LIMIT", 1)
    cred = t.linked()
    placed = [t.place(cred, f"job{i}.example.com") for i in (1, 2)]
    rows = [row.id for row in placed]
    certs = [row_cert(row) for row in placed]
    return Change(
        "admin",
        "/entrust/status?action=suspend",
        [
            ("order.suspend", "admin", "order", ""),
            *[
                event
                for i, cert in zip(rows, certs, strict=True)
                for event in (
                    ("certificate.suspended", "admin", "certificate", cert),
                    ("order.suspend", "admin", "order", i),
                )
            ],
        ],
        {"order": rows},
    )


@case("orders.update_status: decline")
def _(t):
    return _status_action(t, "decline", "decline.example.com", queue=True)


@case("orders.update_status: suspend")
def _(t):
    return _status_action(t, "suspend", "suspend.example.com", queue=False)


@case("orders.update_status: resume")
def _(t):
    return _status_action(t, "resume", "resume.example.com", queue=False, before="suspend")


@case("orders.revoke")
def _(t):
    row = t.place(t.linked(), "revoke.example.com")
    return Change(
        "admin",
        "/entrust/revoke",
        [
            ("certificate.revoked", "admin", "certificate", row_cert(row)),
            ("order.revoke", "admin", "order", row.id),
        ],
        {"order": row.id, "step": "revoke", "reason": "keyCompromise", "comment": ""},
        status=(200,),
    )


def _revoke_lost(t, fault: str, cn: str):
    """An order to revoke whose revocation call meets ``fault`` at the sandbox."""
    row = t.place(t.linked(), cn)
    path = f"/enterprise/v2/certificates/{row.ca_order_id}/revocations"
    t.fixture("sandbox").faults([{"kind": fault, "method": "POST", "path": path}])
    return row


@case("orders.revoke: the call fails before Entrust acts")
def _(t):
    # Nothing was revoked, and the trail says the administrator tried and it failed.
    row = _revoke_lost(t, "http_502", "failed.example.com")
    return Change(
        "admin",
        "/entrust/revoke",
        [("order.revoke", "admin", "order", row.id)],
        {"order": row.id, "step": "revoke", "reason": "keyCompromise", "comment": ""},
        status=(200,),
        outcome="failure",
    )


@case("orders.revoke: Entrust acts but its answer is lost")
def _(t):
    # CertDesk reads the order back: it is revoked, and the trail says so.
    row = _revoke_lost(t, "commit_then_500", "lost-answer.example.com")
    return Change(
        "admin",
        "/entrust/revoke",
        [
            ("certificate.revoked", "admin", "certificate", row_cert(row)),
            ("order.revoke", "admin", "order", row.id),
        ],
        {"order": row.id, "step": "revoke", "reason": "keyCompromise", "comment": ""},
        status=(200,),
    )


@case("orders.delete")
def _(t):
    row = t.place(t.linked(), "delete.example.com")
    return Change(
        "admin",
        "/entrust/delete",
        [("order.delete", "admin", "order", row.id)],
        {"order": [row.id], "step": "delete", "confirm": "1"},
    )


@case("orders.import_orders")
def _(t):
    cred = t.linked()
    t.fixture("sandbox").seed(certificates=3, seed=5)
    return Change(
        "operator",
        "/entrust/import",
        [
            ("order.import.start", "operator", "credential", cred.id),
            ("certificate.add_batch", "operator", "certificate", _certificate_ids),
            ("order.import", "operator", "credential", cred.id),
        ],
        {"credential_id": cred.id},
    )


def _certificate_ids() -> str:
    """The range of the certificates added in one batch: "first-last"."""
    low, high = db.session.execute(select(func.min(Certificate.id), func.max(Certificate.id))).one()
    return f"{low}-{high}"


def _successor(t, origin: str, cn: str, events) -> Change:
    cred = t.linked()
    sandbox = t.fixture("sandbox")
    sandbox.advance_clock(-40)  # issued 40 days ago: old enough to renew
    row = t.place(cred, cn)
    sandbox.advance_clock(40)
    csr = csrs.create_csr(t.user["operator"], "p256", {"CN": cn}, "")

    def successor():
        return _last(Order, parent_id=row.id)

    form = {"csr_source": "certdesk", "csr_id": csr.id, "sans": cn}
    if origin == "renew":
        form["expires_on"] = successors.page(row, "renew").dates[1]
    return Change(
        "operator",
        f"/entrust/{row.id}/{origin}",
        events(lambda: successor().id, row.id, lambda: _last(Certificate).id, row_cert(row)),
        form | {"eku": "SERVER_AND_CLIENT_AUTH", "signature_algorithm": "SHA-2"},
    )


def row_cert(order: Order) -> int:
    return db.session.execute(
        select(Certificate.id).where(Certificate.order_id == order.id)
    ).scalar_one()


def _placed(actor, order_id, cert_id) -> list[tuple]:
    """A new order placed and issued at once: its request, its certificate, its outcome."""
    return [
        ("order.request", actor, "order", order_id),
        ("certificate.add", actor, "certificate", cert_id),
        ("order.place", actor, "order", order_id),
    ]


@case("orders.reissue_order")
def _(t):
    # Entrust revokes the original's certificate when it reissues: CertDesk notes both.
    return _successor(
        t,
        "reissue",
        "reissue.example.com",
        lambda new, old, cert, old_cert: [
            *_placed("operator", new, cert),
            ("certificate.revoked", "operator", "certificate", old_cert),
            ("order.replaced", "operator", "order", old),
        ],
    )


@case("orders.renew_order")
def _(t):
    return _successor(
        t,
        "renew",
        "renew.example.com",
        lambda new, old, cert, old_cert: [
            *_placed("operator", new, cert),
            ("order.replaced", "operator", "order", old),
        ],
    )


def _lost(t, cn: str) -> Order:
    """An order whose answer was lost (the sandbox failed after taking nothing)."""
    cred = t.linked()
    sandbox = t.fixture("sandbox")
    sandbox.faults([{"kind": "http_502", "method": "POST", "path": "/enterprise/v2/certificates"}])
    csr = csrs.create_csr(t.user["operator"], "p256", {"CN": cn}, "")
    row = placing.place(t.user["operator"], _order_form(cred, csr.id))
    sandbox.clear_faults()
    assert row.placement == "unknown", row.message
    return row


@case("orders.settle")
def _(t):
    row = _lost(t, "lost.example.com")
    return Change(
        "operator",
        f"/entrust/{row.id}/settle",
        [("order.reconcile", "operator", "order", row.id)],
        outcome="unsettled",  # Entrust has no such order yet, and the deadline is not past
    )


@case("orders.place_again")
def _(t):
    from webapp.cas import registry

    row = _lost(t, "again.example.com")
    settling.reconcile_due("scheduler", now=row.attempted_at + registry.answer_deadline("entrust"))
    db.session.refresh(row)
    assert row.placement == "not_placed"
    return Change(
        "operator",
        f"/entrust/{row.id}/place-again",
        _placed("operator", lambda: _last(Order).id, lambda: _last(Certificate).id),
    )


@case("orders.updates_seen")
def _(t):
    from webapp.orders import records

    row = t.place(t.linked(), "notice.example.com", queue=True)
    notice = records.event(
        row, "status", actor="scheduler", old="PENDING", new="ACTIVE", notify=True
    )
    db.session.commit()
    operator = t.user["operator"].id
    return Change(
        "operator",
        "/entrust/updates/seen",
        [("order.notices_dismissed", "operator", "user", operator)],
        {"event": [notice.id]},
        then=lambda: _dismissed(notice.id),
    )


def _dismissed(event_id):
    from webapp.orders.models import OrderEvent

    assert db.session.get(OrderEvent, event_id).seen_at is not None
    event = _last(AuditEvent, action="order.notices_dismissed")
    assert f"{event_id}" in event.detail


# --- the checks -----------------------------------------------------------------------------------


def _changing_endpoints(app) -> set[str]:
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and rule.methods & CHANGING
    }


def test_every_route_that_changes_something_has_an_audit_case(app):
    routes = _changing_endpoints(app)
    cased = {_endpoint(name) for name in CASES}
    uncovered = sorted(routes - cased - set(UNAUDITED) - set(OWN_TEST))
    assert uncovered == [], f"routes that change something without an audit case: {uncovered}"
    stale = sorted((cased | set(UNAUDITED) | set(OWN_TEST)) - routes)
    assert stale == [], f"cases for routes that no longer exist: {stale}"
    assert not cased & set(UNAUDITED)


def _last_seq() -> int:
    db.session.rollback()
    return db.session.execute(select(func.coalesce(func.max(AuditEvent.seq), 0))).scalar_one()


def _since(seq: int) -> list[AuditEvent]:
    db.session.rollback()
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        ).scalars()
    )


def _snapshot() -> dict:
    """Every row of every table but the trail and the session bookkeeping."""
    db.session.rollback()
    return {
        table.name: sorted(
            map(repr, db.session.execute(select(table)).all())  # noqa: S001
        )
        for table in db.metadata.sorted_tables
        if table.name not in NOT_COMPARED
    }


def _send(client, change: Change):
    data = change.data() if callable(change.data) else dict(change.data)
    files = any(
        isinstance(v, tuple) or (isinstance(v, list) and v and isinstance(v[0], tuple))
        for v in data.values()
    )
    return client.post(
        change.url,
        data=data,
        headers=change.headers,
        content_type="multipart/form-data" if files else None,
    )


def _refusing_role(access: str) -> str | None:
    """A role the route's permission leaves out (None: any signed-in user or anyone may)."""
    if access in (rbac.PUBLIC, rbac.SIGNED_IN):
        return None
    return "operator" if not rbac.has_permission(_Role("operator"), access) else "auditor"


@dataclass
class _Role:
    role: str
    is_authenticated: bool = True
    is_active: bool = True


def _has_secret(text: str, secrets: list[str]) -> list[str]:
    found = [s for s in secrets if s and s in text]
    return found + [w for w in ("PRIVATE KEY", "-----BEGIN") if w in text]


@pytest.fixture
def bench(request, app, user, admin_client, operator_client, auditor_client):
    anonymous = app.test_client()
    clients = {
        "admin": admin_client,
        "operator": operator_client,
        "auditor": auditor_client,
        None: anonymous,
    }
    assert isinstance(anonymous, Client)
    return Bench(request, app, user, clients)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_change_leaves_exactly_its_audit_events(app, bench, name):
    change = CASES[name](bench)
    endpoint = _endpoint(name)
    access = app.view_functions[endpoint].access
    refusing = change.refused or _refusing_role(access)
    if refusing is not None:
        before, seq = _snapshot(), _last_seq()
        resp = _send(bench.clients[refusing], change)
        assert resp.status_code == 403, (refusing, resp.status_code)
        assert _snapshot() == before, f"a refused {endpoint} changed something"
        refused = [
            (e.action, e.actor_name, e.object_type, e.object_id, e.outcome) for e in _since(seq)
        ]
        assert refused == [("access.denied", refusing, "route", endpoint, "refused")]
    if access != rbac.PUBLIC:
        # Signed out, the same request is sent to the sign-in page and changes nothing.
        before, seq = _snapshot(), _last_seq()
        resp = _send(bench.app.test_client(), change)
        to = resp.headers.get("Location", "") + resp.headers.get("HX-Redirect", "")
        assert resp.status_code in (302, 401) and "/login" in to, resp.status_code
        assert _snapshot() == before and _since(seq) == []
    seq = _last_seq()
    resp = _send(bench.clients[change.role], change)
    assert resp.status_code in change.status, resp.get_data(as_text=True)[:2000]
    events = _since(seq)
    expected = [
        (action, actor, kind, str(obj() if callable(obj) else obj), change.outcome)
        for action, actor, kind, obj in change.events
    ]
    got = [(e.action, e.actor_name, e.object_type, e.object_id, e.outcome) for e in events]
    assert got == expected, got
    for e in events:
        if e.actor_name in bench.user:
            assert e.actor_id == bench.user[e.actor_name].id, e.action
        leaked = _has_secret(f"{e.object_id} {e.detail}", bench.secrets)
        assert leaked == [], f"{e.action} holds a secret: {leaked}"
    if change.then is not None:
        db.session.rollback()
        change.then()


def test_first_run_setup_records_the_first_administrator(empty_app):
    empty_app.test_client_class = Client
    client = empty_app.test_client()
    token = auth.issue_setup_token()
    seq = _last_seq()
    resp = client.post(
        "/setup",
        data={
            "token": token,
            "username": "first",
            "full_name": "First Admin",
            "password": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    first = auth.by_username("first")
    events = _since(seq)
    assert [(e.action, e.actor_name, e.actor_id, e.object_id) for e in events] == [
        ("user.create", "first", first.id, str(first.id))
    ]
    assert _has_secret(events[0].detail, [NEW_PASSWORD, token]) == []


# Pages read with GET that still leave an event: exports (who took a copy of what).
READ_AUDITED = {
    "audit.export": ("audit.export", "audit", ""),
    "certificates.export": ("certificate.export", "certificate", ""),
}


def test_reading_a_page_changes_nothing(app, bench):
    """Every page and download read with GET, over real rows, changes no row; only the exports
    leave an event. A change reached by GET would slip past the CSRF check and the trail."""
    cred = bench.linked()
    order = bench.place(cred, "read.example.com")
    cert = _last(Certificate)
    ids = {
        "order_id": order.id,
        "cert_id": cert.id,
        "csr_id": order.csr_id,
        "credential_id": cred.id,
        "user_id": bench.user["operator"].id,
        "job_id": _last(Job).id,
        "fmt": "pem",
    }
    rows = _snapshot()
    assert all(rows[t] for t in ("ca_order", "certificate", "csr", "ecs_credential", "job"))
    client = bench.clients["admin"]
    wrong = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        url = rule.build({name: ids[name] for name in rule.arguments}, append_unknown=False)[1]
        before, seq = _snapshot(), _last_seq()
        resp = client.get(url)
        resp.close()
        events = [(e.action, e.object_type, e.object_id) for e in _since(seq)]
        expected = [READ_AUDITED[rule.endpoint]] if rule.endpoint in READ_AUDITED else []
        if resp.status_code >= 400:
            wrong.append((url, resp.status_code))
        if _snapshot() != before:
            wrong.append((url, "changed a row"))
        if events != expected:
            wrong.append((url, events))
    assert wrong == []
