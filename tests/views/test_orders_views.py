"""SSL > Entrust pages: the orders table (search, filters, sorts, the pager), an order's page, the
Order Certificate form (the guide's labels, errors next to the fields), Check Order Status, Import
Existing Orders, the notices of status changes, and who may do what; with and without htmx."""

from __future__ import annotations

import html
import io
import json
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import link_sandbox
from tests.helpers import HTMX, make_order, planned_rows
from webapp import housekeeping, paging, search
from webapp.certificates.models import Certificate
from webapp.credentials import service as credentials_service
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.ecs.types import CertificateStatus
from webapp.extensions import db
from webapp.orders import checks, queries
from webapp.orders.models import Order, OrderEvent


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def orders(app):
    now = utcnow()
    rows = [
        make_order(
            "5000010",
            "ACTIVE",
            "issued",
            common_name="www.example.com",
            sans="www.example.com,example.com",
            product="STANDARD_SSL",
            organization="CertDesk Demo Corp",
            requester_name="Ann Admin",
            expires_at=now + timedelta(days=20),
        ),
        make_order(
            "5000002",
            "PENDING",
            "pending",
            common_name="queue.example.com",
            product="EV_SSL",
            requester_name="Omar Haddad",
        ),
        make_order(
            "5000300",
            "EXPIRED",
            "expired",
            common_name="old.example.org",
            product="STANDARD_SSL",
            expires_at=now - timedelta(days=3),
        ),
        make_order(
            None,
            "",
            "",
            placement="unknown",
            common_name="lost.example.com",
            request_id="certdesk:lost",
            attempted_at=now,
            next_check_at=now,
        ),
        make_order(
            None,
            "",
            "",
            placement="not_placed",
            common_name="never.example.com",
            request_id="certdesk:never",
        ),
    ]
    return rows


def _rows(html: str) -> int:
    return html.count('<tr data-order="')


def test_the_table_lists_every_order_with_its_status_in_words(auditor_client, orders):
    page = auditor_client.get("/entrust/").get_data(as_text=True)
    assert _rows(page) == 5
    for text in (
        "5000010",
        "www.example.com",
        "EV_SSL",
        "Checking with Entrust",
        "Not placed",
        "Stand-in",
        "Ann Admin",
    ):
        assert text in page
    assert 'href="/entrust/manage/"' in page  # Manage
    assert "Order Certificate" not in page  # auditors read
    # Default order: by expiry; the expired one first.
    assert page.index("old.example.org") < page.index("www.example.com")
    # Each row shows its expiry day, the expired one marked in words as well as in colour, and
    # its SANs.
    issued, expired = orders[0], orders[2]
    assert f"<span>{issued.expires_at:%Y-%m-%d}</span>" in page
    assert (
        f'<span class="expiry-expired">{expired.expires_at:%Y-%m-%d}</span>'
        ' <small class="expiry-expired">expired</small>'
    ) in page
    assert page.count(">expired</small>") == 1
    assert '<small class="muted">www.example.com, example.com</small>' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=PENDING", {"queue.example.com"}),
        ("status=%40unknown", {"lost.example.com"}),
        ("status=%40not_placed", {"never.example.com"}),
        ("product=STANDARD_SSL", {"www.example.com", "old.example.org"}),
        ("expiring=30", {"www.example.com"}),
        ("q=omar", {"queue.example.com"}),  # the requester's name starts with it
        ("q=HADDAD", {"queue.example.com"}),  # ... or ends with it, in any case
        ("q=5000300", {"old.example.org"}),
        ("q=50000", {"www.example.com", "queue.example.com"}),  # tracking IDs that start so
        ("q=50%25", set()),  # taken literally, not as a pattern
        ("q=example.org", {"old.example.org"}),  # a name that ends with it
        ("q=www.example", {"www.example.com"}),  # a name that starts with it
        (
            "q=example.com",
            {"www.example.com", "queue.example.com", "lost.example.com", "never.example.com"},
        ),
        ("q=xample", set()),  # inside a name: neither its start nor its end
    ],
)
def test_filters_and_search(auditor_client, orders, query, expected):
    page = auditor_client.get(f"/entrust/?{query}").get_data(as_text=True)
    names = {o.common_name for o in orders if f'data-order="{o.id}"' in page}
    assert names == expected
    if not expected:
        assert "No orders match these filters." in page


def test_a_serial_number_is_found_as_openssl_prints_it(auditor_client, orders):
    """Entrust gives the serial without leading zeros (D881...); openssl x509 -text prints
    00:d8:81:..., the form a user copies from a certificate: both find the order, as they find
    its certificate in SSL > Certificates."""
    serial = "D881F20CB923DCEA3057D6E954B96B"
    make_order("5000777", "ACTIVE", "issued", common_name="serial.example.com", serial=serial)
    pairs = ":".join(("00" + serial)[i : i + 2] for i in range(0, len(serial) + 2, 2))
    for q in (serial, serial.lower(), pairs, pairs.upper(), pairs[:14]):
        page = auditor_client.get("/entrust/", query_string={"q": q}).get_data(as_text=True)
        assert len(set(re.findall(r'data-order="(\d+)"', page))) == 1, q
    page = auditor_client.get("/entrust/", query_string={"q": pairs}).get_data(as_text=True)
    assert "serial.example.com" in page
    # Only a colon-separated serial drops its leading zeros: "0500" is not "500".
    page = auditor_client.get("/entrust/", query_string={"q": "05000"}).get_data(as_text=True)
    assert "No orders match these filters." in page


def test_the_status_filter_offers_every_status_entrust_gives_an_order(auditor_client):
    """Each of ECS's certificate statuses can be chosen (an import brings in orders in any of
    them), third-party certificates' UNKNOWN aside, with CertDesk's own states after them."""
    page = auditor_client.get("/entrust/").get_data(as_text=True)
    select = page[page.index('<select name="status"') :]
    select = select[: select.index("</select>")]
    for status in CertificateStatus:
        if status is not CertificateStatus.UNKNOWN:
            assert f'<option value="{status.value}"' in select, status
    assert '<option value="@unknown"' in select


def test_the_product_filter_offers_the_products_of_the_orders_and_the_accounts(
    auditor_client, orders
):
    """Not every product Entrust has: those some order is of, and those a linked account sells
    (none is synced here)."""

    def offered():
        page = auditor_client.get("/entrust/").get_data(as_text=True)
        select = page[page.index('<select name="product"') :]
        return re.findall(r'<option value="([^"]+)"', select[: select.index("</select>")])

    assert offered() == ["EV_SSL", "STANDARD_SSL"]
    make_order("5000099", common_name="code.example.com", product="CODE_SIGNING")
    assert offered() == ["CODE_SIGNING", "EV_SSL", "STANDARD_SSL"]


def test_sorting_and_htmx_results(auditor_client, orders):
    page = auditor_client.get("/entrust/?sort=tracking&dir=desc").get_data(as_text=True)
    assert page.index("5000300") < page.index("5000010") < page.index("5000002")
    fragment = auditor_client.get("/entrust/?sort=cn", headers=HTMX).get_data(as_text=True)
    assert "<html" not in fragment and 'id="orders-table"' in fragment
    assert fragment.index("lost.example.com") < fragment.index("www.example.com")


def test_the_pager_stops_counting_at_the_cap(auditor_client, orders, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 3)
    capped = queries.page_of(queries.OrderFilter(), 1, 2)
    assert (capped.total, capped.exact, capped.has_next) == (3, False, True)  # more than 3
    # A page's worth is always counted: five rows shown are "of 5", never "of more than 3".
    page = auditor_client.get("/entrust/?per_page=25").get_data(as_text=True)
    assert "1–5 of 5" in page and _rows(page) == 5
    first = auditor_client.get("/entrust/?sort=cn").get_data(as_text=True)
    assert "Next" not in first
    monkeypatch.setattr(paging, "COUNT_CAP", 10)
    result = queries.page_of(queries.OrderFilter(), 2, 2)
    assert (result.total, result.exact, result.pages, result.has_next) == (5, True, 3, True)
    assert (result.first_index, result.last_index) == (3, 4)


def test_an_order_page_shows_fields_history_and_what_to_do(operator_client, orders):
    issued, _pending, _expired, lost, never = orders
    db.session.add(
        OrderEvent(
            order_id=issued.id,
            kind="imported",
            new_status="ACTIVE",
            message="Imported from Entrust.",
            actor_name="operator",
        )
    )
    db.session.commit()
    page = operator_client.get(f"/entrust/{issued.id}").get_data(as_text=True)
    for text in (
        "5000010",
        "www.example.com",
        "STANDARD_SSL",
        "Imported from Entrust.",
        "Check Order Status",
        "not in SSL › Certificates yet",
    ):
        assert text in page
    lost_page = operator_client.get(f"/entrust/{lost.id}").get_data(as_text=True)
    assert "answer to this order was lost" in lost_page and "Check with Entrust now" in lost_page
    never_page = operator_client.get(f"/entrust/{never.id}").get_data(as_text=True)
    assert "Not placed." in never_page and "Place it again" in never_page
    assert operator_client.get("/entrust/999999").status_code == 404


@pytest.mark.parametrize("off", ["disabled", "deleted"])
def test_an_order_of_an_unusable_credential_promises_no_check(operator_client, orders, off):
    """The scheduled checks leave out the orders of a disabled or deleted credential: their
    page names no time of a next check or of settling, and says what would bring it back."""
    issued, _pending, _expired, lost, _never = orders
    issued.next_check_at = utcnow() + timedelta(hours=2)
    db.session.commit()
    before = operator_client.get(f"/entrust/{issued.id}").get_data(as_text=True)
    assert "next check" in before
    assert "and settles it by" in operator_client.get(f"/entrust/{lost.id}").get_data(as_text=True)
    cred = issued.credential
    if off == "disabled":
        cred.enabled = False
    else:
        cred.deleted_at = utcnow()
    db.session.commit()
    page = operator_client.get(f"/entrust/{issued.id}").get_data(as_text=True)
    said = page.split('id="next-check">')[1].split("</small>")[0]
    assert "next check" not in said
    if off == "disabled":
        assert said == "no check until its credential is enabled again"
    else:
        assert said == "no more checks: its credential was deleted"
    unsettled = operator_client.get(f"/entrust/{lost.id}").get_data(as_text=True)
    notice = unsettled.split('id="order-unsettled"')[1].split("</p>")[0]
    assert "and settles it by" not in notice
    assert ("once its credential is enabled again" in notice) is (off == "disabled")
    # A deleted credential can never be asked: no search is promised, nor a button for one.
    gone = "CertDesk can no longer search Entrust for it: its credential was deleted."
    assert (gone in notice) is (off == "deleted")
    assert ("Check with Entrust now" in unsettled) is (off == "disabled")


def test_an_order_being_sent_says_what_happens_if_no_answer_comes(operator_client, orders):
    """An order whose call to Entrust is under way, or was when CertDesk stopped (the page
    cannot tell which): its page names when the answer is due and what CertDesk does if none
    comes, and does not claim that CertDesk is waiting for it."""
    now = utcnow()
    row = make_order(
        None,
        "",
        "",
        placement="intent",
        common_name="sending.example.com",
        request_id="certdesk:sending",
        attempted_at=now,
        next_check_at=now + timedelta(minutes=5),
    )
    page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    notice = page.split('id="order-sending"')[1].split("</article>")[0]
    assert "is waiting for" not in notice and "Being sent" not in notice
    assert "expects Entrust's answer by" in notice
    assert "Should none come by then (CertDesk may have stopped meanwhile)" in notice
    assert "Do not order the same certificate again meanwhile." in notice


def _no_credential(client, path: str) -> str:
    """The words of the page's "no enabled credential" paragraph, without their markup."""
    page = client.get(path).get_data(as_text=True)
    words = re.search(r'<p id="no-credential">(.*?)</p>', page, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", words).split())


def test_the_order_form_without_a_credential_says_what_to_do(operator_client):
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    assert "no enabled Entrust credential" in page


@pytest.mark.parametrize("path", ["/entrust/new", "/entrust/import", "/entrust/"])
def test_without_an_enabled_credential_each_role_is_told_what_to_do(
    admin_client, operator_client, user, sandbox, path
):
    # No credential: an administrator links one; an operator, who cannot, is told who can.
    assert "Link your Entrust account in SSL › Entrust › Manage first." in _no_credential(
        admin_client, path
    )
    words = _no_credential(operator_client, path)
    assert "An administrator links your Entrust account in SSL › Entrust › Manage" in words
    # A disabled credential is enabled again, not linked anew.
    cred = link_sandbox(user, sandbox)
    credentials_service.set_enabled(user["admin"], cred, False)
    words = _no_credential(admin_client, path)
    assert "The credential Sandbox is disabled: click Enable in its row" in words
    assert "Link your" not in words
    words = _no_credential(operator_client, path)
    assert "The credential Sandbox is disabled: an administrator enables it" in words


@pytest.fixture
def linked(app, user, sandbox, fast_clients):
    sandbox.seed(certificates=0, seed=2, api_mandatory=("text2",))  # "Application"
    cred = link_sandbox(user, sandbox)
    return cred


GUIDE_LABELS = (
    "Credential Name",
    "Organization",
    "Product",
    "Domain",
    "Extended Key Usage",
    "CSR",
    "Private Key",
    "Private Key Password",
    "Signature Algorithm",
    "Expiration Date",
    "Certificate Friendly Name",
    "Requester Name",
    "Requester Email",
    "Requester Phone",
    "I agree to queue the request for Entrust Administrator approval",
    "I agree to send the certificate content for CT Logs",
    "Validate",
    "Order Certificate",
)


def test_the_order_form_uses_the_guides_labels_and_the_credentials_choices(operator_client, linked):
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    for label in GUIDE_LABELS:
        assert label in page, label
    assert "CertDesk Demo Corp" in page and "Example Subsidiary Ltd" in page
    assert "Future Ventures" not in page  # pending, not approved
    assert "STANDARD_SSL (up to 398 days)" in page and "PD_SSL" not in page  # no inventory
    assert "expiring.example" in page and "pending.example" not in page
    assert "Application" in page and "Environment" in page  # the account's custom fields
    fragment = operator_client.get(f"/entrust/new/choices?credential_id={linked.id}", headers=HTMX)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and "CertDesk Demo Corp" in body and "Application" in body


def test_the_order_forms_help_is_read_with_its_field_and_says_what_is_needed(
    operator_client, linked
):
    """A screen reader reads each field's help with the field (aria-describedby), and the form
    says which fields are needed; no unnamed group is left around the credential."""
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    for field, hint in (("domain", "domain-hint"), ("sans", "sans-hint")):
        tag = re.search(rf'<(?:select|textarea) name="{field}"[^>]*>', page).group(0)
        assert f'aria-describedby="{hint}"' in tag, tag
        assert f'<small id="{hint}">' in page
    date = re.search(r'<input type="date" name="expires_on"[^>]*>', page).group(0)
    assert 'aria-describedby="expires-on-hint"' in date
    assert "Credential Name, Organization, Product and a CSR are needed" in page
    form = page.split('id="order-form"')[1]
    assert form.count("<fieldset") == form.count("<legend")


def test_choices_loaded_again_fill_in_the_custom_fields_the_account_still_has(
    operator_client, linked
):
    """The order form's choices loaded again with what was typed in its custom fields (Back to
    the form): each field the account has shows it again; a field it no longer has is not
    shown, nor a value carried for it."""
    fragment = operator_client.get(
        "/entrust/new/choices",
        query_string={
            "credential_id": linked.id,
            "product": "UC_SSL",
            "custom_text1": "CC-4711",
            "custom_dropdown1": "staging",
            "custom_text9": "not the account's",
        },
        headers=HTMX,
    )
    body = fragment.get_data(as_text=True)
    assert 'id="custom_text1" value="CC-4711"' in body
    assert '<option value="staging" selected>' in body
    assert '<option value="UC_SSL" data-max=' in body and "UC_SSL (up to" in body
    assert re.search(r'<option value="UC_SSL" data-max="[\d-]+" selected>', body)
    assert "custom_text9" not in body and "not the account" not in body


def test_the_order_form_starts_on_a_way_of_giving_a_csr_that_can_work(
    operator_client, linked, user
):
    def checked(page: str) -> list[str]:
        return re.findall(r'name="csr_source" value="(\w+)" checked', page)

    # No CSR made in CertDesk yet: a new key pair and CSR, not an empty list.
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    assert checked(page) == ["new"] and "No unused CSRs made in CertDesk" in page
    # With CSRs to choose from, still a new key pair for the names typed (the README's way),
    # unless the form was opened for a CSR.
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    assert checked(page) == ["new"] and f"CSR #{csr.id}</option>" in page
    page = operator_client.get(f"/entrust/new?csr_id={csr.id}").get_data(as_text=True)
    assert checked(page) == ["certdesk"] and f'<option value="{csr.id}" selected>' in page
    # Once a certificate holds its key, the CSR is used: no longer offered.
    assert _post(operator_client, linked, csr.id).status_code == 303
    assert db.session.execute(select(Certificate.id)).scalar() is not None
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    assert f"CSR #{csr.id}</option>" not in page and "No unused CSRs made in CertDesk" in page


def _post(client, cred, csr_id, **extra):
    data = {
        "credential_id": cred.id,
        "organization": "1:CertDesk Demo Corp",
        "product": "STANDARD_SSL",
        "eku": "SERVER_AND_CLIENT_AUTH",
        "csr_source": "certdesk",
        "csr_id": csr_id,
        "signature_algorithm": "SHA-2",
        "requester_name": "Ann Admin",
        "requester_email": "ann@example.com",
        "custom_text2": "portal",
        "ct_log": "1",
        "action": "order",
    }
    data.update(extra)
    return client.post("/entrust/new", data=data)


def test_custom_fields_that_cannot_be_read_stop_the_order_rather_than_vanish(
    operator_client, linked, user, sandbox
):
    """The account's custom fields are read again when the order is sent. If Entrust does not
    answer that read, the values typed into them (Cost center, Application) would be left out of
    the order: CertDesk says so and sends nothing instead."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    checks.clear_cache()  # the form was shown more than a few minutes ago
    sandbox.faults([{"kind": "http_500", "method": "GET", "path": "/enterprise/v2/customFields"}])
    try:
        resp = _post(operator_client, linked, csr.id, custom_text1="CC-42")
    finally:
        sandbox.clear_faults()
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "custom fields could not be read" in page and "Nothing was ordered" in page
    assert 'id="form-error"' in page
    assert '<input type="hidden" name="custom_text1" value="CC-42">' in page  # kept for next time
    sent = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert sent == [] and _count(Order) == 0


def test_custom_fields_entrust_did_not_give_are_not_waited_for_again_at_once(
    operator_client, linked, user, sandbox
):
    """Each read of the custom fields is tried a few times, each try up to the read timeout.
    When the form could not read them, sending it (or showing it again) a moment later does not
    wait all that time once more before the order itself is sent."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    checks.clear_cache()
    sandbox.clear_requests()
    sandbox.faults([{"kind": "http_500", "method": "GET", "path": "/enterprise/v2/customFields"}])
    try:
        page = operator_client.get("/entrust/new").get_data(as_text=True)
        assert "custom fields could not be read" in page
        tries = len([r for r in sandbox.requests() if r["path"].endswith("/customFields")])
        assert tries > 1  # retried, as every read is
        assert "custom fields could not be read" in operator_client.get("/entrust/new").text
        resp = _post(operator_client, linked, csr.id, custom_text2="")
    finally:
        sandbox.clear_faults()
    reads = [r for r in sandbox.requests() if r["path"].endswith("/customFields")]
    assert len(reads) == tries
    # The order went to Entrust, which says what it misses (the account requires Application).
    assert resp.status_code == 422 and "Nothing was ordered" in resp.get_data(as_text=True)
    # A minute on, the fields are read again.
    with checks._cache_lock:
        for key, (_expiry, *rest) in list(checks._custom_cache.items()):
            checks._custom_cache[key] = (0.0, *rest)
    assert 'name="custom_text2"' in operator_client.get("/entrust/new").get_data(as_text=True)


def test_a_hanging_entrust_holds_the_order_form_for_two_short_tries_only(
    operator_client, linked, sandbox, monkeypatch
):
    """The form waits for the custom fields before it is shown: a read that hangs is given up
    after the interactive cap (not the read timeout of Settings) and tried twice, not four
    times, so the page answers in seconds rather than minutes."""
    from webapp.credentials import clients
    from webapp.settings import service as settings

    settings.put(clients.READ_TIMEOUT, 3)
    db.session.commit()
    monkeypatch.setattr(clients, "INTERACTIVE_TIMEOUT_CAP", 0.5)
    checks.clear_cache()
    sandbox.clear_requests()
    sandbox.faults(
        [{"kind": "timeout", "ms": 4000, "method": "GET", "path": "/enterprise/v2/customFields"}]
    )
    try:
        started = time.monotonic()
        page = operator_client.get("/entrust/new").get_data(as_text=True)
        waited = time.monotonic() - started
    finally:
        sandbox.clear_faults()
    assert "custom fields could not be read" in page and 'name="sans"' in page
    reads = [r for r in sandbox.requests() if r["path"].endswith("/customFields")]
    assert len(reads) == clients.INTERACTIVE_GET_ATTEMPTS == 2
    # Two tries of 0.5 s and a pause between them; tries of the 3 s read timeout would take
    # over 6 s. The bound leaves room for a busy machine.
    assert waited < 5.0, waited


def test_the_expiration_date_runs_from_tomorrow_to_the_products_longest(
    operator_client, linked, user, sandbox
):
    """Today is refused (a certificate ending the day it is ordered), as is a day past what the
    product allows; tomorrow and the last day allowed are ordered, with that date."""
    today = utcnow().date()
    latest = today + timedelta(days=398)  # STANDARD_SSL
    for day, said in (
        (today, "The expiration date must be after today."),
        (latest + timedelta(days=1), f"choose {latest.isoformat()} or earlier"),
    ):
        csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
        resp = _post(operator_client, linked, csr.id, expires_on=day.isoformat())
        assert resp.status_code == 422 and said in resp.get_data(as_text=True), day
    assert _count(Order) == 0
    for day in (today + timedelta(days=1), latest):
        csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
        sandbox.clear_requests()
        resp = _post(operator_client, linked, csr.id, expires_on=day.isoformat())
        assert resp.status_code == 303, resp.get_data(as_text=True)
        [post] = [r for r in sandbox.requests() if r["method"] == "POST"]
        assert post["body"]["certExpiryDate"] == day.isoformat(), post["body"]


def test_an_order_past_its_expiry_not_read_since_is_not_expiring_soon(auditor_client, orders):
    """An issued order whose certificate expired since its last check (its credential disabled,
    say) is not listed as "expiring within 30 days": it has expired."""
    make_order(
        "5000400",
        "ACTIVE",
        "issued",
        common_name="lapsed.example.com",
        expires_at=utcnow() - timedelta(days=3),
    )
    page = auditor_client.get("/entrust/?expiring=30").get_data(as_text=True)
    assert "www.example.com" in page and "lapsed.example.com" not in page


def test_bad_input_shows_next_to_its_field_and_stores_nothing(
    operator_client, linked, user, sandbox
):
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    resp = _post(operator_client, linked, csr.id, sans="www.example.com www.elsewhere.example")
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'id="sans-error"' in page and "www.elsewhere.example" in page
    assert 'aria-invalid="true" aria-describedby="sans-error sans-hint"' in page
    assert _count(Order) == 0
    resp = _post(operator_client, linked, csr.id, requester_email="not an address")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="requester_email-error"' in page
    assert 'aria-describedby="requester_email-error"' in page and 'value="not an address"' in page
    # Accents before the @: Entrust takes ASCII addresses only; said here, nothing sent.
    resp = _post(operator_client, linked, csr.id, additional_emails="jöhn@example.com")
    assert resp.status_code == 422
    assert "Not an e-mail address: jöhn@example.com" in resp.get_data(as_text=True)
    assert _count(Order) == 0
    resp = operator_client.post(
        "/entrust/new",
        data={
            "credential_id": linked.id,
            "organization": "1:CertDesk Demo Corp",
            "product": "STANDARD_SSL",
            "csr_source": "certdesk",
            "csr_id": csr.id,
            "requester_email": "ann@example.com",
            "action": "order",
        },
        headers=HTMX,
    )
    assert resp.status_code == 422 and 'id="custom_text2-error"' in resp.get_data(as_text=True)
    resp = _post(operator_client, linked, csr.id, signature_algorithm="SHA-1")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="signature_algorithm-error"' in page
    assert "PRIVATE_SSL only" in page
    # Entrust's own refusal lands next to its field too: the domain was declined at Entrust
    # since the last sync.
    sandbox.set_domain_status("example.com", "DECLINED", client_id=1)
    resp = _post(operator_client, linked, csr.id)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="sans-error"' in page and "www.example.com" in page
    assert _count(Order) == 0


def test_a_custom_field_made_required_at_entrust_is_on_the_form_once_entrust_refuses(
    operator_client, linked, user, sandbox
):
    """The account's custom fields are kept a few minutes once read. An Entrust administrator
    adds one and makes it mandatory meanwhile: Entrust refuses the order naming it, and the form
    shown again has that field, marked required, with Entrust's message beside it (not a message
    for a field the form does not show, for minutes); filled in, the order goes through."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    page = operator_client.get(f"/entrust/new?credential_id={linked.id}").get_data(as_text=True)
    assert 'name="custom_text2"' in page and 'name="custom_text3"' not in page  # read and kept
    sandbox.set_custom_field("text3", enabled=True, label="Owner team", mandatory="BOTH", order=5)
    resp = _post(operator_client, linked, csr.id)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and _count(Order) == 0
    assert 'id="custom_text3-error"' in page and "Owner team (text3) is required" in page
    label = page.split('<label for="custom_text3">')[1].split("</label>")[0]
    assert "(required)" in label
    assert re.search(r'<input[^>]*name="custom_text3"[^>]*required', page)
    resp = _post(operator_client, linked, csr.id, custom_text3="platform")
    assert resp.status_code == 303 and _count(Order) == 1


def _custom_reads(sandbox) -> int:
    return sum(1 for r in sandbox.requests() if r["path"].endswith("/customFields"))


def test_a_custom_field_entrust_no_longer_requires_is_not_required_by_certdesk(
    operator_client, linked, user, sandbox
):
    """The account's custom fields are kept a few minutes once read. An Entrust administrator
    makes a required one optional meanwhile: an order that leaves it empty is not refused by
    CertDesk on the list it kept. The list is read again (once) before CertDesk refuses an
    order over nothing but required fields left empty, and the order goes through."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    page = operator_client.get(f"/entrust/new?credential_id={linked.id}").get_data(as_text=True)
    label = page.split('<label for="custom_text2">')[1].split("</label>")[0]
    assert "(required)" in label  # read and kept: Application is required
    sandbox.set_custom_field(
        "text2", enabled=True, label="Application", mandatory="NOT_MANDATORY", order=2
    )
    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id, custom_text2="")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert _count(Order) == 1
    assert _custom_reads(sandbox) == 1
    posts = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert len(posts) == 1  # one order, sent once

    # The list read again is the one kept: the form no longer marks the field required.
    page = operator_client.get(f"/entrust/new?credential_id={linked.id}").get_data(as_text=True)
    label = page.split('<label for="custom_text2">')[1].split("</label>")[0]
    assert "(required)" not in label


def test_a_required_custom_field_left_empty_is_refused_after_one_read_of_the_list(
    operator_client, linked, user, sandbox
):
    """Still required at Entrust: the list read again says so, and the order is refused
    without being sent. A form refused for anything else as well, or one that passes, does not
    read the list again."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    operator_client.get(f"/entrust/new?credential_id={linked.id}")  # the list read and kept
    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id, custom_text2="")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and _count(Order) == 0
    assert 'id="custom_text2-error"' in page and "Application is required" in page
    assert _custom_reads(sandbox) == 1
    assert not [r for r in sandbox.requests() if r["method"] == "POST"]

    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id, custom_text2="", requester_email="not-mail")
    assert resp.status_code == 422 and _count(Order) == 0
    assert _custom_reads(sandbox) == 0

    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id)
    assert resp.status_code == 303 and _count(Order) == 1
    assert _custom_reads(sandbox) == 0


def test_every_problem_of_one_sending_is_shown_at_once_in_the_forms_order(
    operator_client, linked, user, sandbox
):
    """Five fields wrong: one sending names all five, next to their fields, the first one in
    the page the one the focus goes to (static/js/app.js), and nothing is stored or sent."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    sandbox.clear_requests()
    for action in ("order", "validate"):
        resp = _post(
            operator_client,
            linked,
            csr.id,
            action=action,
            organization="1:No Such Organization",
            sans="www.example.com www.elsewhere.example",
            expires_on="2001-01-01",
            friendly_name="x" * 256,
            requester_email="not an address",
            custom_text2="",
        )
        page = resp.get_data(as_text=True)
        assert resp.status_code == 422, action
        wrong = re.findall(
            r'<(?:input|select|textarea)[^>]*\bid="(\w+)"[^>]*aria-invalid="true"', page
        )
        assert wrong == [
            "organization",
            "custom_text2",
            "expires_on",
            "friendly_name",
            "requester_email",
        ], action
        for field in wrong:
            assert f'id="{field}-error"' in page, (action, field)
        assert "approved organizations" in page and "must be after today" in page
        assert "Application is required by the account" in page
    assert _count(Order) == 0
    assert [r["path"] for r in sandbox.requests() if r["method"] != "GET"] == []


def test_an_error_of_the_csr_choice_marks_its_choices_which_take_the_focus(operator_client, linked):
    """The page puts the focus on its first field marked wrong (static/js/app.js): an error of
    the choice of a CSR (where it comes from; the CN of the CSR chosen) marks its radio buttons
    and is read with them."""
    resp = _post(operator_client, linked, None, csr_source="elsewhere")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="csr_source-error"' in page
    radios = re.findall(r'<input type="radio" name="csr_source"[^>]*>', page)
    assert len(radios) == 4
    for radio in radios:
        assert 'aria-invalid="true" aria-describedby="csr_source-error"' in radio, radio
    first_wrong = re.search(r'<[^>]*aria-invalid="true"[^>]*>', page).group(0)
    assert 'name="csr_source"' in first_wrong
    assert _count(Order) == 0


def test_a_private_key_pasted_as_the_csr_is_never_shown_again(operator_client, linked):
    from tests.unit.certs.factory import ec_key, key_pem

    secret = key_pem(ec_key()).decode()
    for action in ("validate", "order"):
        resp = _post(
            operator_client, linked, None, csr_source="paste", csr_text=secret, action=action
        )
        page = resp.get_data(as_text=True)
        assert resp.status_code == 422 and "This is a private key, not a CSR" in page, action
        assert secret.split("-----")[2] not in page
    assert _count(Order) == 0


def test_a_private_key_in_any_shape_pasted_in_any_field_is_never_shown_again(
    operator_client, linked
):
    from tests.unit.certs.factory import pasted_private_keys

    for shape, (secret, material) in pasted_private_keys().items():
        for action in ("validate", "order"):
            resp = _post(
                operator_client, linked, None, csr_source="paste", csr_text=secret, action=action
            )
            page = resp.get_data(as_text=True)
            assert not [m for m in material if m in page], (shape, action)
            assert resp.status_code == 422, (shape, action)
            assert 'id="csr-error"' in page and "This is a private key, not a CSR" in page, shape
        # Pasted in a name or a custom field, it is refused before anything is sent to Entrust.
        for field in ("requester_name", "custom_text2"):
            for action in ("validate", "order"):
                resp = _post(operator_client, linked, None, action=action, **{field: secret})
                page = resp.get_data(as_text=True)
                assert not [m for m in material if m in page], (shape, field)
                assert resp.status_code == 400, (shape, field)
                assert f"The form field “{field}” holds a private key" in page, (shape, field)
    assert _count(Order) == 0


def test_validate_then_order_then_the_order_page(operator_client, linked, user):
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "shop.example.com"}, "")
    resp = _post(operator_client, linked, csr.id, action="validate")
    assert resp.status_code == 200
    assert "Validated." in resp.get_data(as_text=True) and _count(Order) == 0
    resp = _post(operator_client, linked, csr.id, friendly_name="Shop front")
    assert resp.status_code == 303
    row = db.session.execute(select(Order)).scalar_one()
    assert resp.headers["Location"].endswith(f"/entrust/{row.id}")
    page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    assert (
        "Certificate issued" in page and "Shop front" in page and 'id="order-certificate"' in page
    )
    # In the list the common name stands under "Common name", the friendly name beneath it.
    listed = operator_client.get("/entrust/").get_data(as_text=True)
    assert '<td class="detail">shop.example.com<br><small>Shop front</small>' in listed
    from webapp.certificates.models import Certificate

    cert = db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()
    cert_page = operator_client.get(f"/certificates/{cert.id}")
    assert f"Entrust order {row.ca_order_id} (ACTIVE)" in cert_page.get_data(as_text=True)
    # The request as sent, named as the form names its fields.
    sent = page.split('id="order-request"')[1].split("</dl>")[0]
    for label, value in (
        ("Extended Key Usage", "SERVER_AND_CLIENT_AUTH"),
        ("CT Logs", "Yes"),
        ("Requester Email", "ann@example.com"),
        ("Signature Algorithm", "SHA-2"),
    ):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in sent, label
    assert "Ct log" not in sent and "True" not in sent
    # The account's custom fields by the labels it gives them, not by their keys.
    assert "<dt>Custom fields</dt><dd>Application: portal<br></dd>" in sent
    assert "text2" not in sent and "Custom labels" not in sent


def _shown_request_id(page: str) -> str:
    found = re.search(r'name="request_id" value="(certdesk:[0-9a-f-]{36})"', page)
    assert found, "the order form carries no request id"
    return found.group(1)


def test_the_same_order_form_sent_twice_places_one_order(operator_client, linked, user, sandbox):
    """A double click, or Back and send again: the form carries the request id it was shown with
    (kept through Validate), so the second sending finds the order the first one placed, says so,
    and sends nothing to Entrust."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "twice.example.com"}, "")
    request_id = _shown_request_id(operator_client.get("/entrust/new").get_data(as_text=True))
    validated = _post(operator_client, linked, csr.id, action="validate", request_id=request_id)
    assert _shown_request_id(validated.get_data(as_text=True)) == request_id
    sandbox.clear_requests()
    first = _post(operator_client, linked, csr.id, request_id=request_id)
    assert first.status_code == 303
    row = db.session.execute(select(Order)).scalar_one()
    assert row.request_id == request_id and row.phase == "issued"
    again = _post(operator_client, linked, csr.id, request_id=request_id)
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    page = operator_client.get(again.headers["Location"]).get_data(as_text=True)
    assert f"This form was sent already: it is order {row.ca_order_id}." in page
    assert _count(Order) == 1
    assert [r["method"] for r in sandbox.requests() if r["method"] == "POST"] == ["POST"]
    # A form opened anew is a new order.
    fresh = _shown_request_id(operator_client.get("/entrust/new").get_data(as_text=True))
    assert fresh != request_id


def _refuse_certificates(on: bool) -> None:
    """The database refuses (or takes again) new rows of the certificate table, as a full disk
    or a lost connection would, through a trigger of the database itself."""
    postgres = db.engine.dialect.name == "postgresql"
    with db.engine.begin() as conn:
        if on and postgres:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_certificate() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'no room for certificates'; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_certificate BEFORE INSERT ON certificate "
                "FOR EACH ROW EXECUTE FUNCTION refuse_certificate()"
            )
        elif on:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_certificate BEFORE INSERT ON certificate "
                "BEGIN SELECT RAISE(ABORT, 'no room for certificates'); END"
            )
        elif postgres:
            conn.exec_driver_sql("DROP TRIGGER refuse_certificate ON certificate")
            conn.exec_driver_sql("DROP FUNCTION refuse_certificate()")
        else:
            conn.exec_driver_sql("DROP TRIGGER refuse_certificate")


def test_an_order_entrust_took_but_certdesk_could_not_record_is_linked_not_lost(
    operator_client, linked, user, sandbox
):
    """Entrust places the order and issues it; storing its certificate fails. The order is not
    shown as refused (which invites ordering it again) nor lost: it waits as "checking with
    Entrust", and the reconciler links it, certificate and all. One order at Entrust."""
    from webapp.orders import settling

    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    sandbox.clear_requests()
    _refuse_certificates(True)
    try:
        resp = _post(operator_client, linked, csr.id)
    finally:
        _refuse_certificates(False)
    assert resp.status_code == 303
    row = db.session.execute(select(Order)).scalar_one()
    assert resp.headers["Location"].endswith(f"/entrust/{row.id}")
    assert row.placement == "unknown" and _count(Certificate) == 0
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Entrust accepted the order as tracking ID" in page
    assert "do not order it again" in page
    settling.reconcile_due("test")
    db.session.expire_all()
    row = db.session.get(Order, row.id)
    assert row.placement == "placed" and row.phase == "issued" and row.ca_order_id
    assert _count(Certificate) == 1
    assert len([r for r in sandbox.requests() if r["method"] == "POST"]) == 1


def test_an_order_with_a_key_and_csr_made_for_it_from_the_form(operator_client, linked):
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    assert 'value="new"' in page and "A new key pair and CSR, made now for the names below" in page
    assert '<option value="rsa2048" selected>RSA 2048</option>' in page
    resp = _post(
        operator_client,
        linked,
        None,
        csr_source="new",
        new_key_type="p384",
        sans="shop.example.com",
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    row = db.session.execute(select(Order)).scalar_one()
    assert row.phase == "issued" and row.csr_id is not None
    csr_page = operator_client.get(f"/csrs/{row.csr_id}").get_data(as_text=True)
    assert "shop.example.com" in csr_page and "P-384" in csr_page


def test_a_form_shown_again_keeps_the_key_type_chosen_for_a_new_key_pair(operator_client, linked):
    for action in ("validate", "order"):
        resp = _post(
            operator_client,
            linked,
            None,
            csr_source="new",
            new_key_type="p384",
            sans="shop.example.com",
            product="",
            action=action,
        )
        page = resp.get_data(as_text=True)
        assert resp.status_code == 422 and 'id="product-error"' in page, action
        assert '<option value="p384" selected>ECDSA P-384</option>' in page, action
        assert '<option value="rsa2048" selected>' not in page, action
    assert _count(Order) == 0


def test_check_order_status_returns_where_it_came_from(operator_client, linked, user):
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "queued.example.com"}, "")
    resp = _post(operator_client, linked, csr.id, queue_for_approval="1")
    row = db.session.execute(select(Order)).scalar_one()
    assert row.status == "PENDING"
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "queued for approval (PENDING): an Entrust administrator approves or declines it" in page
    resp = operator_client.post(
        "/entrust/check", data={"order": [row.id], "next": "/entrust/?status=PENDING"}
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/entrust/?status=PENDING"
    page = operator_client.get("/entrust/?status=PENDING").get_data(as_text=True)
    assert "Check Order Status: 1 checked, no change." in page
    resp = operator_client.post(
        "/entrust/check", data={"order": [row.id], "next": "//evil.example"}
    )
    assert resp.headers["Location"] == "/entrust/"
    # Where to go next is a path on this site, in the characters a URL built here holds.
    for target in ("/x\r\nX-Evil: 1", "/\t/evil.example/x", "/\u3002/evil.example", "/\\evil"):
        resp = operator_client.post("/entrust/check", data={"order": [row.id], "next": target})
        assert resp.status_code == 303 and resp.headers["Location"] == "/entrust/", target
        resp = operator_client.post(
            "/entrust/check", data={"order": [row.id], "next": target}, headers=HTMX
        )
        assert resp.headers["HX-Redirect"] == "/entrust/", target
    resp = operator_client.post("/entrust/check", data={})
    # Worded as every other action on selected orders says it.
    page = operator_client.get("/entrust/").get_data(as_text=True)
    assert "Check Order Status: select the orders first (tick them in the list)." in page


def test_an_order_whose_credential_is_disabled_or_deleted_offers_no_check_it_cannot_make(
    operator_client, admin_client, linked, user
):
    """Nothing is asked of Entrust for an order whose credential is disabled or deleted (the
    scheduler skips it too), so its page offers Check Order Status disabled with the reason and
    shows no next check; before, the button was there and only said "1 could not be checked"."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "queued.example.com"}, "")
    _post(operator_client, linked, csr.id, queue_for_approval="1")
    row = db.session.execute(select(Order)).scalar_one()

    def check_button(page: str) -> str:
        return re.search(r'<button[^>]*id="check-status"[^>]*>', page).group(0)

    page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    assert "disabled" not in check_button(page) and "next check" in page

    credentials_service.set_enabled(user["admin"], linked, False)
    page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    button = check_button(page)
    assert "disabled" in button and "Its credential &#39;Sandbox&#39; is disabled" in button
    assert "next check" not in page

    credentials_service.delete(user["admin"], linked, confirmed=True)
    page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    button = check_button(page)
    assert "disabled" in button and "Its credential was deleted" in button
    assert "next check" not in page


@pytest.mark.parametrize("off", ["disabled", "deleted"])
def test_ticked_orders_of_a_credential_no_longer_in_use_are_told_why_once(
    operator_client, linked, user, sandbox, off
):
    """Check Order Status over ticked orders of a disabled or deleted credential, one placed and
    one whose answer was lost: the notice says they could not be checked and why (the credential
    is disabled, or deleted), each reason once; before, the reason came once per kind of order."""
    rows = [
        make_order("6000001", "PENDING", "pending"),
        make_order(None, "", "", placement="unknown", request_id="certdesk:lost"),
    ]
    for r in rows:
        r.credential_id = linked.id
    db.session.commit()
    if off == "disabled":
        credentials_service.set_enabled(user["admin"], linked, False)
        why = "The Entrust credential &#39;Sandbox&#39; is disabled; enable it first."
    else:
        credentials_service.delete(user["admin"], linked, confirmed=True)
        why = "The Entrust credential &#39;Sandbox&#39; was deleted."
    sandbox.clear_requests()
    resp = operator_client.post(
        "/entrust/check", data={"order": [r.id for r in rows], "next": "/entrust/"}
    )
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    flashes = re.findall(r'<article class="flash flash-error"[^>]*>(.*?)</article>', page, re.S)
    assert flashes == [
        "Check Order Status: 2 could not be checked.",
        why,
    ]
    assert sandbox.requests() == []


def test_a_failed_check_from_the_orders_page_says_why_once(operator_client, linked, user, sandbox):
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "queued.example.com"}, "")
    _post(operator_client, linked, csr.id, queue_for_approval="1")
    row = db.session.execute(select(Order)).scalar_one()
    why = "Entrust server error (HTTP 503)"
    sandbox.faults([{"kind": "http_503", "method": "GET", "path": "/enterprise/v2/certificates*"}])
    try:
        for back in (f"/entrust/{row.id}", "/entrust/"):
            resp = operator_client.post("/entrust/check", data={"order": [row.id], "next": back})
            page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
            assert "Check Order Status: 1 could not be checked." in page
            assert page.count(why) == 1, back  # the order's page, or the list's notice
    finally:
        sandbox.clear_faults()


def test_import_dialog_starts_the_job_and_shows_its_progress(operator_client, linked, sandbox):
    sandbox.seed(certificates=30, seed=2)
    page = operator_client.get("/entrust/import").get_data(as_text=True)
    for text in (
        "Credential Name",
        "Expired",
        "Revoked",
        "Declined",
        "Deactivated",
        "Third-party certificates",
        "Orders already imported",
        "Import",
    ):
        assert text in page
    resp = operator_client.post(
        "/entrust/import", data={"credential_id": linked.id, "exclude": ["expired", "third_party"]}
    )
    assert resp.status_code == 303 and "job=" in resp.headers["Location"]
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Import existing orders of Sandbox" in page and "job-succeeded" in page
    assert f"/entrust/?credential={linked.id}" in page  # the link to what was imported
    assert _count(Order) > 0
    bad = operator_client.post("/entrust/import", data={"credential_id": "", "exclude": []})
    assert bad.status_code == 422 and 'id="credential_id-error"' in bad.get_data(as_text=True)


def _excluded(page: str) -> list[str]:
    """The exclusions ticked in the import page's form (its exclusions' fieldset)."""
    part = page.split('<fieldset id="import-exclusions">')[1].split("</fieldset>")[0]
    return sorted(re.findall(r'name="exclude" value="([a-z_]+)" checked', part))


def test_the_import_dialog_offers_the_chosen_credentials_last_exclusions(
    operator_client, linked, user, sandbox
):
    """The exclusions offered are those of the chosen credential's last import (which the
    scheduled import uses), the defaults for one never imported; another credential chosen, its
    own follow: with htmx, the page for it gives the exclusions' part; without JavaScript, "Load
    its last exclusions" shows the form again with them, starting nothing."""
    from webapp.jobs.models import Job
    from webapp.orders import importing

    defaults = sorted(importing.DEFAULT_EXCLUSIONS)
    last = ["existing", "third_party"]
    assert _excluded(operator_client.get("/entrust/import").get_data(as_text=True)) == defaults
    resp = operator_client.post(
        "/entrust/import", data={"credential_id": linked.id, "exclude": last}
    )
    assert resp.status_code == 303
    # The only credential: its last import's exclusions, whether chosen or not.
    assert _excluded(operator_client.get("/entrust/import").get_data(as_text=True)) == last
    other = link_sandbox(user, sandbox, name="Other")
    page = operator_client.get("/entrust/import").get_data(as_text=True)
    assert _excluded(page) == defaults  # two credentials, none chosen yet
    select_tag = page.split('<select name="credential_id"')[1].split(">")[0]
    assert (
        'hx-get="/entrust/import"' in select_tag and 'hx-select="#import-exclusions"' in select_tag
    )
    for cred, wanted in ((linked, last), (other, defaults)):
        page = operator_client.get(
            f"/entrust/import?credential_id={cred.id}", headers=HTMX
        ).get_data(as_text=True)
        assert _excluded(page) == wanted, cred.name
    # Without JavaScript: the form again with the credential's exclusions, no import started.
    imports = _count(Job)
    for cred, wanted in ((linked, last), (other, defaults)):
        resp = operator_client.post(
            "/entrust/import",
            data={"credential_id": cred.id, "exclude": ["expired"], "action": "exclusions"},
        )
        assert resp.status_code == 200 and _excluded(resp.get_data(as_text=True)) == wanted
        assert f'<option value="{cred.id}" selected>' in resp.get_data(as_text=True)
    assert _count(Job) == imports
    # An import refused keeps what was ticked for it.
    bad = operator_client.post(
        "/entrust/import", data={"credential_id": "", "exclude": ["revoked"]}
    )
    assert bad.status_code == 422 and _excluded(bad.get_data(as_text=True)) == ["revoked"]


def test_the_import_dialog_reads_no_organization_or_domain(operator_client, linked):
    """With one credential, the dialog read the order form's choices for it (up to 501
    organizations and 501 domains, 45 ms of a 57 ms page at 100,000 rows), none of them shown."""
    from tests import plans

    with plans.captured() as seen:
        page = operator_client.get("/entrust/import").get_data(as_text=True)
    assert "Import" in page and linked.name in page
    read = [sql for sql, _ in seen if "catalog_organization" in sql or "catalog_domain" in sql]
    assert read == []


@pytest.mark.parametrize("bulk", [True, False])
def test_a_large_import_gathers_the_planner_statistics(
    operator_client, linked, sandbox, monkeypatch, bulk
):
    """An import that adds many orders has SQLite plan the orders list by its new size at once
    (not within the hour); a small one leaves the statistics alone (ANALYZE locks the file)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's autovacuum keeps its own statistics")
    sandbox.seed(certificates=30, seed=2)
    monkeypatch.setattr(housekeeping, "BULK_ROWS", 10 if bulk else 10_000)
    before = planned_rows("ca_order")
    resp = operator_client.post("/entrust/import", data={"credential_id": linked.id})
    assert "job-succeeded" in operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    imported = _count(Order)
    assert imported >= 10
    assert planned_rows("ca_order") == (imported if bulk else before)


def test_notices_of_a_users_own_orders_until_dismissed(operator_client, admin_client, orders, user):
    pending = orders[1]
    pending.placed_by_id = user["operator"].id
    db.session.add(
        OrderEvent(
            order_id=pending.id,
            kind="status",
            old_status="PENDING",
            new_status="ACTIVE",
            notify_user_id=user["operator"].id,
        )
    )
    db.session.commit()
    assert 'hx-get="/entrust/updates"' in operator_client.get("/").get_data(as_text=True)
    notice = operator_client.get("/entrust/updates", headers=HTMX).get_data(as_text=True)
    assert "Your orders changed" in notice and "PENDING &rarr; ACTIVE" in notice
    assert "Your orders changed" not in admin_client.get("/entrust/updates").get_data(as_text=True)
    event_id = db.session.execute(select(OrderEvent.id)).scalar_one()
    # Another user cannot dismiss them.
    admin_client.post("/entrust/updates/seen", data={"event": [event_id]})
    assert "Your orders changed" in operator_client.get("/entrust/updates").get_data(as_text=True)
    resp = operator_client.post("/entrust/updates/seen", data={"event": [event_id]}, headers=HTMX)
    assert resp.status_code == 200 and "Your orders changed" not in resp.get_data(as_text=True)


def test_notices_beyond_the_five_shown_are_counted(operator_client, orders, user):
    """Eight changes waited and five were shown, with no word of the other three."""
    for n in range(8):
        db.session.add(
            OrderEvent(
                order_id=orders[1].id,
                kind="status",
                old_status="PENDING",
                new_status=f"S{n}",
                notify_user_id=user["operator"].id,
            )
        )
    db.session.commit()
    notice = operator_client.get("/entrust/updates", headers=HTMX).get_data(as_text=True)
    assert notice.count('name="event"') == 5
    assert "And 3 more changes, shown once you dismiss these." in notice
    events = re.findall(r'name="event" value="(\d+)"', notice)
    after = operator_client.post(
        "/entrust/updates/seen", data={"event": events}, headers=HTMX
    ).get_data(as_text=True)
    assert after.count('name="event"') == 3 and "more change" not in after


def test_the_dashboard_lists_pending_orders(auditor_client, orders):
    page = auditor_client.get("/").get_data(as_text=True)
    block = page[page.index('id="pending-orders"') :]
    # The card shows the newest ten: its links lead to all of each kind.
    card = block[: block.index("</article>")]
    for status in ("PENDING", "@unknown", "@not_placed"):
        link = f'href="/entrust/?status={status}"'
        assert link in card, status
        assert auditor_client.get(link[6:-1]).status_code == 200
    assert (
        "queue.example.com" in block
        and "lost.example.com" in block
        and "never.example.com" in block
    )
    assert "www.example.com" not in block[: block.index("</article>")]


def test_the_dashboard_shows_the_ten_newest_waiting_or_unsettled_orders(app):
    from webapp.orders import queries

    made = []
    for i in range(14):  # pending and unsettled orders interleaved, a settled one between
        if i % 2:
            made.append(make_order(f"60000{i:02d}", "PENDING", "pending"))
        else:
            made.append(make_order(None, "", "unknown", placement="unknown"))
        make_order(f"70000{i:02d}", "ACTIVE", "issued")
    newest = [o.id for o in reversed(made)][:10]
    assert [o.id for o in queries.pending(10)] == newest
    assert [o.id for o in queries.pending(3)] == newest[:3]


def test_operators_act_auditors_read(auditor_client, operator_client, orders):
    assert auditor_client.get("/entrust/new").status_code == 403
    assert auditor_client.get("/entrust/import").status_code == 403
    assert auditor_client.get(f"/entrust/{orders[0].id}").status_code == 200
    assert operator_client.get("/entrust/import").status_code == 200


@pytest.mark.parametrize("narrow", [1000, 1])
def test_a_search_pages_the_same_whether_its_matches_are_few_or_many(orders, monkeypatch, narrow):
    # Few matches are looked up and sorted; more than NARROW are tested along the sort order.
    monkeypatch.setattr(search, "NARROW", narrow)
    f = queries.OrderFilter(q="EXAMPLE.COM", sort="cn")
    first = queries.page_of(f, 1, 2, cursor=(None, None))
    second = queries.page_of(f, 2, 2, cursor=(first.next_cursor, None))
    beyond = queries.page_of(f, 9, 2, cursor=(None, None))  # past the end: the last page
    names = [o.common_name for o in first.items + second.items]
    assert names == sorted(names) and len(set(names)) == 4
    assert [o.common_name for o in beyond.items] == names[2:]
    assert (first.total, first.exact, first.has_next, beyond.page, beyond.has_next) == (
        4,
        True,
        True,
        2,
        False,
    )
    assert queries.page_of(queries.OrderFilter(q="no-such-name"), 1, 50).total == 0


def test_settling_by_hand_and_placing_again_say_what_happened(operator_client, orders):
    from webapp.audit.models import AuditEvent

    _issued, _pending, _expired, lost, never = orders
    resp = operator_client.post(f"/entrust/{lost.id}/settle")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/entrust/{lost.id}")
    page = operator_client.get(f"/entrust/{lost.id}").get_data(as_text=True)
    assert "Could not check with Entrust yet" in page  # the stand-in credential has no key
    db.session.refresh(lost)
    assert lost.placement == "unknown"
    resp = operator_client.post(f"/entrust/{never.id}/place-again")
    assert resp.headers["Location"].endswith(f"/entrust/{never.id}")
    db.session.refresh(never)
    assert never.placement == "not_placed" and _count(Order) == 5  # nothing was placed
    outcomes = dict(
        db.session.execute(
            select(AuditEvent.action, AuditEvent.outcome).where(
                AuditEvent.action.in_(("order.reconcile", "order.place_again"))
            )
        ).all()
    )
    assert outcomes == {"order.reconcile": "unsettled", "order.place_again": "failure"}


def test_a_csr_page_leads_to_the_order_form_with_that_csr(
    operator_client, auditor_client, linked, user
):
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "from-csr.example.com"}, "")
    page = operator_client.get(f"/csrs/{csr.id}").get_data(as_text=True)
    assert f'href="/entrust/new?csr_id={csr.id}"' in page
    assert "order-from-csr" not in auditor_client.get(f"/csrs/{csr.id}").get_data(as_text=True)
    form = operator_client.get(f"/entrust/new?csr_id={csr.id}").get_data(as_text=True)
    assert f'<option value="{csr.id}" selected>from-csr.example.com' in form


def _csrs_made_since(count: int) -> None:
    """``count`` CSRs newer than any other (rows alone: the form reads no PEM, and these have
    no names to be searched by)."""
    from sqlalchemy import insert

    from webapp.csrs.models import Csr

    now = utcnow()
    db.session.execute(
        insert(Csr),
        [
            {
                "common_name": f"new{i}.example.com",
                "subject": f"CN=new{i}.example.com",
                "sans": f"new{i}.example.com",
                "key_label": "ECDSA P-256",
                "signature_algorithm": "ecdsa-with-SHA256",
                "public_key_id": f"{i:064x}",
                "pem": "(not read by the form)",
                "source": "imported",
                "created_at": now - timedelta(seconds=i),
            }
            for i in range(count)
        ],
    )
    db.session.commit()


def test_a_csr_older_than_those_offered_is_kept_when_the_form_is_opened_for_it(
    operator_client, linked, user
):
    """The form offers the newest 100 unused CSRs; opened from an older CSR's page, it offers
    and chooses that one too (with 100,000 CSRs, it used to show "Choose a CSR")."""
    old = csrs.create_csr(user["operator"], "p256", {"CN": "old.example.com"}, "")
    old.created_at = utcnow() - timedelta(days=30)
    _csrs_made_since(100)
    form = operator_client.get("/entrust/new").get_data(as_text=True)
    assert f"CSR #{old.id}</option>" not in form  # not among the newest 100
    form = operator_client.get(f"/entrust/new?csr_id={old.id}").get_data(as_text=True)
    assert f'<option value="{old.id}" selected>old.example.com' in form
    chosen = form.split('name="csr_id"')[1].split("</select>")[0]
    assert chosen.count("<option") == 102  # "Choose a CSR", the chosen one, the newest 100


def _keys_held_by_certificates(made) -> None:
    """A certificate for each CSR of ``made`` (their numbers in ``_csrs_made_since``: the CSR
    made i seconds ago), holding its key: those CSRs are used."""
    from sqlalchemy import insert

    now = utcnow()
    db.session.execute(
        insert(Certificate),
        [
            {
                "fingerprint_sha256": f"{i:064x}",
                "serial_hex": f"{i + 1:x}",
                "common_name": f"new{i}.example.com",
                "sans": f"new{i}.example.com",
                "issuer_cn": "Test CA",
                "not_before": now - timedelta(days=1),
                "not_after": now + timedelta(days=90),
                "public_key_id": f"{i:064x}",  # the key of the CSR made i seconds ago
                "pem": "(not read)",
            }
            for i in made
        ],
    )
    db.session.commit()


def test_unused_csrs_older_than_a_hundred_used_ones_are_still_offered(
    operator_client, linked, user
):
    """The 100 newest CSRs all used (a certificate holds each one's key): the form and its search
    still offer the older unused one, rather than "No unused CSRs"."""

    old = csrs.create_csr(user["operator"], "p256", {"CN": "new7.example.com"}, "")
    old.created_at = utcnow() - timedelta(days=30)
    db.session.commit()
    _csrs_made_since(100)
    _keys_held_by_certificates(range(100))
    for url in ("/entrust/new", "/entrust/new?csr_search=new7.example.com&action=choices"):
        form = operator_client.get(url).get_data(as_text=True)
        offered = form.split('name="csr_id"')[1].split("</select>")[0]
        assert f'<option value="{old.id}"' in offered, url
        assert offered.count("<option") == 2, url  # "Choose a CSR" and the unused one


def test_a_csr_made_while_the_form_reads_them_offers_none_twice(user, monkeypatch):
    """The form reads CSRs a batch at a time; one made between two batches moves the second
    batch back by a row, so it starts with the last CSR of the first: that one is offered once."""

    _csrs_made_since(6)  # new0 (newest) to new5; a certificate holds the keys of new0 and new1
    _keys_held_by_certificates((0, 1))
    real, calls = csrs.recent, []

    def meanwhile_one_is_made(limit, offset=0):
        calls.append(offset)
        if offset:  # between the first batch and the second
            csrs.create_csr(user["operator"], "p256", {"CN": "made-meanwhile.example.com"}, "")
        return real(limit, offset)

    monkeypatch.setattr(csrs, "recent", meanwhile_one_is_made)
    offered = [c.common_name for c in checks.unused_csrs(limit=3)]
    assert calls == [0, 3]
    assert offered == ["new2.example.com", "new3.example.com", "new4.example.com"]


def test_the_search_follows_an_order_s_names_and_forgets_a_deleted_order(auditor_client, orders):
    from sqlalchemy import delete

    from webapp.orders import records
    from webapp.orders.models import OrderName

    issued = orders[0]
    issued.sans = "www.example.com,shop.example.net"
    records.index_search(issued)
    db.session.commit()
    found = auditor_client.get("/entrust/?q=example.net").get_data(as_text=True)
    assert _rows(found) == 1 and f'data-order="{issued.id}"' in found
    gone = auditor_client.get("/entrust/?q=example.com").get_data(as_text=True)
    assert f'data-order="{issued.id}"' in gone  # still its common name
    assert "example.com" not in [n.value for n in issued.names]  # the old SAN is no name now
    # Deleting orders (as More > Delete does, in bulk) deletes their names with them.
    db.session.execute(delete(Order).where(Order.id == issued.id))
    db.session.commit()
    left = db.session.execute(select(OrderName.order_id).distinct()).scalars().all()
    assert issued.id not in left and len(left) == 4


def test_an_order_placed_again_links_to_its_new_order_instead_of_the_button(
    operator_client, orders
):
    issued, _pending, _expired, _lost, never = orders
    button = f'action="/entrust/{never.id}/place-again"'
    assert button in operator_client.get(f"/entrust/{never.id}").get_data(as_text=True)
    never.again_id = issued.id
    db.session.commit()
    page = operator_client.get(f"/entrust/{never.id}").get_data(as_text=True)
    assert button not in page
    assert f'Placed again as order <a href="/entrust/{issued.id}">{issued.display_name}</a>' in page
    never.again_id = 999_999  # the new order was deleted from CertDesk: it may be at Entrust
    db.session.commit()
    page = operator_client.get(f"/entrust/{never.id}").get_data(as_text=True)
    assert button not in page and "#999999 (since deleted from CertDesk)" in page


def test_another_credentials_choices_are_read_out_in_a_sentence(operator_client, linked):
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    # Not a live region: it would read out every label and option of the fields it holds.
    assert '<div id="order-choices">' in page
    fragment = operator_client.get(f"/entrust/new/choices?credential_id={linked.id}", headers=HTMX)
    said = fragment.get_data(as_text=True).split('data-announce id="choices-loaded">')[1]
    # Products: the five SSL products with inventory of their own, PRIVATE_SSL (unlimited), and
    # QWAC_SSL and PSD2_SSL, which the pooled FLEX inventory grants.
    assert said.startswith(
        f"The choices of {linked.name}. Organizations: 3, products: 8, domains: 5.</p>"
    ), said[:200]


def test_every_field_entrust_holds_is_shown_as_entrust_sends_it(admin_client):
    """Yes/no and empty values read as in Entrust's JSON (false, null), as they do inside the
    nested fields beside them, not as Python writes them."""
    order = make_order(
        details=json.dumps(
            {
                "isThirdParty": False,
                "deactivated": True,
                "thumbprint": None,
                "tracking": {"a": False},
            }
        )
    )
    page = admin_client.get(f"/entrust/{order.id}").get_data(as_text=True)
    fields = page.split('id="order-details"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>isThirdParty</dt><dd>false</dd>" in fields
    assert "<dt>deactivated</dt><dd>true</dd>" in fields
    assert "<dt>thumbprint</dt><dd>null</dd>" in fields
    assert "False" not in fields and "None" not in fields


def test_an_action_on_the_ticked_orders_returns_to_the_same_page_of_the_list(admin_client):
    for n in range(30):
        make_order(f"{5100000 + n}", common_name=f"o{n:02d}.example.com")
    first = admin_client.get("/entrust/?status=ACTIVE&per_page=25").get_data(as_text=True)
    after = re.search(r'href="([^"]+)"[^>]*rel="next"', first).group(1).replace("&amp;", "&")
    second = admin_client.get(after).get_data(as_text=True)
    back = re.search(r'name="next" value="([^"]+)"', second).group(1).replace("&amp;", "&")
    assert "&page=2&" in back and "after=" in back and "status=ACTIVE" in back
    resp = admin_client.post("/entrust/renew", data={"order": [], "next": back})
    assert resp.status_code == 303 and resp.headers["Location"] == back
    assert admin_client.get(back).get_data(as_text=True).count('name="order" value=') == 5


def test_an_uploaded_csr_comes_back_in_the_paste_box_after_validate(operator_client, linked):
    """A browser never refills a file field: after Validate the uploaded CSR is in the form's
    paste box, chosen, so Order Certificate sends it without choosing the file again."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upload.example.com")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    der = csr.public_bytes(serialization.Encoding.DER)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    resp = _post(
        operator_client,
        linked,
        None,
        csr_source="upload",
        csr_file=(io.BytesIO(der), "request.der"),
        key_file=(io.BytesIO(key_pem), "request.key"),
        action="validate",
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Validated." in page, page
    assert 'name="csr_source" value="paste" checked' in page
    assert f">{pem}</textarea>" in page
    # The key is not sent back: the form opens its place and asks for it again.
    assert "PRIVATE KEY-----\n" not in page
    assert re.search(r"<details open>\s*<summary>Private Key", page)
    assert 'id="key-again">Give the private key again' in page
    resp = _post(operator_client, linked, None, csr_source="paste", csr_text=pem)
    assert resp.status_code == 303
    row = db.session.execute(select(Order)).scalar_one()
    assert row.common_name == "upload.example.com"


def _given_csr(cn: str) -> tuple[str, str]:
    """A CSR for ``cn`` made elsewhere, and its private key: (CSR PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


@pytest.mark.parametrize("csr_way", ["paste", "upload"])
@pytest.mark.parametrize("key_way", ["paste", "file"])
def test_the_key_of_a_given_csr_is_kept_however_each_was_given(
    operator_client, linked, csr_way, key_way
):
    """The form offers the key pasted or as a file under both a pasted and an uploaded CSR:
    each of the four ways stores the key with the order's CSR."""
    from webapp.csrs.models import Csr

    pem, key_pem = _given_csr("keyed.example.com")
    given = {"csr_source": csr_way}
    if csr_way == "paste":
        given["csr_text"] = pem
    else:
        given["csr_file"] = (io.BytesIO(pem.encode()), "keyed.csr")
    if key_way == "paste":
        given["key_text"] = key_pem
    else:
        given["key_file"] = (io.BytesIO(key_pem.encode()), "keyed.key")
    resp = _post(operator_client, linked, None, **given)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    row = db.session.execute(select(Order)).scalar_one()
    held = db.session.get(Csr, row.csr_id)
    assert held is not None and held.private_key_id is not None


def test_a_key_given_twice_is_refused(operator_client, linked):
    pem, key_pem = _given_csr("twice.example.com")
    resp = _post(
        operator_client,
        linked,
        None,
        csr_source="paste",
        csr_text=pem,
        key_text=key_pem,
        key_file=(io.BytesIO(key_pem.encode()), "twice.key"),
    )
    assert resp.status_code == 422
    assert "Give the private key once" in resp.get_data(as_text=True)
    assert _count(Order) == 0


# --- an account with more organizations and domains than the form lists -----------------------


@pytest.fixture
def few_listed(monkeypatch):
    """The form lists two organizations and two domains in full (the demo account has more)."""
    from webapp.orders import checks

    monkeypatch.setattr(checks, "LISTED_CHOICES", 2)
    monkeypatch.setattr(checks, "FOUND_CHOICES", 2)


def _options(html: str, select_id: str) -> list[str]:
    body = html.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="([^"]+)"', body)


def _found(client, cred, field: str, **args) -> str:
    resp = client.get(
        f"/entrust/new/choices/{field}", query_string={"credential_id": cred.id, **args}
    )
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_an_account_with_more_choices_than_listed_gets_a_search_for_them(
    operator_client, linked, few_listed
):
    page = operator_client.get("/entrust/new").get_data(as_text=True)
    assert 'id="organization_search"' in page and 'id="domain_search"' in page
    assert "More than 2 approved organizations: type the start of a name" in page
    assert "More than 2 usable domains" in page
    # The first ones, by client and name; the rest are found by the search.
    assert _options(page, "organization") == ["1:CertDesk Demo Corp", "1:CertDesk Labs"]
    # Named with their client, once where the client has the organization's name.
    assert '<option value="1:CertDesk Demo Corp" >CertDesk Demo Corp</option>' in page
    assert '<option value="1:CertDesk Labs" >CertDesk Labs (CertDesk Demo Corp)</option>' in page
    assert _options(page, "domain") == ["example.com", "example.net"]
    assert "Organizations: more than 2, found by a search" in page
    assert "domains: more than 2, found by a search" in page

    # Names start with the text, in any case; only approved, current organizations.
    found = _found(operator_client, linked, "organization", organization_search="EXAMPLE s")
    assert "<html" not in found
    assert re.findall(r'<option value="([^"]+)"', found) == ["2:Example Subsidiary Ltd"]
    assert _found(operator_client, linked, "organization", organization_search="future").count(
        "No approved organization's name starts with “future”"
    )
    # Domains start or end with the text; only usable ones (pending.example is not).
    assert re.findall(
        r'<option value="([^"]+)"',
        _found(operator_client, linked, "domain", domain_search=".EXAMPLE"),
    ) == ["expiring.example", "subsidiary.example"]
    assert re.findall(
        r'<option value="([^"]+)"', _found(operator_client, linked, "domain", domain_search="org")
    ) == ["example.org"]
    nothing = _found(operator_client, linked, "domain", domain_search="pending")
    assert "No usable domain starts or ends with “pending”" in nothing
    # The choice made stays listed, and chosen, whatever the search shows.
    kept = _found(
        operator_client,
        linked,
        "organization",
        organization="2:Example Subsidiary Ltd",
        organization_search="certdesk",
    )
    assert '<option value="2:Example Subsidiary Ltd" selected>' in kept
    assert "1:CertDesk Labs" in kept


def test_the_search_works_without_scripts_and_the_order_names_a_choice_not_listed(
    operator_client, linked, user, few_listed
):
    """Find sends the form (no order placed) and shows it again with what the searches found;
    an organization and domain found that way can be ordered with, checked one by one."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.org"}, "")
    shown = _post(
        operator_client,
        linked,
        csr.id,
        action="choices",
        organization="",
        organization_search="certdesk l",
        domain_search="example.org",
    )
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert _options(page, "organization") == ["1:CertDesk Labs"]
    assert _options(page, "domain") == ["example.org"]
    assert 'value="certdesk l"' in page and _count(Order) == 0

    placed = _post(
        operator_client, linked, csr.id, organization="1:CertDesk Labs", domain="example.org"
    )
    assert placed.status_code == 303, placed.get_data(as_text=True)
    row = db.session.execute(select(Order)).scalar_one()
    assert row.common_name == "www.example.org" and row.phase == "issued"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"organization": "1:Future Ventures"}, "organization", "approved organizations"),
        ({"organization": "x:CertDesk Labs"}, "organization", "approved organizations"),
        ({"organization": f"{10**30}:CertDesk Labs"}, "organization", "approved organizations"),
        ({"organization": "1:"}, "organization", "approved organizations"),
        ({"domain": "pending.example"}, "domain", "usable domains"),
        ({"domain": "subsidiary.example"}, "domain", "a domain of Example Subsidiary Ltd"),
        ({"sans": "www.example.org pending.example"}, "sans", "Not under a domain"),
        ({"sans": "www.example.org www.subsidiary.example"}, "sans", "Not under a domain"),
    ],
)
def test_choices_beyond_those_listed_are_checked_one_by_one(
    operator_client, linked, user, sandbox, few_listed, fields, field, words
):
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.org"}, "")
    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id, **fields)
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    error = page.split(f'id="{field}-error">', 1)[1].split("</small>", 1)[0]
    assert words in error
    assert _count(Order) == 0
    assert [r["path"] for r in sandbox.requests() if r["method"] != "GET"] == []


def test_a_name_falls_under_the_longest_usable_domain_above_it(app, linked):
    from webapp.catalog import service as catalog
    from webapp.catalog.models import CatalogDomain

    now = utcnow()
    for name, status in (("shop.example.com", "APPROVED"), ("old.example.org", "EXPIRED")):
        db.session.add(
            CatalogDomain(
                credential_id=linked.id,
                client_id=1,
                name=name,
                name_reversed=name[::-1],
                verification_status=status,
                first_seen_at=now,
                updated_at=now,
            )
        )
    db.session.commit()
    names = [
        "a.shop.example.com",
        "*.shop.example.com",
        "shop.example.com",
        "www.example.com",
        "example.com",
        "a.old.example.org",
        "www.elsewhere.test",
        "com",
    ]
    assert catalog.covering_domains(linked.id, names) == {
        "a.shop.example.com": "shop.example.com",
        "*.shop.example.com": "shop.example.com",
        "shop.example.com": "shop.example.com",
        "www.example.com": "example.com",
        "example.com": "example.com",
        "a.old.example.org": "example.org",  # the expired one is not usable
        "www.elsewhere.test": None,
        "com": None,
    }
    # Of one client: client 2 has example.com too, not example.org.
    assert catalog.covering_domains(linked.id, ["a.example.org", "b.example.com"], 2) == {
        "a.example.org": None,
        "b.example.com": "example.com",
    }


@pytest.mark.parametrize(
    "text",
    ["%", "_", "\\", "%_\\' OR '1'='1", "名前ключ😀", "\U0010ffff", "a\U0010ffff", "x" * 400, " "],
)
def test_the_searches_take_any_text(operator_client, linked, few_listed, text):
    """Pattern characters match themselves, the last character Unicode has and a text longer
    than any name find nothing, on SQLite and PostgreSQL alike."""
    for field, arg in (("organization", "organization_search"), ("domain", "domain_search")):
        found = _found(operator_client, linked, field, **{arg: text})
        options = re.findall(r'<option value="([^"]+)"', found)
        assert options == ([] if text.strip() else options), (field, text)
    nul = operator_client.get(
        "/entrust/new/choices/domain",
        query_string={"credential_id": linked.id, "domain_search": "a\x00"},
    )
    assert nul.status_code == 400


def test_an_order_entrust_refuses_says_so_on_top_of_the_form(
    operator_client, linked, user, sandbox
):
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    sandbox.set_domain_status("example.com", "EXPIRED")  # lapsed at Entrust since the last sync
    resp = _post(operator_client, linked, csr.id)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422, page
    top = page.split('id="form-error"')[1].split("</article>")[0]
    assert "Entrust refused the order." in top and "Nothing was ordered." in top
    assert "example.com" in top
    assert _count(Order) == 0


def test_an_order_from_a_csr_file_just_under_the_upload_bound_is_placed_and_kept(
    operator_client, linked
):
    """Uploaded as DER just under the bound, the CSR is a third larger as the PEM CertDesk keeps:
    once Entrust took the order, CertDesk records that CSR without the upload's bound."""
    from tests.unit.certs.factory import padded_csr_der
    from webapp import pki

    body, stored = padded_csr_der("big.example.com", 900_000)
    assert len(body) < pki.MAX_FILE_BYTES < len(stored)
    resp = _post(
        operator_client, linked, None, csr_source="upload", csr_file=(io.BytesIO(body), "big.csr")
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    row = db.session.execute(select(Order)).scalar_one()
    assert row.csr_id is not None and row.common_name == "big.example.com"
    assert operator_client.get(resp.headers["Location"]).status_code == 200


def _csr_options(html: str) -> list[str]:
    return (
        _options(html, "csr_id")
        if 'id="csr_id"' in html
        else re.findall(r'<option value="([^"]+)"', html)
    )


def test_any_unused_csr_is_found_by_its_names_however_many_were_made_since(
    operator_client, linked, user
):
    """The form lists the newest 100 unused CSRs; a search finds any other by how a name (CN or
    SAN) starts or ends, as typed (htmx) and with Find (no scripts), and a form shown again
    keeps the CSR chosen whatever the search holds."""
    old = csrs.create_csr(user["operator"], "p256", {"CN": "old.example.com"}, "legacy.example.org")
    used = csrs.create_csr(user["operator"], "p256", {"CN": "old-used.example.com"}, "")
    for row in (old, used):
        row.created_at = utcnow() - timedelta(days=30)
    db.session.add(  # a certificate holds the second one's key: it was used
        Certificate(
            fingerprint_sha256="ab" * 32,
            serial_hex="01",
            not_before=utcnow(),
            not_after=utcnow() + timedelta(days=90),
            public_key_id=used.public_key_id,
            pem="(not read by the form)",
        )
    )
    _csrs_made_since(100)
    form = operator_client.get("/entrust/new").get_data(as_text=True)
    assert 'id="csr_search"' in form and str(old.id) not in _csr_options(form)
    assert len(_csr_options(form)) == 100

    def found(**args) -> str:
        resp = operator_client.get("/entrust/new/choices/csr", query_string=args, headers=HTMX)
        assert resp.status_code == 200
        return resp.get_data(as_text=True)

    # Starts with the text, in any case; a used CSR is not found.
    assert _csr_options(found(csr_search=" OLD")) == [str(old.id)]
    assert _csr_options(found(csr_search="legacy.example.org")) == [str(old.id)]  # a SAN
    assert _csr_options(found(csr_search="cy.EXAMPLE.org")) == [str(old.id)]  # ends with it
    none = found(csr_search="old-used")
    assert _csr_options(none) == []
    assert "No unused CSR has a name that starts or ends with “old-used”" in none
    assert _csr_options(found(csr_search="%")) == []  # taken literally
    # The CSR chosen stays, chosen, whatever the search shows.
    kept = found(csr_search="nothing", csr_id=old.id)
    assert f'<option value="{old.id}" selected>old.example.com' in kept

    # Without scripts, Find sends the form and shows it again with what the search found.
    shown = _post(operator_client, linked, "", action="choices", csr_search="old.example")
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200 and _count(Order) == 0
    assert _csr_options(page) == [str(old.id)] and 'value="old.example"' in page
    assert re.findall(r'name="csr_source" value="(\w+)" checked', page) == ["certdesk"]
    # A form refused keeps the CSR chosen (and the search that found it).
    refused = _post(operator_client, linked, old.id, csr_search="old.example", product="")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="product-error"' in page
    assert f'<option value="{old.id}" selected>old.example.com' in page
    # Chosen, it is ordered with.
    placed = _post(operator_client, linked, old.id, sans="old.example.com")
    assert placed.status_code == 303, placed.get_data(as_text=True)
    assert db.session.execute(select(Order.common_name)).scalar_one() == "old.example.com"


def test_a_number_custom_field_goes_to_entrust_as_a_number(operator_client, linked, user, sandbox):
    """ECS's number custom fields are floats: the value typed is sent as a JSON number (an
    integer when it has no fraction), the form takes decimals, and what is not a plain number
    ("nan", "1e3") is refused before anything is sent."""
    sandbox.set_custom_field("number1", enabled=True, label="Budget", mandatory="NOT_MANDATORY")
    sandbox.set_custom_field("number2", enabled=True, label="Units", mandatory="NOT_MANDATORY")
    page = operator_client.get(f"/entrust/new?credential_id={linked.id}").get_data(as_text=True)
    assert re.search(r'<input name="custom_number1"[^>]*type="number"[^>]*step="any"', page)
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    sandbox.clear_requests()
    for bad in ("nan", "1e3", "12,5", "inf"):
        resp = _post(operator_client, linked, csr.id, custom_number1=bad)
        assert resp.status_code == 422, bad
        assert "Budget must be a number, such as 12 or -3.75." in resp.get_data(as_text=True)
    assert not [r for r in sandbox.requests() if r["method"] == "POST"]
    resp = _post(operator_client, linked, csr.id, custom_number1="1234.5", custom_number2="7.0")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    (sent,) = [r for r in sandbox.requests() if r["method"] == "POST"]
    custom = sent["body"]["tracking"]["customFields"]
    assert custom["number1"] == 1234.5 and isinstance(custom["number1"], float)
    assert custom["number2"] == 7 and isinstance(custom["number2"], int)


def test_another_clients_domain_is_refused_in_words_that_name_both_clients(
    operator_client, linked, user, sandbox
):
    """The Domain list holds every client's usable domains; one of another client than the
    chosen organization's is refused saying whose it is, not as if it were not offered."""
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "x1.subsidiary.example"}, "")
    page = operator_client.get(f"/entrust/new?credential_id={linked.id}").get_data(as_text=True)
    assert '<option value="subsidiary.example"' in page
    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id, domain="subsidiary.example")
    text = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 422 and 'id="domain-error"' in text
    assert (
        "subsidiary.example is a domain of Example Subsidiary Ltd, not of CertDesk Demo Corp "
        "(the client of CertDesk Demo Corp). Choose a domain of CertDesk Demo Corp, or an "
        "organization of Example Subsidiary Ltd." in text
    )
    assert not [r for r in sandbox.requests() if r["method"] == "POST"] and _count(Order) == 0
    resp = _post(operator_client, linked, csr.id, domain="no-such.example")
    assert "Choose one of the credential's usable domains." in html.unescape(
        resp.get_data(as_text=True)
    )


def test_a_custom_text_too_long_is_refused_not_sent_cut_short(
    operator_client, linked, user, sandbox
):
    sandbox.set_custom_field("text1", enabled=True, label="Cost centre", mandatory="NOT_MANDATORY")
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id, custom_text1="x" * 501)
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 422 and "Cost centre: at most 500 characters (this is 501)." in page
    assert not [r for r in sandbox.requests() if r["method"] == "POST"] and _count(Order) == 0
    assert _post(operator_client, linked, csr.id, custom_text1="x" * 500).status_code == 303


def test_another_organization_of_a_non_primary_client_is_refused_before_anything_is_sent(
    operator_client, linked, user, sandbox
):
    """ECS takes an organization name only for the primary client (and for PD_SSL): a
    certificate of another client carries that client's own name. Choosing another of its
    organizations is refused in words rather than dropped from the request unseen (the
    certificate would have said otherwise than the order); the client's own goes through."""
    from webapp.catalog import service as catalog

    sandbox.add_organization(2, "Subsidiary Labs GmbH")
    catalog.start_sync(user["operator"], [linked.id], ["organizations"])
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.subsidiary.example"}, "")
    sandbox.clear_requests()
    resp = _post(operator_client, linked, csr.id, organization="2:Subsidiary Labs GmbH")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="organization-error"' in page
    assert (
        "Entrust names a STANDARD_SSL certificate of the client Example Subsidiary Ltd after "
        "the client itself, not Subsidiary Labs GmbH." in html.unescape(page)
    )
    assert not [r for r in sandbox.requests() if r["method"] == "POST"] and _count(Order) == 0
    resp = _post(operator_client, linked, csr.id, organization="2:Example Subsidiary Ltd")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    (sent,) = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert sent["body"]["clientId"] == 2 and "org" not in sent["body"]
