"""In a real browser against `certdesk serve` and the sandbox, the actions on orders by the guide's
names: Update Certificate Status (approve a queued order, suspend and resume it), More > Revoke
Certificate with a reason, More > Delete (the certificate stays in SSL > Certificates), Reissue
Certificate with a new CSR made in CertDesk (both orders linked, the new certificate in the
repository), and Renew Certificate once the certificate is old enough at Entrust."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_orders_flow import _link_sandbox, _order

pytestmark = pytest.mark.e2e

ORDER_PAGE = re.compile(r".*/entrust/\d+$")


def _tracking_id(page) -> str:
    return page.locator("#order-fields dd").first.inner_text().strip()


def _tick_in_list(page, server, tracking_id: str) -> None:
    page.goto(server.url + "/entrust/")
    page.get_by_label(f"Select order {tracking_id}").check()


def _menu(page, label: str) -> None:
    menu = page.locator(".order-menu")
    if label in ("Revoke Certificate", "Delete"):
        menu.get_by_text("More", exact=True).click()
    menu.get_by_role("button", name=label, exact=True).click()


def _csr(page, server, cn: str) -> str:
    """Make a key pair and CSR in CertDesk; return the CSR's id."""
    page.goto(server.url + "/csrs/new")
    page.locator("input[name=CN]").fill(cn)
    page.locator("select[name=key_type]").select_option("p256")
    page.get_by_role("button", name="Create key and CSR").click()
    page.wait_for_url(re.compile(r".*/csrs/\d+$"))
    return page.url.rsplit("/", 1)[1]


def test_approve_suspend_resume_revoke_then_delete(page, live_server, sandbox):
    sandbox.seed(certificates=0, seed=6)
    asked = []  # every confirmation the pages asked for, accepted
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)

    _order(page, live_server, "queue.example.com", queue=True)
    expect(page.locator("#order-state")).to_contain_text("PENDING")
    tracking_id = _tracking_id(page)

    # The list's box in the heading ticks every order of the page, and clears them.
    _order(page, live_server, "second.example.com", queue=True)
    page.goto(live_server.url + "/entrust/")
    boxes = page.locator("#orders-table tbody input[name=order]")
    expect(boxes).to_have_count(2)
    page.get_by_label("Select every order on this page").check()
    assert all(box.is_checked() for box in boxes.all())
    page.get_by_label("Select every order on this page").uncheck()
    assert not any(box.is_checked() for box in boxes.all())
    # Enter on a row's box sends nothing (Check Order Status is the menu's first button).
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    boxes.first.press("Space")
    boxes.first.press("Enter")
    page.wait_for_timeout(500)
    assert sent == [] and boxes.first.is_checked()
    expect(page.locator("main")).not_to_contain_text("Check Order Status:")

    # Update Certificate Status from the list: the selected order, and what it allows.
    _tick_in_list(page, live_server, tracking_id)
    _menu(page, "Update Certificate Status")
    page.wait_for_url(re.compile(r".*/entrust/status\?order=\d+&next=%2Fentrust%2F$"))
    expect(page.locator("h1")).to_have_text("Update Certificate Status")
    expect(page.locator("#status-orders")).to_contain_text("Approve, Decline")
    expect(page.locator("#action-suspend")).to_be_disabled()
    expect(page.locator("#why-suspend")).to_contain_text(
        "Suspend applies to ACTIVE or READY orders; this one is PENDING."
    )
    # Decline without a reason: the page says what is missing, without asking first.
    page.get_by_role("button", name="Decline", exact=True).click()
    expect(page.locator("#reason-error")).to_contain_text("Enter the reason for declining")
    assert not [m for m in asked if m.startswith("Decline")]
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#action-results")).to_contain_text("Approve: 1 done")
    # The keyboard and a screen reader start at the results, not at the top of the page.
    expect(page.locator("#action-results")).to_be_focused()
    expect(page.locator("#outcomes")).to_contain_text("Approved; Entrust says ACTIVE.")
    expect(page.locator("#status-orders")).to_contain_text("ACTIVE")

    # Suspend and resume the issued certificate, from the same page.
    page.get_by_role("button", name="Suspend", exact=True).click()
    expect(page.locator("#outcomes")).to_contain_text("Suspended; Entrust says SUSPENDED.")
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.locator("#outcomes")).to_contain_text("Resumed; Entrust says ACTIVE.")
    # Each result was sent by a form, yet Reload and Back open the page again, asking nothing
    # and doing nothing again.
    sent.clear()
    for step in (page.reload, page.go_back, page.go_forward):
        step()
        expect(page.locator("h1")).to_have_text("Update Certificate Status")
        expect(page.locator("#status-orders")).to_contain_text("ACTIVE")
        expect(page.locator("#outcomes")).to_have_count(0)
    assert sent == []
    page.locator("#status-orders a").first.click()
    page.wait_for_url(ORDER_PAGE)
    expect(page.locator("#order-state")).to_contain_text("ACTIVE")
    history = page.locator("#order-history")
    expect(history).to_contain_text("Approved")
    expect(history).to_contain_text("ACTIVE → SUSPENDED")
    expect(history).to_contain_text("SUSPENDED → ACTIVE")
    expect(page.locator("#order-certificate")).to_contain_text("queue.example.com")
    order_url = page.url

    # Revoke Certificate: a reason, then a page that names the certificate, then revoked.
    page.locator("#order-actions").get_by_role("button", name="Revoke Certificate").click()
    page.get_by_label("Reason").select_option(label="Key compromise")
    page.get_by_label("Comment").fill("The server was stolen")
    page.get_by_role("button", name="Continue").click()
    confirm = page.locator("#revoke-confirm")
    expect(confirm).to_contain_text("This cannot be undone.")
    expect(confirm).to_contain_text("Key compromise")
    expect(page.locator("#revoke-orders")).to_contain_text(tracking_id)
    expect(page.locator("#revoke-orders")).to_contain_text("queue.example.com")
    page.get_by_role("button", name="Revoke 1 certificate").click()
    expect(page.locator("#outcomes")).to_contain_text("Revoked; Entrust says REVOKED.")
    expect(page.locator("#action-results")).to_be_focused()
    expect(page.locator("#delete-revoked")).to_contain_text(
        "Delete the revoked certificates from SSL › Certificates?"
    )
    page.goto(order_url)
    expect(page.locator("#order-state")).to_contain_text("REVOKED")
    expect(page.locator("#order-history")).to_contain_text("Reason: Key compromise")
    page.locator("#order-certificate a").click()
    expect(page.locator("main")).to_contain_text("Revoked")

    # More > Delete: from CertDesk only; the certificate stays in SSL > Certificates.
    _tick_in_list(page, live_server, tracking_id)
    more = page.locator(".order-menu")
    more.get_by_text("More", exact=True).click()
    for item in ("#revoke", "#delete"):  # its items line up at the left, as the link does
        assert more.locator(item).evaluate("e => getComputedStyle(e).textAlign") == "left"
    more.get_by_text("More", exact=True).click()
    _menu(page, "Delete")
    expect(page.locator("#delete-explain")).to_contain_text("stays in SSL › Certificates")
    expect(page.locator("#delete-explain")).to_contain_text("order stays in Entrust")
    page.get_by_role("button", name="Delete from CertDesk").click()
    expect(page.locator("#confirm-error")).to_be_visible()  # the box was not ticked
    page.get_by_label(re.compile("Delete this order from CertDesk")).check()
    page.get_by_role("button", name="Delete from CertDesk").click()
    page.wait_for_url(live_server.url + "/entrust/")
    expect(page.locator(".flash-success")).to_contain_text("1 order deleted from CertDesk")
    expect(page.locator("#orders-table")).not_to_contain_text("queue.example.com")
    page.goto(live_server.url + "/certificates/")
    expect(page.locator("#certificates-table")).to_contain_text("queue.example.com")


def test_reissue_with_a_new_csr_then_renew_once_old_enough(page, live_server, sandbox):
    sandbox.seed(certificates=0, seed=6)
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    # Two certificates that Entrust issued 40 days ago: the sandbox's clock is moved back for the
    # orders, then forward again.
    sandbox.advance_clock(-40)
    _order(page, live_server, "shop.example.com")
    shop_url, shop_id = page.url, _tracking_id(page)
    _order(page, live_server, "renew.example.com")
    renew_url = page.url
    sandbox.advance_clock(40)

    # Reissue Certificate from the list, with a new key pair made in CertDesk.
    csr_id = _csr(page, live_server, "shop.example.com")
    _tick_in_list(page, live_server, shop_id)
    _menu(page, "Reissue Certificate")
    page.wait_for_url(re.compile(r".*/entrust/\d+/reissue$"))
    explain = page.locator("#successor-explain")
    expect(explain).to_contain_text("Entrust revokes the original certificate")
    expect(explain).to_contain_text("The expiry stays the same")
    expect(page.get_by_label("SANs")).to_have_value("shop.example.com")
    page.locator("input[name=csr_source][value=certdesk]").check()
    page.get_by_label("CSR made in CertDesk", exact=True).select_option(csr_id)
    page.get_by_role("button", name="Reissue Certificate").click()
    page.wait_for_url(ORDER_PAGE)
    expect(page.locator(".flash-success")).to_contain_text("Reissue issued")
    reminder = page.locator("#deploy-reminder")
    expect(reminder).to_contain_text("Deploy this certificate wherever the one it replaces")
    expect(reminder).to_contain_text("shop.example.com")
    expect(page.locator("#order-state")).to_contain_text("ACTIVE")
    expect(page.locator("#order-history")).to_contain_text("Reissue of")
    new_url = page.url
    # Just issued: Entrust would refuse to renew it, and the page says so before anything is sent.
    expect(page.locator("#renew")).to_be_disabled()
    expect(page.locator("#order-action-reasons")).to_contain_text("at least 30 days old")
    page.locator("#order-certificate a").click()
    expect(page.locator("#cert-order")).to_contain_text("Entrust order")
    page.goto(shop_url)
    expect(page.locator("#order-state")).to_contain_text("REISSUED")
    expect(page.locator("#order-history")).to_contain_text("Reissued into")
    page.locator("#order-fields").get_by_role("link", name=re.compile("order ")).last.click()
    expect(page).to_have_url(new_url)

    # Renew Certificate: 40 days old at Entrust, so it may; the current key, a new expiry.
    page.goto(renew_url)
    page.locator("#order-actions").get_by_role("button", name="Renew Certificate").click()
    page.wait_for_url(re.compile(r".*/entrust/\d+/renew$"))
    expect(page.locator("#successor-problem")).to_have_count(0)
    expect(page.locator("input[name=csr_source][value=keep]")).to_be_checked()
    latest = page.get_by_label("Expiration Date").get_attribute("max")
    page.get_by_label("Expiration Date").fill(latest)
    page.get_by_role("button", name="Renew Certificate").click()
    page.wait_for_url(ORDER_PAGE)
    expect(page.locator(".flash-success")).to_contain_text("Renewal issued")
    expect(page.locator(f'#order-fields time[datetime^="{latest}"]')).to_have_count(1)  # expiry
    page.goto(renew_url)
    expect(page.locator("#order-state")).to_contain_text("RENEWED")
    expect(page.locator("#order-history")).to_contain_text("Renewed into")

    page.goto(live_server.url + "/certificates/?q=example.com")
    table = page.locator("#certificates-table")
    expect(table.locator("tr", has_text="shop.example.com")).to_have_count(2)
    expect(table.locator("tr", has_text="renew.example.com")).to_have_count(2)
