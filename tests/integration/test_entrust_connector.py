"""The Entrust connector against the real sandbox: the CA connector interface in the orders
feature's terms, and ECS's answers turned into the three neutral kinds of error."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509

from tests.integration.helpers import make_csr
from webapp.cas import registry
from webapp.cas.base import Action, NotAllowed, OrderRequest, Phase, Refused, Requester, Unavailable
from webapp.credentials import clients
from webapp.credentials import service as credentials
from webapp.ecs import clear_budgets


@pytest.fixture(autouse=True)
def fast_client(monkeypatch):
    monkeypatch.setattr(clients, "CLIENT_OPTIONS", {"sleep": lambda s: None})
    clear_budgets()
    yield
    clear_budgets()


@pytest.fixture
def seeded(sandbox):
    sandbox.seed(certificates=25, seed=5)
    return sandbox


def _credential(app, user, sb, api_user=None, api_key=None, name="Sandbox"):
    cred, _ = credentials.create(
        user["admin"],
        credentials.CredentialInput(
            name=name,
            api_user=api_user or sb.api_user,
            api_key=api_key or sb.api_key,
            base_url=sb.base_url,
        ),
        start_sync=False,
    )
    return cred


@pytest.fixture
def connector(app, user, seeded):
    conn = registry.open_connector("entrust", _credential(app, user, seeded).id)
    yield conn
    conn.close()


def _request(host="shop.example.com", **kw) -> OrderRequest:
    kw.setdefault("product", "STANDARD_SSL")
    return OrderRequest(
        request_id=f"certdesk:{uuid.uuid4()}",
        csr_pem=make_csr(host),
        sans=[host],
        requester=Requester("Ann Admin", "ann@example.com", "555-0100"),
        expires_on=date.today() + timedelta(days=200),
        **kw,
    )


def test_an_issued_order_carries_its_certificate_and_is_found_by_request_id(connector):
    req = _request()
    placed = connector.place(req)
    assert placed.outcome == "issued" and placed.order.phase is Phase.ISSUED
    leaf = x509.load_pem_x509_certificate(placed.order.certificate_pem.encode())
    issuers = [x509.load_pem_x509_certificate(p.encode()) for p in placed.order.chain_pems]
    assert issuers and issuers[0].subject == leaf.issuer  # the chain is the issuers, nearest first
    found = connector.find_by_request_id(req.request_id)
    assert [o.order_id for o in found] == [placed.order.order_id]
    assert found[0].request_id == req.request_id and found[0].common_name == "shop.example.com"
    assert found[0].requester.email == "ann@example.com" and found[0].product == "STANDARD_SSL"
    full = connector.fetch(placed.order.order_id)
    assert full.certificate_pem.strip() == placed.order.certificate_pem.strip()
    expected_expiry = datetime.combine(req.expires_on, datetime.min.time(), UTC)
    assert abs(full.expires_at - expected_expiry) < timedelta(days=2)


def test_validate_only_places_nothing(connector):
    req = _request(validate_only=True)
    assert connector.place(req).outcome == "validated"
    assert connector.find_by_request_id(req.request_id) == []


def test_a_queued_order_is_pending_until_approved(connector):
    placed = connector.place(_request(queue_for_approval=True))
    assert placed.outcome == "pending" and placed.order.status == "PENDING"
    oid = placed.order.order_id
    assert connector.statuses([oid])[oid].phase is Phase.PENDING
    assert connector.capabilities.allows(Action.APPROVE, "PENDING")
    approved = connector.approve(oid)
    assert approved.outcome == "issued" and approved.order.certificate_pem
    assert connector.statuses([oid])[oid].status == "ACTIVE"


def test_field_errors_name_the_order_form_fields(connector):
    with pytest.raises(Refused) as refused:
        connector.place(_request(host="www.not-ours.example"))
    assert refused.value.field == "sans" and "not-ours" in str(refused.value)
    with pytest.raises(Refused) as refused:
        connector.place(_request(product="NO_SUCH_PRODUCT"))
    assert refused.value.field == "product"


def test_state_refusals_and_lifecycle(connector):
    oid = connector.place(_request()).order.order_id
    with pytest.raises(Refused) as young:
        connector.renew(oid, _request())
    assert young.value.state and "30 days" in str(young.value)
    connector.suspend(oid)
    assert connector.fetch(oid).phase is Phase.SUSPENDED
    connector.resume(oid)
    reissued = connector.reissue(oid, _request())
    assert reissued.outcome == "issued" and reissued.order.order_id != oid
    with pytest.raises(Refused, match="revocation reason"):
        connector.revoke(reissued.order.order_id, "superseded")
    connector.revoke(reissued.order.order_id, "keyCompromise", "key left on a laptop")
    assert connector.fetch(reissued.order.order_id).phase is Phase.REVOKED
    with pytest.raises(Refused) as again:
        connector.revoke(reissued.order.order_id, "unspecified")
    assert again.value.state


def test_an_unknown_order_is_refused_in_words(connector):
    with pytest.raises(Refused, match="does not know the order with tracking ID 99999"):
        connector.fetch("99999")
    with pytest.raises(Refused, match="not an Entrust tracking ID"):
        connector.fetch("../clients")


def test_administrator_actions_need_administrator_rights(app, user, seeded, connector):
    oid = connector.place(_request(queue_for_approval=True)).order.order_id
    seeded.add_user("requester-only", "requester-key-123", role="requester")
    cred = _credential(app, user, seeded, "requester-only", "requester-key-123", "Requester")
    with registry.open_connector("entrust", cred.id) as weak, pytest.raises(NotAllowed) as denied:
        weak.approve(oid)
    assert denied.value.needs_admin and "An Entrust administrator can do it" in str(denied.value)
    assert Action.APPROVE in connector.capabilities.admin_actions


@pytest.mark.parametrize("kind", ["commit_then_500", "commit_then_timeout", "reset", "http_502"])
def test_a_lost_answer_is_unknown_and_found_again(app, seeded, connector, monkeypatch, kind):
    monkeypatch.setattr(clients, "CLIENT_OPTIONS", {"sleep": lambda s: None})
    from webapp.settings import service as settings

    settings.put(clients.READ_TIMEOUT, 1)
    conn = registry.open_connector("entrust", connector.credential.id)
    seeded.faults(
        [{"kind": kind, "method": "POST", "path": "/enterprise/v2/certificates", "ms": 3000}]
    )
    req = _request()
    with pytest.raises(Unavailable) as lost:
        conn.place(req)
    seeded.clear_faults()
    assert lost.value.outcome_unknown  # a 5xx or a lost answer: it may have been placed
    found = conn.find_by_request_id(req.request_id)
    assert len(found) == (0 if kind in ("reset", "http_502") else 1)
    conn.close()


def test_listing_pages_carry_on_from_an_offset(connector, seeded):
    pages = list(connector.list_orders(page_size=10))
    ids = [o.order_id for p in pages for o in p.orders]
    assert len(ids) == len(set(ids)) and pages[-1].next_offset is None
    assert [p.offset for p in pages] == [0, 10, 20][: len(pages)]
    again = list(connector.list_orders(offset=pages[1].offset, page_size=10))
    assert [o.order_id for p in again for o in p.orders] == ids[10:]
    assert all(o.status for o in pages[0].orders)


def test_a_deleted_or_disabled_credential_is_unavailable(app, user, seeded):
    cred = _credential(app, user, seeded)
    credentials.set_enabled(user["admin"], cred, False)
    with pytest.raises(Unavailable, match="disabled"):
        registry.open_connector("entrust", cred.id)
    credentials.delete(user["admin"], cred, confirmed=True)
    with pytest.raises(Unavailable, match="deleted"):
        registry.open_connector("entrust", cred.id)


def test_statuses_skip_one_by_one_reads_of_orders_lists_leave_out(connector, seeded):
    pending = connector.place(_request(queue_for_approval=True)).order.order_id
    declined = connector.place(_request("api.example.com", queue_for_approval=True)).order.order_id
    connector.decline(declined, "not needed")
    seeded.set_certificate_status(int(pending), "APPROVED")
    seeded.clear_requests()
    # Without what was seen before, both missing orders are read one by one...
    found = connector.statuses([pending, declined])
    assert found[pending].status == "APPROVED" and found[declined].status == "DECLINED"
    reads = [r for r in seeded.requests() if r["path"].rsplit("/", 1)[-1] in (pending, declined)]
    assert len(reads) == 2
    # ...with it, their absence from the list says they are unchanged: one call, no reads.
    seeded.clear_requests()
    known = {pending: "APPROVED", declined: "DECLINED"}
    assert connector.statuses([pending, declined], known) == {}
    assert [r["path"].rsplit("/", 1)[-1] for r in seeded.requests()] == ["certificates"]
    # Once the approved order is issued, the list shows it again.
    seeded.set_certificate_status(int(pending), "ACTIVE")
    assert connector.statuses([pending], known)[pending].status == "ACTIVE"


def test_an_order_for_another_client_carries_that_clients_name(connector, seeded):
    req = _request("www.subsidiary.example", client_id=2, organization="Example Subsidiary Ltd")
    placed = connector.place(req)
    body = [r for r in seeded.requests() if r["method"] == "POST"][-1]["body"]
    assert body["clientId"] == 2 and "org" not in body
    assert connector.fetch(placed.order.order_id).organization == "Example Subsidiary Ltd"


def test_capabilities_describe_what_an_order_may_ask_for(app):
    caps = registry.capabilities("entrust")
    assert caps.max_validity_days("STANDARD_SSL") == 398
    assert caps.max_validity_days("PRIVATE_SSL") > 398
    assert caps.max_validity_days("CODE_SIGNING") is None
    assert (
        caps.ekus[0][0] == "SERVER_AND_CLIENT_AUTH" and caps.signature_algorithms[0][0] == "SHA-2"
    )
    assert {"ACTIVE", "PENDING", "APPROVED", "DECLINED"} <= set(caps.statuses)


def test_the_answer_deadline_follows_the_timeouts_and_the_wait_for_the_budget(app):
    """A call may wait up to ECS_RATE_WAIT_MAX_SECONDS (120) in its credential's request budget
    before it is sent, and that budget is each process's own: the deadline counts the wait, or
    another process calls the order not placed while its call has not left yet."""
    from webapp.settings import service as settings

    settings.put(clients.READ_TIMEOUT, 7)
    settings.put(clients.CONNECT_TIMEOUT, 3)
    assert registry.answer_deadline("entrust") == timedelta(seconds=120 + 7 + 3 + 60)
    app.config["ORDERS_SETTLE_MARGIN_SECONDS"] = 5
    assert registry.answer_deadline("entrust") == timedelta(seconds=120 + 15)
    app.config["ECS_RATE_WAIT_MAX_SECONDS"] = 30
    assert registry.answer_deadline("entrust") == timedelta(seconds=45)
    # The clients built wait no longer than that for the budget.
    built = clients.build(
        base_url="https://api.entrust.net/enterprise/v2/",
        api_user="u",
        api_key="k",
        cert_pem=None,
        key_pem=None,
        proxy="",
        ca_bundle="",
        budget_key=("test", 1),
    )
    assert built.rate_wait_max == 30
