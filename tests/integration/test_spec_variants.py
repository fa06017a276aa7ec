"""CertDesk against both readings of the ECS API: each place where Entrust's live service answers
otherwise than its published OpenAPI spec is switched to the spec's reading in the real sandbox,
and the flows it touches run over HTTP as the pages run them (Test Login, the catalog sync, Import
Existing Orders, Order Certificate, Check Order Status, approve, decline, suspend, resume, reissue,
renew and revoke). Each flow either gives the same result as against the live reading, or ends
with a message a person can act on, having changed nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import link_sandbox, sandbox_order_form, successor_form
from webapp.cas import registry
from webapp.cas.base import Action
from webapp.catalog.models import CLIENT, CatalogDomain, CatalogOrganization, CatalogProduct
from webapp.certificates.models import Certificate
from webapp.credentials import service as credentials
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.orders import importing, lifecycle, placing, polling, settling, successors
from webapp.orders.models import Order
from webapp.settings import service as settings

pytestmark = pytest.mark.usefixtures("fast_clients")

API = "/enterprise/v2/"


def _spec(sandbox, **switches) -> None:
    """Switch the sandbox to the spec's reading of the named places."""
    sandbox.update_settings(fidelity=switches)


def _count(model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _order(user, cred, cn="www.example.com", **kw) -> Order:
    csr = csrs.create_csr(user["operator"], "p256", {"CN": cn}, "")
    form = sandbox_order_form(cred, csr.id, requester_phone="555-0100", **kw)
    return placing.place(user["operator"], form)


def _posts(sandbox, suffix: str) -> list[dict]:
    return [
        r
        for r in sandbox.requests()
        if r["method"] == "POST" and r["path"].rstrip("/").endswith(suffix)
    ]


def _changes(sandbox) -> list[dict]:
    return [r for r in sandbox.requests() if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]


@pytest.fixture
def account(app, sandbox):
    """The sandbox's deterministic account, with no existing certificates."""
    sandbox.seed(certificates=0, seed=3)
    return sandbox


# --- 9.1 domains: `status` (spec) instead of `verificationStatus` (live) ----------------------


def test_domains_with_status_sync_their_status_and_orders_are_placed(account, user):
    _spec(account, domain_status_key="status")
    upstream = account._api_get("domains", {"limit": 1000})["domains"]
    assert upstream and all("status" in d and "verificationStatus" not in d for d in upstream)
    cred = link_sandbox(user, account)
    synced = {
        d.name: d.verification_status for d in db.session.execute(select(CatalogDomain)).scalars()
    }
    assert synced == {d["domainName"].lower(): d["status"] for d in upstream}
    # Order Certificate offers and checks the usable domains from that status.
    row = _order(user, cred)
    assert row.status == "ACTIVE" and _count(Certificate, Certificate.order_id == row.id) == 1


# --- 9.2 products: `inventory` (spec) instead of `inventories` (live) -------------------------


def test_products_under_inventory_are_synced_with_their_counts(account, user):
    _spec(account, inventory_key="inventory")
    upstream = account._api_get("inventories")["inventory"]
    link_sandbox(user, account)
    synced = {
        p.product_type: (p.total_count, p.remaining_count, p.used_count)
        for p in db.session.execute(select(CatalogProduct)).scalars()
    }
    assert synced == {
        p["productType"]: (p.get("totalCount"), p.get("remainingCount"), p.get("usedCount"))
        for p in upstream
    }


# --- 9.3 a client certificate required of every API user (spec) ------------------------------


def test_a_client_certificate_required_for_all_fails_in_words_and_syncs_nothing(account, user):
    cred = link_sandbox(user, account)
    before = _count(CatalogDomain)
    _spec(account, client_cert_required_for_all=True)
    result = credentials.test_login(user["operator"], cred)
    assert not result.ok and "client certificate" in result.message.lower()
    job = credentials_sync(user, cred)
    assert job.state == "failed" and "client certificate" in job.error.lower()
    assert "nothing was changed" in job.error.lower()
    assert _count(CatalogDomain) == before
    with pytest.raises(placing.OrderRefused) as err:
        _order(user, cred)
    assert "client certificate" in str(err.value).lower()
    job = importing.start_import(user["operator"], cred.id, list(importing.DEFAULT_EXCLUSIONS))
    db.session.refresh(job)
    assert job.state == "failed" and "client certificate" in job.error.lower()
    assert _count(Order) == 0
    assert [p["status"] for p in _posts(account, API + "certificates")] == [401]
    _spec(account, client_cert_required_for_all=False)
    assert account.orders() == []  # nothing was ordered


def test_a_client_certificate_required_for_all_stops_status_checks_and_actions_in_words(
    account, user
):
    cred = link_sandbox(user, account)
    row = _order(user, cred)
    _spec(account, client_cert_required_for_all=True)
    result = polling.check_selected(user["operator"], [row.id])
    assert result.counts["failed"] == 1
    assert "client certificate" in " ".join(result.problems).lower()
    done = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices())
    assert done.outcomes[0].result != "done"
    assert "client certificate" in done.outcomes[0].message.lower()
    db.session.refresh(row)
    assert row.status == "ACTIVE"
    _spec(account, client_cert_required_for_all=False)
    assert account.status(row.ca_order_id) == "ACTIVE"


def credentials_sync(user, cred):
    from webapp.catalog import service as catalog

    job = catalog.start_sync(user["operator"], [cred.id], catalog.KINDS)
    db.session.refresh(job)
    return job


# --- 9.4 the spec's other revocation reasons --------------------------------------------------


@pytest.mark.parametrize("others", [False, True])
def test_revoke_under_the_spec_reasons(account, user, others):
    _spec(account, accept_spec_only_crl_reasons=True)
    settings.put(registry.ENTRUST_ALL_REVOCATION_REASONS, others)
    db.session.commit()
    cred = link_sandbox(user, account)
    row = _order(user, cred)
    reason = "superseded" if others else "keyCompromise"
    result = lifecycle.run(user["admin"], Action.REVOKE, [row.id], lifecycle.Choices(reason=reason))
    assert result.outcomes[0].result == "done", result.outcomes[0].message
    assert account.status(row.ca_order_id) == "REVOKED"
    [revoke] = _posts(account, "/revocations")
    assert revoke["body"]["crlReason"] == reason


def test_the_other_reasons_offered_to_an_account_that_refuses_them_fail_in_words(account, user):
    # The live reading: Admin › Settings says the account accepts every reason, Entrust does not.
    settings.put(registry.ENTRUST_ALL_REVOCATION_REASONS, True)
    db.session.commit()
    cred = link_sandbox(user, account)
    row = _order(user, cred)
    result = lifecycle.run(
        user["admin"], Action.REVOKE, [row.id], lifecycle.Choices(reason="superseded")
    )
    outcome = result.outcomes[0]
    assert outcome.result != "done" and "Entrust refused" in outcome.message, outcome.message
    assert account.status(row.ca_order_id) == "ACTIVE"
    db.session.refresh(row)
    assert row.status == "ACTIVE" and row.phase == "issued"
    assert len(_posts(account, "/revocations")) == 1  # sent once, never again


# --- 9.5 validateOnly on a renewal: ignored or honoured (spec) --------------------------------


def _aged(user, cred, sandbox, days=40) -> Order:
    sandbox.advance_clock(-days)
    row = _order(user, cred)
    sandbox.advance_clock(days)
    return row


@pytest.mark.parametrize("mode", ["ignore", "honour"])
def test_renew_sends_no_validate_only_and_renews(account, user, mode):
    cred = link_sandbox(user, account)
    old = _aged(user, cred, account)
    _spec(account, renew_validate_only=mode)
    expires = successors.page(old, "renew").dates[1]
    account.clear_requests()
    new = successors.renew(
        user["operator"], old, successor_form(old, origin="renew", expires_on=expires)
    )
    assert new.status == "ACTIVE" and new.parent_id == old.id
    [post] = _posts(account, "/renewals")
    assert "validateOnly" not in post["body"]
    assert post["body"]["certExpiryDate"] == expires
    assert account.status(old.ca_order_id) == "RENEWED"


# --- 9.6 no thumbprint endpoint (spec) --------------------------------------------------------


def test_third_party_certificates_without_the_thumbprint_endpoint_say_why(
    app, sandbox, user, operator_client
):
    sandbox.seed(certificates=200, seed=21)  # one of them third-party (tracking ID 0)
    cred = link_sandbox(user, sandbox)
    _spec(sandbox, thumbprint_endpoint=False)
    job = importing.start_import(user["operator"], cred.id, ["expired", "revoked"])
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    result = jobs.result_of(job)
    third = db.session.execute(select(Order).where(Order.third_party.is_(True))).scalars().all()
    assert len(third) == 1 and result["failed"] == 1
    # The orders are imported; the result and each order say why their certificate is missing
    # (it used to be a bare "1 failed", and a 404 read as a wrong base URL).
    assert "thumbprint" in job.message and "base URL" not in job.message
    for row in third:
        assert row.message.startswith("The certificate could not be fetched: ")
        assert "look-up of third-party certificates by thumbprint" in row.message
        assert _count(Certificate, Certificate.order_id == row.id) == 0
        page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
        assert "look-up of third-party certificates by thumbprint" in page
    assert _count(Certificate) == result["certificates"] > 0


# --- 9.7 organizational units under `organizations` (spec) ------------------------------------


def test_organizations_sync_whatever_key_the_units_come_under(account, user):
    _spec(account, all_ous_key="organizations")
    cred = link_sandbox(user, account)
    upstream = account._api_get("organizations")["organizations"]
    names = set(
        db.session.execute(
            select(CatalogOrganization.name).where(CatalogOrganization.kind != CLIENT)
        ).scalars()
    )
    assert names == {o["name"] for o in upstream}
    # The ECS client reads the units under either key.
    with registry.open_connector("entrust", cred.id) as conn:
        units = conn.client.list_organizational_units()
    assert units and all(u.name for u in units)


# --- 9.8 the expiry date as a date only (spec) ------------------------------------------------


def test_an_expiry_date_is_sent_as_a_date_for_orders_and_renewals(account, user):
    _spec(account, accept_datetime_expiry=False)
    cred = link_sandbox(user, account)
    old = _aged(user, cred, account)
    row = _order(user, cred, "shop.example.com", expires_on=_in_days(200))
    assert row.status == "ACTIVE"
    [post] = _posts(account, API + "certificates")[-1:]
    assert post["body"]["certExpiryDate"] == _in_days(200)
    cert = db.session.execute(select(Certificate).where(Certificate.order_id == row.id)).scalar()
    assert cert.not_after.date().isoformat() == _in_days(200)
    expires = successors.page(old, "renew").dates[1]
    new = successors.renew(
        user["operator"], old, successor_form(old, origin="renew", expires_on=expires)
    )
    assert new.status == "ACTIVE"


def _in_days(days: int) -> str:
    from datetime import timedelta

    from webapp.dbtypes import utcnow

    return (utcnow().date() + timedelta(days=days)).isoformat()


# --- 9.9 JSON booleans only (spec) ------------------------------------------------------------


def test_json_booleans_queue_approve_decline_suspend_resume_reissue(account, user):
    _spec(account, accept_string_booleans=False)
    cred = link_sandbox(user, account)
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    checked = placing.validate(user["operator"], sandbox_order_form(cred, csr.id))
    assert checked.ok, checked.message
    [post] = _posts(account, API + "certificates")
    assert post["body"]["validateOnly"] is True
    account.clear_requests()
    pending = _order(user, cred, queue_for_approval=True)
    assert pending.status == "PENDING"
    [post] = _posts(account, API + "certificates")
    assert post["body"]["queueForApproval"] is True and post["body"]["ctLog"] is True
    done = lifecycle.run(user["admin"], Action.APPROVE, [pending.id], lifecycle.Choices())
    assert done.outcomes[0].result == "done", done.outcomes[0].message
    declined = _order(user, cred, "shop.example.com", queue_for_approval=True)
    done = lifecycle.run(
        user["admin"], Action.DECLINE, [declined.id], lifecycle.Choices(reason="not needed")
    )
    assert done.outcomes[0].result == "done", done.outcomes[0].message
    for action in (Action.SUSPEND, Action.RESUME):
        done = lifecycle.run(user["admin"], action, [pending.id], lifecycle.Choices())
        assert done.outcomes[0].result == "done", done.outcomes[0].message
    db.session.refresh(pending)
    new_csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    new = successors.reissue(user["operator"], pending, successor_form(pending, csr_id=new_csr.id))
    assert new.status == "ACTIVE"


# --- 9.10 an empty certificate search is a 404 ------------------------------------------------


def test_empty_searches_as_404(account, user):
    _spec(account, empty_search_404=True)
    cred = link_sandbox(user, account)
    # An account with no orders yet: the import's first page is a 404.
    job = importing.start_import(user["operator"], cred.id, list(importing.DEFAULT_EXCLUSIONS))
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    assert jobs.result_of(job)["new"] == 0
    assert _list_answers(account) == [404]
    row = _order(user, cred, queue_for_approval=True)
    lifecycle.run(user["admin"], Action.DECLINE, [row.id], lifecycle.Choices(reason="no"))
    # The declined order is left out of the list, so its search is empty (404); Check Order
    # Status reads it on its own.
    account.clear_requests()
    result = polling.check_selected(user["operator"], [row.id])
    db.session.refresh(row)
    assert row.status == "DECLINED" and row.phase == "declined", result.summary()
    assert _list_answers(account) == [404]


def test_an_order_whose_answer_was_lost_settles_when_the_search_is_a_404(account, user):
    _spec(account, empty_search_404=True)
    cred = link_sandbox(user, account)
    account.faults([{"kind": "http_502", "method": "POST", "path": API + "certificates"}])
    row = _order(user, cred)
    account.clear_faults()
    assert row.placement == "unknown"
    later = row.attempted_at + registry.answer_deadline("entrust")
    assert settling.reconcile_due("scheduler", now=later) == {
        "found": 0,
        "not_placed": 1,
        "unsettled": 0,
    }
    assert 404 in _list_answers(account)
    again = placing.place_again(user["operator"], row)
    assert again.placement == "placed" and again.phase == "issued"


def _list_answers(sandbox) -> list:
    return [
        r["status"]
        for r in sandbox.requests()
        if r["method"] == "GET" and r["path"].rstrip("/").endswith(API + "certificates")
    ]


# --- 9.11 a pending client as "Pending" (spec example) ----------------------------------------


def test_a_pending_client_written_pending_is_synced_as_pending(account, user):
    _spec(account, mixed_case_pending_client=True)
    assert "Pending" in {
        c.get("verificationStatus") for c in account._api_get("clients")["clients"]
    }
    link_sandbox(user, account)
    statuses = {
        o.client_id: o.verification_status
        for o in db.session.execute(
            select(CatalogOrganization).where(CatalogOrganization.kind == CLIENT)
        ).scalars()
    }
    assert "PENDING" in statuses.values() and "Pending" not in statuses.values()


# --- 12 the list shows APPROVED and DECLINED orders ------------------------------------------


def test_a_list_that_shows_declined_orders(account, user):
    _spec(account, list_hides_approved_declined=False)
    cred = link_sandbox(user, account)
    row = _order(user, cred, queue_for_approval=True)
    lifecycle.run(user["admin"], Action.DECLINE, [row.id], lifecycle.Choices(reason="no"))
    account.clear_requests()
    polling.check_selected(user["operator"], [row.id])
    db.session.refresh(row)
    assert row.status == "DECLINED"
    db.session.execute(Order.__table__.delete())
    db.session.commit()
    job = importing.start_import(user["operator"], cred.id, [])
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    assert jobs.result_of(job)["new"] == 1


# --- the pages, under every spec reading at once ----------------------------------------------

ALL_SPEC = {
    "domain_status_key": "status",
    "inventory_key": "inventory",
    "all_ous_key": "organizations",
    "accept_datetime_expiry": False,
    "accept_string_booleans": False,
    "empty_search_404": True,
    "mixed_case_pending_client": True,
    "list_hides_approved_declined": False,
    "thumbprint_endpoint": False,
    "renew_validate_only": "honour",
    "accept_spec_only_crl_reasons": True,
}


def test_the_manage_tabs_and_test_login_under_every_spec_reading(account, user, admin_client):
    _spec(account, **ALL_SPEC)
    cred = link_sandbox(user, account)
    domains = admin_client.get("/entrust/manage/domains").get_data(as_text=True)
    assert "example.com" in domains and "APPROVED" in domains.upper()
    products = admin_client.get("/entrust/manage/products").get_data(as_text=True)
    assert "STANDARD_SSL" in products or "Standard SSL" in products
    orgs = admin_client.get("/entrust/manage/organizations?status=PENDING").get_data(as_text=True)
    assert "Pending Holdings" in orgs
    page = admin_client.post(f"/entrust/manage/credentials/{cred.id}/test", follow_redirects=True)
    assert page.status_code == 200 and "ECS API version" in page.get_data(as_text=True)
    _spec(account, client_cert_required_for_all=True)
    page = admin_client.post(f"/entrust/manage/credentials/{cred.id}/test", follow_redirects=True)
    assert page.status_code == 200
    assert "Client certificate required" in page.get_data(as_text=True)


def test_every_flow_under_every_spec_reading(account, user):
    _spec(account, **ALL_SPEC)
    settings.put(registry.ENTRUST_ALL_REVOCATION_REASONS, True)
    db.session.commit()
    cred = link_sandbox(user, account)
    old = _aged(user, cred, account)
    dated = _order(user, cred, "shop.example.com", expires_on=_in_days(100))
    pending = _order(user, cred, "mail.example.com", queue_for_approval=True)
    refused = _order(user, cred, "api.example.com", queue_for_approval=True)

    def run(action, row, **choices):
        done = lifecycle.run(user["admin"], action, [row.id], lifecycle.Choices(**choices))
        assert done.outcomes[0].result == "done", done.outcomes[0].message

    run(Action.APPROVE, pending)
    run(Action.DECLINE, refused, reason="not needed")
    run(Action.SUSPEND, dated)
    run(Action.RESUME, dated)
    new_csr = csrs.create_csr(user["operator"], "p256", {"CN": "shop.example.com"}, "")
    db.session.refresh(dated)
    reissued = successors.reissue(user["operator"], dated, successor_form(dated, csr_id=new_csr.id))
    expires = successors.page(old, "renew").dates[1]
    renewed = successors.renew(
        user["operator"], old, successor_form(old, origin="renew", expires_on=expires)
    )
    db.session.refresh(pending)
    run(Action.REVOKE, pending, reason="superseded")
    rows = [old, dated, pending, refused, reissued, renewed]
    polling.check_selected(user["operator"], [r.id for r in rows])
    for r in rows:
        db.session.refresh(r)
    statuses = [r.status for r in rows]
    assert statuses == ["RENEWED", "REISSUED", "REVOKED", "DECLINED", "ACTIVE", "ACTIVE"]
    assert [account.status(r.ca_order_id) for r in rows if r is not refused] == [
        s for s in statuses if s != "DECLINED"
    ]
    # Import Existing Orders finds them all again, changed nothing, and failed nothing.
    job = importing.start_import(user["operator"], cred.id, [])
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    result = jobs.result_of(job)
    assert (result["new"], result["updated"], result["failed"]) == (0, 0, 0), job.message
    assert result["unchanged"] == len(rows)
