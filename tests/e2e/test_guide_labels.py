"""In a real browser against `certdesk serve` and the sandbox, a reader of the Key Manager Plus
guide finds its names where they look: where to start on an empty install, SSL > Entrust and
SSL > Certificates in the menu, the credential form and Test Login, the Organizations, Domains and
Products tabs with their Sync, the orders' actions (More > Import Existing Orders, Revoke
Certificate, Delete), the import's exclusions and where its certificates land, an order's actions
and their pages, and the Order Certificate form's fields."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_orders_flow import _link_sandbox

pytestmark = pytest.mark.e2e

ORDER_FORM_FIELDS = (
    "Credential Name",
    "Organization",
    "Product",
    "Domain",
    "Extended Key Usage",
    "SANs",
    "Signature Algorithm",
    "Expiration Date",
    "Certificate Friendly Name",
    "Requester Name",
    "Requester Email",
    "Requester Phone",
    "Additional e-mails",
    "I agree to queue the request for Entrust Administrator approval",
    "I agree to send the certificate content for CT Logs",
)


def _buttons(scope, *names: str) -> None:
    """Each name is a visible button (or a link drawn as one) of ``scope``, in those words."""
    for name in names:
        button = scope.get_by_role("button", name=name, exact=True)
        expect(button.or_(scope.get_by_role("link", name=name, exact=True))).to_be_visible()


def _open_ssl(page, entry: str) -> None:
    page.locator("nav .mainnav summary", has_text="SSL").click()
    page.locator("nav .mainnav").get_by_role("link", name=entry, exact=True).click()


def test_the_guides_labels_are_where_a_reader_looks(page, live_server, sandbox):
    sandbox.seed(certificates=20, seed=6)
    login(page, live_server, "admin")

    # An empty install: SSL > Entrust says where to start, and its link leads there.
    _open_ssl(page, "Entrust")
    start = page.locator("#orders-empty #no-credential")
    expect(start).to_contain_text("Link your Entrust account in SSL › Entrust › Manage first.")
    start.get_by_role("link", name="SSL › Entrust › Manage").click()
    page.wait_for_url(live_server.url + "/entrust/manage/")

    # SSL > Entrust > Manage: the credential's fields, Test Login and Save.
    _open_ssl(page, "Entrust › Manage")
    _buttons(page, "Add Credential")  # in the guide's words, capitals included
    page.get_by_role("button", name="Add Credential", exact=True).click()
    for label in ("Credential Name", "User Name", "API Key"):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    expect(page.locator("#api_key-help")).to_contain_text(  # where Entrust makes the API key
        "Administration › Advanced Settings › API, Generate credentials"
    )
    expect(page.get_by_role("group", name=re.compile("^Client certificate"))).to_be_visible()
    _buttons(page, "Test Login", "Save")
    _link_sandbox(page, live_server, sandbox)
    table = page.locator("#credentials-table")
    for heading in ("Credential Name", "User Name", "Organizations", "Domains", "Products"):
        expect(table.get_by_role("columnheader", name=heading, exact=True)).to_be_visible()
    _buttons(table, "Test Login", "Sync")
    tabs = page.get_by_role("navigation", name="Entrust › Manage")
    for tab in ("Organizations", "Domains", "Products"):
        tabs.get_by_role("link", name=tab, exact=True).click()
        expect(page.get_by_role("heading", name=tab, exact=True)).to_be_visible()
        _buttons(page.locator(".tab-sync"), "Sync")

    # SSL > Entrust: the actions on orders, some under More.
    _open_ssl(page, "Entrust")
    menu = page.get_by_role("navigation", name="Order actions")
    _buttons(
        menu,
        "Order Certificate",
        "Check Order Status",
        "Update Certificate Status",
        "Reissue Certificate",
        "Renew Certificate",
    )
    menu.get_by_text("More", exact=True).click()
    _buttons(menu, "Import Existing Orders", "Revoke Certificate", "Delete")

    # Import Existing Orders: the credential, what to exclude, and where the certificates land.
    menu.get_by_role("link", name="Import Existing Orders").click()
    expect(page.get_by_role("heading", name="Import Existing Orders")).to_be_visible()
    expect(page.get_by_label("Credential Name")).to_be_visible()
    exclude = page.get_by_role("group", name="Exclude")
    for option in ("Expired", "Revoked", "Declined", "Deactivated"):
        expect(exclude.get_by_label(option, exact=True)).to_be_visible()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-job .job-succeeded")).to_be_visible(timeout=60000)
    expect(page.locator("#import-job")).to_contain_text("certificates added to SSL › Certificates")

    # An issued order: its actions, then the pages they open.
    page.get_by_role("link", name="See the orders of this credential").click()
    orders = page.locator("#orders-table")
    for heading in ("Tracking ID", "Status", "Product", "Organization"):
        expect(orders.get_by_role("columnheader", name=heading)).to_be_visible()
    row = orders.locator("tbody tr", has=page.locator(".badge", has_text=re.compile("^ACTIVE$")))
    row.first.locator("td.nowrap a").click()
    page.wait_for_url(re.compile(r".*/entrust/\d+$"))
    order_url = page.url
    expect(page.locator("#order-state")).to_contain_text("ACTIVE")
    _buttons(page, "Check Order Status")
    actions = page.get_by_role("navigation", name="Actions on this order")
    for action in ("update-status", "reissue", "renew", "revoke", "delete"):
        expect(actions.locator(f"#{action}")).to_be_visible()
    expect(actions).to_contain_text(
        "Update Certificate Status Reissue Certificate Renew Certificate Revoke Certificate Delete"
    )
    actions.get_by_role("button", name="Update Certificate Status").click()
    expect(page.get_by_role("heading", name="Update Certificate Status")).to_be_visible()
    for status_action in ("Approve", "Decline", "Suspend", "Resume"):
        expect(page.get_by_role("button", name=status_action, exact=True)).to_be_visible()
    for action, title in (("revoke", "Revoke Certificate"), ("reissue", "Reissue Certificate")):
        page.goto(order_url)
        page.locator(f"#order-actions #{action}").click()
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    expect(page.get_by_label("Signature Algorithm")).to_be_visible()
    page.goto(order_url + "/revoke")
    expect(page.get_by_label("Revocation Reason")).to_be_visible()

    # Order Certificate: the form's fields in the guide's words.
    _open_ssl(page, "Entrust")
    page.get_by_role("navigation", name="Order actions").get_by_role(
        "button", name="Order Certificate"
    ).click()
    page.wait_for_url(live_server.url + "/entrust/new")
    expect(page.get_by_role("heading", name="Order Certificate")).to_be_visible()
    for label in ORDER_FORM_FIELDS:
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    page.get_by_text("Private Key (optional", exact=False).click()
    expect(page.get_by_label("Private Key Password", exact=True)).to_be_visible()
    _buttons(page, "Validate", "Order Certificate")

    # SSL > Certificates holds what the import brought.
    _open_ssl(page, "Certificates")
    expect(page.get_by_role("heading", name="Certificates", exact=True)).to_be_visible()
    expect(page.locator("#certificates-table tbody tr").first).to_contain_text("Entrust import")
