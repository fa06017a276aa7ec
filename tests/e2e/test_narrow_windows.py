"""In a real browser at 1280, 1024 and 800 pixels wide: the dashboard's tables show every column
inside their cards, the lists fit 1280 pixels, a credential's actions are in view, and nothing
makes the page scroll sideways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_orders_flow import _link_sandbox, order_with_a_new_key

pytestmark = pytest.mark.e2e

CUT_OFF = """(table) => {
    const card = table.closest('article').getBoundingClientRect();
    return [...table.querySelectorAll('th, td')].filter(cell => {
        const box = cell.getBoundingClientRect();
        return box.right > card.right + 1 || box.left < card.left - 1;
    }).map(cell => cell.textContent.trim()).slice(0, 5);
}"""


def test_the_dashboards_tables_fit_their_cards(page, live_server, sandbox):
    sandbox.seed(certificates=20, seed=6)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    page.goto(live_server.url + "/entrust/import")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-job .job-succeeded")).to_be_visible(timeout=60000)

    for width in (1280, 1024, 800):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + "/")
        for table in ("#urgent-table", "#pending-orders-table"):
            expect(page.locator(f"{table} tbody tr td a").first).to_be_visible()
            assert page.locator(table).evaluate(CUT_OFF) == [], (width, table)
        expect(page.locator("#urgent-table th", has_text="Not after")).to_be_in_viewport()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), width

    # At 1280 pixels the lists show every column without scrolling sideways.
    page.set_viewport_size({"width": 1280, "height": 900})
    for path, table in (
        ("/entrust/", "#orders-table"),
        ("/entrust/manage/domains", "#domains-table"),
    ):
        page.goto(live_server.url + path)
        expect(page.locator(f"{table} tbody tr").first).to_be_visible()
        wrap = page.locator(table).locator("xpath=..")
        assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth + 1"), path


def test_a_credentials_test_login_and_sync_are_in_view_at_every_width(page, live_server, sandbox):
    sandbox.seed(certificates=0, seed=6)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    for width in (1280, 1024, 800):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + "/entrust/manage/")
        row = page.locator("#credentials-table tbody tr").first
        # Nothing of the table is out of sight to the right (no sideways scrolling to find them).
        wrap = page.locator("#credentials-table").locator("xpath=..")
        assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth + 1"), width
        for name in ("Test Login", "Sync"):
            expect(row.get_by_role("button", name=name, exact=True)).to_be_in_viewport(ratio=1)
        # Each value still says what it is.
        for label in ("Credential Name", "Base URL", "Organizations", "Status", "Actions"):
            cell = row.locator(f'td[data-label="{label}"]')
            expect(cell).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), width
    # Test Login from the narrow card still reports in words.
    row.get_by_role("button", name="Test Login", exact=True).click()
    expect(row.locator(".cred-status")).to_contain_text("Login OK")


def test_the_audit_trail_keeps_its_detail_readable_at_800_pixels(page, live_server):
    """Below 1,180 pixels the other columns squeezed Detail to a letter or two a line."""
    # A refused sign-in under a long name: wide Who and Object cells, as a real trail has.
    page.goto(live_server.url + "/login")
    page.get_by_label("User name").fill("someone.with.a.rather.long.user.name")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong user name or password.").wait_for()
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/users/new")
    page.get_by_label("User name").fill("narrowcheck")
    page.locator("input[name=password]").fill("a narrow window password")
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url("**/admin/users/*")
    page.set_viewport_size({"width": 800, "height": 900})
    for path, table in (("/admin/audit/", "#audit-table"), ("/admin/users/1", "#sessions-table")):
        page.goto(live_server.url + path)
        cell = page.locator(f"{table} td.detail").filter(has_text=re.compile(r"\w")).first
        assert cell.evaluate("c => c.getBoundingClientRect().width") >= 120, path
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path


def _scrolls_sideways(page) -> list[str]:
    """What sticks out past the window's right edge, outside a box that scrolls on its own."""
    return page.evaluate(
        """() => {
        const w = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= w) return [];
        return [...document.body.querySelectorAll('*')].filter(e => {
            const box = e.getBoundingClientRect();
            return box.width > 0 && box.right > w + 1 && !e.closest('.table-wrap')
                && !e.closest('details:not([open]) > ul');
        }).map(e => e.tagName + ' ' + (e.textContent || '').trim().slice(0, 40)).slice(0, 5);
    }"""
    )


def test_a_phone_wide_window_never_scrolls_sideways(page, live_server, sandbox):
    """At 390 pixels (a phone) the top bar, the Manage tabs, an order's history, a long friendly
    name and a long user name stay inside the window, the Manage tabs keep to one row, and Sign
    out is in reach."""
    sandbox.seed(certificates=0, seed=9)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    page.goto(live_server.url + "/admin/users/")
    page.get_by_role("link", name="admin", exact=True).click()
    page.get_by_label("Full name").fill("Ada Augusta King, Countess of Lovelace, Administrator")
    page.get_by_role("button", name="Save name and e-mail").click()
    expect(page.get_by_text("Saved the name and e-mail of admin.")).to_be_visible()
    order = order_with_a_new_key(
        page, live_server, "phone.example.com", friendly_name="Phone" + "Friendly" * 25
    )

    page.set_viewport_size({"width": 390, "height": 844})
    for url in (
        order,
        live_server.url + "/",
        live_server.url + "/entrust/",
        live_server.url + "/entrust/new",
        live_server.url + "/entrust/manage/",
        live_server.url + "/entrust/manage/domains",
        live_server.url + "/certificates/",
        live_server.url + "/admin/users/",
    ):
        page.goto(url)
        assert _scrolls_sideways(page) == [], url
    # The Manage tabs stay on one row, each in full view.
    page.goto(live_server.url + "/entrust/manage/domains")
    tabs = page.locator(".tabs a")
    assert tabs.count() == 4
    tops = {round(box["y"]) for box in (tab.bounding_box() for tab in tabs.all())}
    assert len(tops) == 1, tops
    for tab in tabs.all():
        expect(tab).to_be_in_viewport(ratio=1)
    page.locator(".user-menu summary").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport(ratio=1)
    # Wider, the long name is cut short: each menu's name stays on one line with its arrow.
    for width in (800, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + "/")
        for summary in page.locator(".mainnav summary").all():
            assert summary.evaluate("s => s.getBoundingClientRect().height") < 50, width
        assert _scrolls_sideways(page) == [], width


def test_a_320_pixel_window_reflows_every_page(page, live_server, sandbox):
    """WCAG's reflow width (320 CSS pixels, a 1280-pixel window at 400%): a certificate's
    extensions, a CSR's actions and SSL › Entrust's More menu, open, stay inside the window."""
    sandbox.seed(certificates=0, seed=9)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    order = order_with_a_new_key(page, live_server, "reflow.example.com")
    certificate = page.locator("#order-certificate a").first.get_attribute("href")
    page.goto(live_server.url + "/csrs/")
    csr = page.locator("#csrs-table tbody a").first.get_attribute("href")

    page.set_viewport_size({"width": 320, "height": 700})
    for url in (order, live_server.url + certificate, live_server.url + csr):
        page.goto(url)
        assert _scrolls_sideways(page) == [], url
    page.goto(live_server.url + "/entrust/")
    page.locator(".order-more summary").click()
    for name in ("Import Existing Orders", "Revoke Certificate", "Delete"):
        expect(page.locator(".order-more ul").get_by_text(name, exact=True)).to_be_in_viewport(
            ratio=1
        )
    assert _scrolls_sideways(page) == []
