"""The fault matrix: every ECS operation CertDesk uses x every fault the sandbox can inject.

Each operation is driven the way a person drives it, through its page with a signed-in client
(the background jobs run inline in tests). For each cell: no 500; the page or the job says what
happened in the product's words for that class of fault; nothing half-written (the tables the
operation writes keep their counts when the operation was not carried out); and an audit event
with the outcome. Faults on create calls that Entrust carried out are settled by the reconciler
into exactly one order at Entrust; those it did not carry out become "not placed".

GETs are retried by the client: their faults hit more often than the client tries, so the failure
shows, and one more case per read operation has a single fault that a retry absorbs. The fault
kinds come from the sandbox itself, so a new kind is a new column here.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from entrust_sandbox.traffic import CARRIED_OUT, FAULT_KINDS
from tests.conftest import link_sandbox
from webapp.audit.models import AuditEvent
from webapp.cas import registry
from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct
from webapp.certificates.models import Certificate
from webapp.credentials import clients
from webapp.credentials.models import EcsCredential
from webapp.csrs import service as csrs
from webapp.ecs import EcsClient
from webapp.extensions import db
from webapp.orders import checks, placing, polling, settling, successors
from webapp.orders.models import Order, OrderEvent
from webapp.settings import service as settings

API = "/enterprise/v2"
CERTS = f"{API}/certificates"
GET_ATTEMPTS = 2  # the client's GET attempts in this file (production: more; same code path)
# What the product says for each class of fault (webapp/credentials/wording.py).
WORDS = {
    "http_500": "Entrust server error (HTTP 500)",
    "http_502": "Entrust server error (HTTP 502)",
    "http_503": "Entrust server error (HTTP 503)",
    "http_504": "Entrust server error (HTTP 504)",
    "html_error_page": "Entrust server error (HTTP 502)",
    "commit_then_500": "Entrust server error (HTTP 500)",
    "rate_limit": "Rate limit: Entrust refused more requests for now (HTTP 429)",
    "timeout": "did not answer in time",
    "commit_then_timeout": "did not answer in time",
    "reset": "was cut off",
    "malformed_json": "answered, but not as the ECS API does",
    "truncated_body": "answered, but not as the ECS API does",
}
FAULTY = [k for k in FAULT_KINDS if k != "latency"]
# A whole answer that is not the ECS API's is not asked again (a wrong base URL or a proxy page
# would say the same again); everything else on a GET is tried again.
NOT_RETRIED = {"malformed_json"}


def test_every_fault_kind_has_words():
    """A new fault kind in the sandbox needs its expected words here (and in wording.py)."""
    assert set(FAULTY) == set(WORDS)


def _rule(kind: str, **match) -> dict:
    rule = {"kind": kind, **match}
    if kind in ("timeout", "commit_then_timeout"):
        rule["ms"] = 1400  # beyond the 1 s read timeout set below
    if kind == "latency":
        rule["ms"] = 50
    return rule


# --- the environment -------------------------------------------------------------------------


@dataclass
class Env:
    app: object
    cred: EcsCredential
    user: dict
    sandbox: object
    admin: object
    operator: object
    row: Order | None = None


@pytest.fixture(scope="module")
def world(db_templates, sandbox_server, tmp_path_factory):
    """One database, signed-in clients and a synced credential for the whole matrix (each cell
    makes its own orders and compares counts before and after): setting these up per cell would
    cost more than the cells themselves."""
    from tests import conftest
    from tests.conftest import Client, _instance_from, make_app
    from webapp.auth import service as auth

    instance = _instance_from(db_templates["users"], tmp_path_factory.mktemp("matrix") / "i")
    made = list(conftest._MADE)
    conftest._MADE.clear()  # kept until the module ends, not dropped after the first cell
    app = make_app(instance, instance / "certdesk.db")
    sandbox_server.reset()
    sandbox_server.seed(certificates=0, seed=3)
    with app.app_context():
        user = {r: auth.by_username(r) for r in conftest.ROLES}
        cred = link_sandbox(user, sandbox_server)
        settings.put(clients.READ_TIMEOUT, 1)
        settings.put(clients.CONNECT_TIMEOUT, 1)
        settings.put(clients.REQUESTS_PER_MINUTE, 6000)
        db.session.commit()
        cred_id = cred.id
        db.session.remove()
    app.test_client_class = Client
    signed_in = {}
    for role in ("admin", "operator"):
        c = app.test_client()
        assert c.login(role).status_code == 302
        signed_in[role] = c
    yield app, cred_id, signed_in
    sandbox_server.clear_faults()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if made:
        from tests import pg

        for url in made:
            pg.drop_database(url)


@pytest.fixture
def env(world, sandbox_server, fast_clients, monkeypatch):
    app, cred_id, signed_in = world
    from webapp.auth import service as auth

    # Fewer GET attempts than in production (each timed-out one costs a second); Test Login keeps
    # its single attempt.
    def client(*args, **kwargs):
        kwargs.setdefault("max_get_attempts", GET_ATTEMPTS)
        return EcsClient(*args, **kwargs)

    monkeypatch.setattr(clients, "EcsClient", client)
    sandbox_server.clear_faults()
    with app.app_context():
        user = {r: auth.by_username(r) for r in ("admin", "operator", "auditor")}
        cred = db.session.get(EcsCredential, cred_id)
        yield Env(app, cred, user, sandbox_server, signed_in["admin"], signed_in["operator"])
        sandbox_server.clear_faults()
        db.session.remove()


def _order_form(e: Env, cn: str, queue: bool = False) -> dict:
    csr = csrs.create_csr(e.user["operator"], "p256", {"CN": cn}, "")
    return {
        "credential_id": str(e.cred.id),
        "organization": "1:CertDesk Demo Corp",
        "product": "PRIVATE_SSL",  # unlimited inventory: the matrix places many
        "csr_source": "certdesk",
        "csr_id": str(csr.id),
        "requester_name": "Ann Admin",
        "requester_email": "ann@example.com",
        "requester_phone": "555-0100",
        "custom_text2": "billing",
        "ct_log": "1",
        **({"queue_for_approval": "1"} if queue else {}),
    }


def _place(e: Env, cn="www.example.com", queue=False) -> Order:
    """An order placed through the service (set-up, not under test)."""
    f = _order_form(e, cn, queue)
    form = checks.OrderForm(
        credential_id=e.cred.id,
        organization=f["organization"],
        product=f["product"],
        csr_source="certdesk",
        csr_id=int(f["csr_id"]),
        requester_name="Ann Admin",
        requester_email="ann@example.com",
        requester_phone="555-0100",
        custom={"text2": "billing"},
        queue_for_approval=queue,
    )
    row = placing.place(e.user["operator"], form)
    assert row.placement == "placed", row.message
    return row


def _in_status(e: Env, status: str) -> Order:
    row = _place(e, queue=status == "PENDING")
    if status == "SUSPENDED":
        e.sandbox.set_certificate_status(int(row.ca_order_id), status)
        polling.check([row], "scheduler")
    db.session.refresh(row)
    assert row.status == status
    return row


def _counts() -> dict:
    models = (
        Order,
        Certificate,
        OrderEvent,
        CatalogOrganization,
        CatalogDomain,
        CatalogProduct,
    )
    db.session.expire_all()
    return {
        m.__name__: db.session.execute(select(func.count()).select_from(m)).scalar_one()
        for m in models
    }


def _audits(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(db.session.execute(stmt).scalars())


def _text(resp) -> str:
    assert resp.status_code < 500, resp.get_data(as_text=True)[:2000]
    page = html.unescape(resp.get_data(as_text=True))
    return re.sub(r"\s+", " ", page)


def _sent(sandbox, method: str, path_end: str) -> list[dict]:
    return [
        r
        for r in sandbox.requests()
        if r["method"] == method and r["path"].rstrip("/").endswith(path_end)
    ]


# --- read operations: the failure shows, nothing is written, the attempt is audited ---------------


@dataclass(frozen=True)
class Read:
    name: str
    rule: dict  # what the fault matches
    audit: str | None  # the audit action (None: only a page is read, nothing is attempted)
    failure: str  # the audit outcome on a failure
    retried: bool = True  # False: the user waits, so one attempt (Test Login)


def _setup_read(e: Env, name: str) -> None:
    if name == "import":
        # Orders placed at Entrust outside CertDesk, for the import to find.
        from tests.integration.helpers import new_request
        from webapp.ecs import types

        with EcsClient(e.sandbox.base_url, e.sandbox.api_user, e.sandbox.api_key) as ecs:
            for host in ("a.example.com", "b.example.com"):
                ecs.new_certificate(new_request(host, cert_type=types.CertType.PRIVATE_SSL))
    if name == "check_status":
        e.row = _in_status(e, "PENDING")
        e.sandbox.set_certificate_status(int(e.row.ca_order_id), "ACTIVE")
    if name == "reconcile":
        # An order whose answer was lost (a 502 on the create call, and the search right after
        # failing too): unknown, to be settled.
        e.sandbox.faults(
            [
                {"kind": "http_502", "method": "POST", "path": CERTS, "count": 1},
                {"kind": "http_503", "method": "GET", "path": CERTS, "count": GET_ATTEMPTS},
            ]
        )
        f = _order_form(e, "lost.example.com")
        _text(e.operator.post("/entrust/new", data={**f, "action": "order"}))
        e.sandbox.clear_faults()
        e.row = db.session.execute(select(Order).order_by(Order.id.desc()).limit(1)).scalar_one()
        assert e.row.placement == "unknown"


def _drive_read(e: Env, name: str) -> str:
    """Run the operation through its page; return the words the person sees."""
    if name == "test_login":
        return _text(
            e.admin.post(f"/entrust/manage/credentials/{e.cred.id}/test", follow_redirects=True)
        )
    if name.startswith("sync_"):
        kind = name[5:]
        data = {"kind": kind, "credential": e.cred.id, "next": kind}
        return _text(e.admin.post("/entrust/manage/sync", data=data, follow_redirects=True))
    if name == "import":
        data = {"credential_id": e.cred.id}
        return _text(e.operator.post("/entrust/import", data=data, follow_redirects=True))
    if name == "check_status":
        data = {"order": e.row.id}
        return _text(e.operator.post("/entrust/check", data=data, follow_redirects=True))
    if name == "reconcile":
        return _text(e.operator.post(f"/entrust/{e.row.id}/settle", follow_redirects=True))
    if name == "order_form":
        return _text(e.operator.get(f"/entrust/new?credential_id={e.cred.id}"))
    raise AssertionError(name)


READS = [
    Read("test_login", {"method": "GET"}, "credential.test", "failure", retried=False),
    Read("sync_organizations", {"method": "GET"}, "catalog.sync", "failure"),
    Read("sync_domains", {"method": "GET"}, "catalog.sync", "failure"),
    Read("sync_products", {"method": "GET"}, "catalog.sync", "failure"),
    Read("import", {"method": "GET", "path": CERTS}, "order.import", "failure"),
    Read("check_status", {"method": "GET", "path": f"{CERTS}*"}, "order.check", "failure"),
    Read("reconcile", {"method": "GET", "path": CERTS}, "order.reconcile", "unsettled"),
    # Order Certificate's form reads the account's custom fields
    Read("order_form", {"method": "GET", "path": f"{API}/customFields"}, None, ""),
]
READ_OK = {
    "test_login": "Entrust answered: ECS API version",
    "sync_organizations": "Synced organizations",
    "sync_domains": "Synced domains",
    "sync_products": "Synced products",
    "import": "Import",
    "check_status": "1 changed",
    "reconcile": "CertDesk searches again after",  # not listed yet, before its deadline
    "order_form": 'name="custom_text2"',  # the account's custom field is on the form
}


def _read_ok(e: Env, op: Read, words: str, before: dict) -> None:
    assert READ_OK[op.name] in words, words[-3000:]
    if op.audit:
        [*_, last] = _audits(op.audit)
        assert last.outcome in ("success", "unsettled"), last.outcome
    if op.name == "import":
        known = set(db.session.execute(select(Order.ca_order_id)).scalars())
        at_entrust = {str(o["trackingId"]) for o in e.sandbox.orders()}
        assert at_entrust <= known and _counts()["Order"] > before["Order"]
    if op.name == "reconcile":
        db.session.refresh(e.row)
        assert e.row.placement == "unknown"
        # the search worked: the page says so, not the earlier failure to search
        assert "Entrust does not list this order yet" in words
        assert "Could not check with Entrust yet" not in words
    if op.name == "check_status":
        db.session.refresh(e.row)
        assert e.row.status == "ACTIVE"


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("op", READS, ids=lambda o: o.name)
def test_read_operation_under_fault(env, op, kind):
    e = env
    _setup_read(e, op.name)
    before = _counts()
    audits_before = len(_audits(op.audit)) if op.audit else 0
    e.sandbox.clear_requests()
    e.sandbox.faults([_rule(kind, count=GET_ATTEMPTS + 1, **op.rule)])
    words = _drive_read(e, op.name)
    e.sandbox.clear_faults()
    hits = [r for r in e.sandbox.requests() if r["fault"] == kind]
    assert hits, "the fault never hit: the rule does not match the operation's calls"
    if kind == "latency":
        _read_ok(e, op, words, before)
        return
    assert WORDS[kind] in words, words[-3000:]
    assert len(hits) == (GET_ATTEMPTS if op.retried and kind not in NOT_RETRIED else 1)
    after = _counts()
    if op.name == "check_status":
        db.session.refresh(e.row)
        assert e.row.status == "PENDING"  # not changed on a failed read
    if op.name == "reconcile":
        db.session.refresh(e.row)
        assert e.row.placement == "unknown"
        assert "Could not check with Entrust yet" in words
    assert after == before  # nothing half-written
    if op.name == "order_form":
        assert "The account's custom fields could not be read" in words
        return
    audits = _audits(op.audit)
    assert len(audits) > audits_before
    assert audits[-1].outcome == op.failure
    if op.name == "reconcile":
        # Once Entrust answers again and the call's deadline has passed: not placed, and
        # nothing at Entrust.
        deadline = e.row.attempted_at + registry.answer_deadline("entrust")
        settling.reconcile_due("scheduler", now=max(deadline, e.row.next_check_at))
        db.session.refresh(e.row)
        assert e.row.placement == "not_placed"
        assert e.sandbox.held()[e.row.request_id] == 0


@pytest.mark.parametrize("kind", [k for k in FAULTY if k not in NOT_RETRIED])
@pytest.mark.parametrize("op", [o for o in READS if o.retried], ids=lambda o: o.name)
def test_one_fault_on_a_read_is_absorbed_by_the_retry(env, op, kind):
    e = env
    _setup_read(e, op.name)
    before = _counts()
    e.sandbox.clear_requests()
    e.sandbox.faults([_rule(kind, count=1, **op.rule)])
    words = _drive_read(e, op.name)
    e.sandbox.clear_faults()
    assert [r["fault"] for r in e.sandbox.requests()].count(kind) == 1
    _read_ok(e, op, words, before)


# --- Validate: a create call that orders nothing ------------------------------------------------


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_validate_under_fault(env, kind):
    e = env
    data = {**_order_form(e, "check.example.com"), "action": "validate"}
    before = _counts()
    e.sandbox.clear_requests()
    e.sandbox.faults([_rule(kind, method="POST", path=CERTS, count=1)])
    words = _text(e.operator.post("/entrust/new", data=data))
    e.sandbox.clear_faults()
    [post] = _sent(e.sandbox, "POST", CERTS)  # sent once
    assert post["fault"] == kind and post["body"]["validateOnly"] is True
    [audit] = [a for a in _audits("order.validate") if "check.example.com" in (a.detail or "")][-1:]
    assert _counts() == before  # a validation stores no order
    assert e.sandbox.held()[post["body"]["tracking"]["trackingInfo"]] == 0  # and orders nothing
    if kind == "latency":
        assert "Entrust would accept this order" in words, words[-3000:]
        assert audit.outcome == "success"
        return
    assert WORDS[kind] in words, words[-3000:]
    assert audit.outcome == "failure" and WORDS[kind] in json.loads(audit.detail)["result"]
    assert "may have taken effect" not in words  # a validation has nothing to take effect


# --- changes: sent once; a lost answer is read back; the outcome audited -------------------------


@dataclass(frozen=True)
class Change:
    name: str
    state: str
    to: str
    method: str
    suffix: str
    data: dict


CHANGES = [
    Change("approve", "PENDING", "ACTIVE", "PATCH", "", {}),
    Change("decline", "PENDING", "DECLINED", "PATCH", "", {"reason": "Not ours"}),
    Change("suspend", "ACTIVE", "SUSPENDED", "PATCH", "", {}),
    Change("resume", "SUSPENDED", "ACTIVE", "PATCH", "", {}),
    Change("revoke", "ACTIVE", "REVOKED", "POST", "/revocations", {"reason": "keyCompromise"}),
]


def _drive_change(e: Env, c: Change, row: Order) -> str:
    data = {"order": row.id, **c.data}
    if c.name == "revoke":
        data.update(step="revoke", comment="lost laptop")
        return _text(e.admin.post("/entrust/revoke", data=data))
    return _text(e.admin.post(f"/entrust/status?action={c.name}", data=data))


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("c", CHANGES, ids=lambda c: c.name)
def test_change_under_fault(env, c, kind):
    e = env
    row = _in_status(e, c.state)
    ca_id = row.ca_order_id
    before = _counts()
    e.sandbox.clear_requests()
    path = f"{CERTS}/{ca_id}{c.suffix}"
    e.sandbox.faults([_rule(kind, method=c.method, path=path, count=1)])
    words = _drive_change(e, c, row)
    e.sandbox.clear_faults()
    sent = _sent(e.sandbox, c.method, f"/{ca_id}{c.suffix}")
    assert len(sent) == 1 and sent[0]["fault"] == kind  # sent once, never again
    db.session.expire_all()
    row = db.session.get(Order, row.id)
    [audit] = [a for a in _audits(f"order.{c.name}") if a.object_id == str(row.id)]
    if kind in CARRIED_OUT:
        # Entrust did it; the answer was lost or garbled: read back, shown as done.
        assert e.sandbox.status(ca_id) == c.to == row.status
        assert f"Entrust says {c.to}" in words, words[-3000:]
        assert audit.outcome == "success"
        return
    assert e.sandbox.status(ca_id) == c.state == row.status
    assert WORDS[kind] in words, words[-3000:]
    assert audit.outcome == "failure"
    assert WORDS[kind] in json.loads(audit.detail)["result"]  # the trail says why
    if kind != "rate_limit":
        assert "Entrust's answer was lost" in words and f"it is {c.state} at Entrust now" in words
    after = _counts()
    assert after["Order"] == before["Order"] and after["Certificate"] == before["Certificate"]
    if c.name == "revoke":
        cert = db.session.execute(
            select(Certificate).where(Certificate.order_id == row.id)
        ).scalar_one()
        assert cert.revoked_at is None  # not marked revoked when Entrust did not revoke


# --- create calls: never twice; settled by the reconciler --------------------------------------


CREATES = ["place", "reissue", "renew"]
PLACED_WORDS = {
    "place": "Certificate issued",
    "reissue": "Reissue issued",
    "renew": "Renewal issued",
}
LOST_WORDS = {
    "place": "Entrust's answer was lost",
    "reissue": "Entrust's answer to the reissue was lost",
    "renew": "Entrust's answer to the renewal was lost",
}


def _successor_data(e: Env, row: Order, origin: str) -> dict:
    values = successors.prefill(row, origin)
    csr = csrs.create_csr(e.user["operator"], "p256", {"CN": row.common_name}, "")
    data = {k: v for k, v in values.items() if isinstance(v, str)}
    data.update(csr_source="certdesk", csr_id=str(csr.id), ct_log="1")
    if origin == "renew":
        data["expires_on"] = successors.page(row, origin).dates[1]
    return data


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("op", CREATES)
def test_create_under_fault(env, op, kind):
    e = env
    parent = None
    if op == "place":
        url, data, create = (
            "/entrust/new",
            {**_order_form(e, "new.example.com"), "action": "order"},
            CERTS,
        )
    else:
        if op == "renew":
            e.sandbox.advance_clock(-40)  # old enough to renew
        parent = _place(e)
        if op == "renew":
            e.sandbox.advance_clock(40)
        url, data = f"/entrust/{parent.id}/{op}", _successor_data(e, parent, op)
        create = f"{CERTS}/{parent.ca_order_id}/{'reissues' if op == 'reissue' else 'renewals'}"
    before = _counts()
    e.sandbox.clear_requests()
    # The create call fails; so does the search right after it, so that the order stays
    # unknown until the reconciler settles it.
    e.sandbox.faults(
        [
            _rule(kind, method="POST", path=create, count=1),
            {"kind": "http_503", "method": "GET", "path": CERTS, "count": GET_ATTEMPTS},
        ]
    )
    resp = e.operator.post(url, data=data, follow_redirects=True)
    words = _text(resp)
    e.sandbox.clear_faults()
    posts = _sent(e.sandbox, "POST", create)
    assert len(posts) == 1 and posts[0]["fault"] == kind  # sent once
    request_id = posts[0]["body"]["tracking"]["trackingInfo"]
    db.session.expire_all()
    [requested] = [a for a in _audits("order.request") if request_id in (a.detail or "")]
    # by request id: SQLite may give a withdrawn intent's row id to the next order
    placed_audits = [a for a in _audits("order.place") if request_id in (a.detail or "")]
    if kind == "latency":
        assert PLACED_WORDS[op] in words, words[-3000:]
        assert [a.outcome for a in placed_audits] == ["success"]
        assert e.sandbox.held()[request_id] == 1
        return
    if kind == "rate_limit":
        # Refused before Entrust did anything: the form again, in words; no order kept.
        assert resp.status_code == 422
        assert WORDS[kind] in words, words[-3000:]
        assert _counts()["Order"] == before["Order"]
        assert [a.outcome for a in placed_audits] == ["failure"]
        assert e.sandbox.held()[request_id] == 0
        return
    # The answer was lost: shown as such, audited as unknown, never sent again.
    assert LOST_WORDS[op] in words, words[-3000:]
    assert [a.outcome for a in placed_audits] == ["unknown"]
    row = db.session.execute(select(Order).where(Order.request_id == request_id)).scalar_one()
    assert row.placement == "unknown"
    assert WORDS[kind] in _text(e.operator.get(f"/entrust/{row.id}"))  # its history says why
    # The reconciler, once Entrust answers again and the call's deadline has passed.
    settling.reconcile_due("scheduler", now=row.attempted_at + registry.answer_deadline("entrust"))
    db.session.expire_all()
    row = db.session.get(Order, row.id)
    held = e.sandbox.held()
    assert len(_sent(e.sandbox, "POST", create)) == 1  # the reconciler only searched
    [settled] = [a for a in _audits("order.reconcile") if request_id in (a.detail or "")]
    after = _counts()
    if kind in CARRIED_OUT:
        assert held[request_id] == 1  # exactly one order at Entrust
        assert row.placement == "placed" and row.status == "ACTIVE"
        assert settled.outcome == "success"
        assert after["Certificate"] == before["Certificate"] + 1
    else:
        assert held[request_id] == 0
        assert row.placement == "not_placed" and row.display_status == "NOT_PLACED"
        assert settled.outcome == "not_placed"
        assert after["Certificate"] == before["Certificate"]
        if parent is not None:
            db.session.refresh(parent)
            assert parent.status == "ACTIVE"  # the original untouched
    assert after["Order"] == before["Order"] + 1
    # and the orders page shows it
    listed = _text(e.operator.get(f"/entrust/{row.id}"))
    assert ("Not placed" if kind not in CARRIED_OUT else row.ca_order_id) in listed
