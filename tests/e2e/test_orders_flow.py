"""In a real browser against `certdesk serve` and the sandbox: Import Existing Orders with its
progress bar; Order Certificate from a CSR made in CertDesk, issued and in SSL > Certificates; an
order queued for approval, approved at Entrust, picked up by Check Order Status."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def _link_sandbox(page, server, sandbox, name: str = "Sandbox") -> None:
    page.goto(server.url + "/entrust/manage/credentials/new")
    page.get_by_label("Credential Name").fill(name)
    page.get_by_label("User Name").fill(sandbox.api_user)
    page.get_by_label("API Key", exact=True).fill(sandbox.api_key)
    page.get_by_label("Base URL").fill(sandbox.base_url)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#sync-job .job-succeeded")).to_be_visible(timeout=30000)


def _orders_sent(sandbox) -> list[dict]:
    """The order requests the sandbox received (not Validate's)."""
    return [
        r
        for r in sandbox.requests()
        if r["method"] == "POST"
        and r["path"].rstrip("/") == "/enterprise/v2/certificates"
        and not (r["body"] or {}).get("validateOnly")
    ]


def order_with_a_new_key(page, server, sans: str, friendly_name: str = "") -> str:
    """Order Certificate with a key pair and CSR made for ``sans``; the order page's address."""
    page.goto(server.url + "/entrust/new")
    page.get_by_label("Organization").select_option(label="CertDesk Demo Corp")
    page.get_by_label("Product").select_option("STANDARD_SSL")
    page.locator("input[name=csr_source][value=new]").check()
    page.locator("#sans").fill(sans)
    if friendly_name:
        page.get_by_label("Certificate Friendly Name").fill(friendly_name)
    page.get_by_role("button", name="Order Certificate").click()
    page.wait_for_url(re.compile(r".*/entrust/\d+$"))
    return page.url


def _order(page, server, cn: str, *, queue: bool = False, before_ordering=None) -> None:
    """Make a key pair and CSR in CertDesk, then order a certificate from it (``before_ordering``
    is called after Validate, with the button to order)."""
    page.goto(server.url + "/csrs/new")
    page.locator("input[name=CN]").fill(cn)
    page.locator("select[name=key_type]").select_option("p256")
    page.get_by_role("button", name="Create key and CSR").click()
    page.wait_for_url(re.compile(r".*/csrs/\d+$"))

    page.goto(server.url + "/")
    page.locator("nav .mainnav summary", has_text="SSL").click()
    page.get_by_role("link", name="Entrust", exact=True).click()
    page.wait_for_url(server.url + "/entrust/")
    page.get_by_role("button", name="Order Certificate").click()
    page.wait_for_url(server.url + "/entrust/new")
    # The form fits the window: nothing (not the hidden default button) makes it scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.get_by_label("Credential Name")).to_have_value(re.compile(r"\d+"))
    page.get_by_label("Organization").select_option(label="CertDesk Demo Corp")
    longest = page.locator("#expires_on").get_attribute("max")
    page.get_by_label("Product").select_option("STANDARD_SSL")
    # The date picker goes no further than the chosen product allows.
    allowed = page.locator("#product option[value=STANDARD_SSL]").get_attribute("data-max")
    expect(page.locator("#expires_on")).to_have_attribute("max", allowed)
    assert allowed < longest
    # Choosing from the list of CSRs chooses that way of giving one, even after another.
    page.locator("input[name=csr_source][value=paste]").check()
    option = page.locator("select[name=csr_id] option", has_text=f"{cn} ·")
    expect(option).to_contain_text("key held")
    page.get_by_label("CSR made in CertDesk", exact=True).select_option(
        option.get_attribute("value")
    )
    expect(page.locator("input[name=csr_source][value=certdesk]")).to_be_checked()
    page.get_by_label("Application").fill("e2e")
    page.get_by_label("Certificate Friendly Name").fill(f"{cn} (browser)")
    if queue:
        page.get_by_label("I agree to queue the request for Entrust Administrator approval").check()
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#validation-result")).to_contain_text("Entrust would accept this order")
    # The page came back from Validate: the keyboard and a screen reader start at its answer.
    expect(page.locator("#validation-result")).to_be_focused()
    button = page.get_by_role("button", name="Order Certificate")
    if before_ordering is not None:
        before_ordering(button)
    elif queue:  # from the keyboard: Enter in a field orders (not "Load its choices")
        page.get_by_label("Certificate Friendly Name").press("Enter")
    else:
        button.click()
    page.wait_for_url(re.compile(r".*/entrust/\d+$"))


def test_import_existing_orders_with_the_progress_bar(page, live_server, sandbox):
    sandbox.seed(certificates=120, seed=6)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    # Entrust answers slowly, so the import's progress can be watched.
    sandbox.faults([{"kind": "latency", "ms": 150, "method": "GET"}])

    page.goto(live_server.url + "/entrust/")
    expect(page.locator("#orders-empty")).to_contain_text("No orders yet")
    page.locator(".order-menu").get_by_text("More", exact=True).click()
    page.locator(".order-menu").get_by_role("link", name="Import Existing Orders").click()
    page.wait_for_url(live_server.url + "/entrust/import")
    expect(page.get_by_label("Expired")).to_be_checked()
    expect(
        page.get_by_label("Orders already imported (leave them as they are)")
    ).not_to_be_checked()
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r".*/entrust/import\?job=\d+.*"))
    # Said at once (a screen reader starts at the message), not only once the import has ended.
    started = page.locator("main > .flash")
    expect(started).to_contain_text("Import started: its progress and outcome are shown below")
    expect(started).to_be_focused()
    job = page.locator("#import-job article.job")
    expect(job).to_contain_text("Import existing orders of Sandbox")
    # It runs in the background, polled; its bar says which job it is about.
    expect(job.get_by_role("progressbar", name="Import existing orders of Sandbox")).to_be_visible()
    expect(page.locator("#import-job .job-succeeded")).to_be_visible(timeout=60000)
    expect(job).to_contain_text("new")
    expect(job).to_contain_text("certificates")
    sandbox.clear_faults()

    page.get_by_role("link", name="See the orders of this credential").click()
    rows = page.locator("#orders-table tbody tr[data-order]")
    expect(rows.first).to_be_visible()
    assert rows.count() == 50  # the first page of more than 50
    expect(page.locator("#orders-results nav.pager")).to_contain_text("1–50 of")
    # Filter by status as a user would; the table updates in place.
    page.get_by_label("Status").select_option("PENDING")
    page.wait_for_url(re.compile(r".*status=PENDING.*"))
    expect(page.locator("#orders-table tbody")).to_contain_text("PENDING")
    expect(page.locator("#orders-table tbody")).not_to_contain_text("ACTIVE")


def test_order_a_certificate_then_one_queued_for_approval(page, live_server, sandbox):
    sandbox.seed(certificates=0, seed=6)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)

    _order(page, live_server, "shop.example.com")
    expect(page.locator(".flash-success")).to_contain_text("Certificate issued")
    expect(page.locator("#order-state")).to_contain_text("ACTIVE")
    page.locator("#order-certificate a").click()
    page.wait_for_url(re.compile(r".*/certificates/\d+$"))
    expect(page.locator("#cert-order")).to_contain_text("Entrust order")
    expect(page.get_by_text("Private key held").first).to_be_visible()
    page.goto(live_server.url + "/certificates/")
    expect(page.locator("#certificates-table")).to_contain_text("shop.example.com")

    _order(page, live_server, "queue.example.com", queue=True)
    expect(page.locator("#order-state")).to_contain_text("PENDING")
    expect(page.locator("#order-no-certificate")).to_be_visible()
    tracking_id = page.locator("#order-fields dd").first.inner_text().strip()
    sandbox.set_certificate_status(int(tracking_id), "ACTIVE")  # an Entrust administrator
    page.get_by_role("button", name="Check Order Status").click()
    expect(page.locator(".flash-success")).to_contain_text("1 checked, 1 changed")
    expect(page.locator(".flash-success")).to_contain_text("added to SSL › Certificates")
    expect(page.locator("#order-state")).to_contain_text("ACTIVE")
    expect(page.locator("#order-history")).to_contain_text("PENDING → ACTIVE")
    expect(page.locator("#order-history")).to_contain_text(
        "Certificate added to SSL › Certificates."
    )
    expect(page.locator("#order-certificate")).to_contain_text("queue.example.com")
    # The requester sees the change in a notice on every page until dismissed.
    page.goto(live_server.url + "/")
    notice = page.locator("#order-updates")
    expect(notice).to_contain_text("PENDING → ACTIVE")
    notice.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#order-updates")).not_to_contain_text("PENDING")
    expect(page.locator("#pending-orders")).to_contain_text("No order is waiting")


def test_order_certificate_clicked_again_is_sent_once(page, live_server, sandbox):
    """Entrust answers slowly, nothing seems to happen, and the button is clicked again: the
    page sends the form once (its button says it is busy), and CertDesk places one order."""
    sandbox.seed(certificates=0, seed=6)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    posts, submits = [], []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/new") else None,
    )
    # The first sending as the page saw it, once the page's own handlers ran (a script on the
    # page cannot be asked while its navigation is pending).
    page.on("console", lambda m: submits.append(m.text) if m.text.startswith("submit") else None)

    def click_again(button):
        sandbox.faults([{"kind": "latency", "ms": 1500, "method": "POST"}])
        page.evaluate(
            """window.addEventListener("submit", (e) => setTimeout(() => console.log(
                 "submit", e.defaultPrevented ? "stopped" : "sent",
                 [...document.querySelectorAll("[aria-busy]")].map((el) => el.id).join())), true)"""
        )
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        posts.clear()
        page.mouse.click(x, y)
        page.wait_for_timeout(400)  # the first order is on its way to Entrust
        page.mouse.click(x, y)

    _order(page, live_server, "twice.example.com", before_ordering=click_again)
    expect(page.locator("#order-state")).to_contain_text("ACTIVE")
    expect(page.locator(".flash-warning")).to_have_count(0)
    assert submits[0] == "submit sent order-submit"  # and the button it was sent with is busy
    assert len(posts) == 1, posts
    sandbox.clear_faults()
    sent = _orders_sent(sandbox)
    assert len(sent) == 1, [r["fault"] for r in sent]
    page.goto(live_server.url + "/entrust/")
    expect(page.locator("#orders-table tbody tr[data-order]")).to_have_count(1)


def _add_catalog_rows(server, n: int) -> None:
    """``n`` more approved organizations and usable domains for the linked credential, written
    into the served database as a sync of a large account would."""
    from tests.conftest import make_app
    from webapp.catalog.models import CatalogDomain, CatalogOrganization
    from webapp.dbtypes import utcnow
    from webapp.extensions import db

    app = make_app(server.instance, server.database)
    now = utcnow()
    with app.app_context():
        for i in range(n):
            db.session.add(
                CatalogOrganization(
                    credential_id=1,
                    kind="organization",
                    client_id=1,
                    client_name="CertDesk Demo Corp",
                    name=f"Bulk Org {i:04d} Ltd",
                    verification_status="APPROVED",
                    first_seen_at=now,
                    updated_at=now,
                )
            )
            name = f"bulk{i:04d}.example.net"
            db.session.add(
                CatalogDomain(
                    credential_id=1,
                    client_id=1,
                    name=name,
                    name_reversed=name[::-1],
                    verification_status="APPROVED",
                    first_seen_at=now,
                    updated_at=now,
                )
            )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def test_an_account_with_many_choices_finds_them_as_you_type(page, live_server, sandbox):
    """More organizations and domains than the form lists: typing lists the matches, Enter in
    the search does the same rather than sending the form, and a match can be chosen."""
    sandbox.seed(certificates=0, seed=7)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    _add_catalog_rows(live_server, 600)
    page.goto(live_server.url + "/entrust/new")
    organizations = page.locator("#organization option")
    expect(organizations).to_have_count(51)  # "Choose ...", then the first 50
    page.get_by_label("Find by the start of its name").fill("BULK ORG 0421")
    expect(organizations).to_have_count(2)
    expect(organizations.nth(1)).to_have_text("Bulk Org 0421 Ltd (CertDesk Demo Corp)")
    page.get_by_label("Organization", exact=True).select_option("1:Bulk Org 0421 Ltd")

    domains = page.locator("#domain option")
    finder = page.get_by_label("Find by how it starts or ends (example.com)")
    finder.fill("bulk042")
    expect(domains).to_have_count(11)  # "Any usable domain ...", then bulk0420 to bulk0429
    page.get_by_label("Product").select_option("STANDARD_SSL")  # the form could be sent now
    page.evaluate("window.stillHere = true")  # a page loaded anew would not have it
    finder.fill("0427.example.net")
    finder.press("Enter")
    expect(domains).to_have_count(2)
    assert page.evaluate("window.stillHere === true")  # Enter sent no form
    page.get_by_label("Domain", exact=True).select_option("bulk0427.example.net")
    expect(page.get_by_label("Organization", exact=True)).to_have_value("1:Bulk Org 0421 Ltd")


def _add_csrs(server, names: list[str]) -> None:
    """CSRs for ``names``, newest last, written into the served database (rows alone: the form
    shows them, and nothing here is ordered with them)."""
    from datetime import timedelta

    from tests.conftest import make_app
    from webapp.csrs.models import Csr, CsrName
    from webapp.dbtypes import utcnow
    from webapp.extensions import db

    app = make_app(server.instance, server.database)
    now = utcnow()
    with app.app_context():
        for i, name in enumerate(names):
            row = Csr(
                common_name=name,
                subject=f"CN={name}",
                sans=name,
                key_label="ECDSA P-256",
                public_key_id=f"{i:064x}",
                pem="(not read by the form)",
                source="imported",
                created_at=now - timedelta(minutes=len(names) - i),
            )
            row.names = [CsrName(value=name, reversed=name[::-1])]
            db.session.add(row)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def test_a_csr_older_than_those_listed_is_found_as_you_type(page, live_server, sandbox):
    """The form lists the newest 100 unused CSRs: typing how a name starts or ends lists the
    matches however old, Enter does the same rather than sending the form, and one is chosen
    (with the choice of a CSR made in CertDesk)."""
    sandbox.seed(certificates=0, seed=7)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    _add_csrs(
        live_server, ["legacy.example.org"] + [f"host{i:03d}.example.com" for i in range(120)]
    )
    page.goto(live_server.url + "/entrust/new")
    csrs = page.locator("#csr_id option")
    expect(csrs).to_have_count(101)  # "Choose a CSR", then the newest 100
    expect(page.locator("#csr_id option", has_text="legacy.example.org")).to_have_count(0)
    finder = page.get_by_label("Find a CSR by how a name starts or ends")
    finder.fill("host00")
    expect(csrs).to_have_count(11)  # host000 to host009, newest first
    expect(csrs.nth(1)).to_contain_text("host009.example.com")
    page.evaluate("window.stillHere = true")  # a page loaded anew would not have it
    finder.fill("LEGACY")
    finder.press("Enter")
    expect(csrs).to_have_count(2)
    assert page.evaluate("window.stillHere === true")  # Enter sent no form
    expect(page.get_by_label("A CSR made in CertDesk")).to_be_checked()  # typing chose it
    finder.press("Tab")  # past Find, on to the list, from the keyboard
    expect(page.locator("#csr-find")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("CSR made in CertDesk", exact=True)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("CSR made in CertDesk", exact=True)).to_have_value(re.compile(r"\d+"))


def test_back_after_ordering_and_sent_again_places_no_second_order(page, live_server, sandbox):
    """Order Certificate, then the browser's Back and the same button again: the form comes back
    as it was sent (with its request id), so CertDesk shows the order it placed rather than
    placing another."""
    sandbox.seed(certificates=0, seed=7)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    placed = order_with_a_new_key(page, live_server, "back.example.com")

    page.go_back()
    page.wait_for_url(live_server.url + "/entrust/new")
    expect(page.locator("#sans")).to_have_value("back.example.com")
    page.get_by_role("button", name="Order Certificate").click()
    page.wait_for_url(placed)
    expect(page.locator(".flash-warning")).to_contain_text("This form was sent already")

    sent = _orders_sent(sandbox)
    assert len(sent) == 1, [r["body"] for r in sent]
    page.goto(live_server.url + "/entrust/")
    expect(page.locator("#orders-table tbody tr[data-order]")).to_have_count(1)


def test_an_order_page_keeps_its_values_whole_in_a_narrow_window(page, live_server, sandbox):
    """At 800 pixels the Order card's values (product, names, requester) are not squeezed by a long
    label into breaking mid-word."""
    sandbox.seed(certificates=0, seed=8)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    _order(page, live_server, "narrow.example.com")
    for width in (1280, 800):
        page.set_viewport_size({"width": width, "height": 900})
        lines = page.evaluate(
            """() => [...document.querySelectorAll('#order-fields dt')]
                 .filter((dt) => ['Product', 'Common name'].includes(dt.textContent.trim()))
                 .map((dt) => {
                   const range = document.createRange();
                   range.selectNodeContents(dt.nextElementSibling);
                   const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                   return [dt.textContent.trim(), tops.size];
                 })"""
        )
        assert lines == [["Common name", 1], ["Product", 1]], (width, lines)


def test_the_import_page_offers_the_chosen_credentials_last_exclusions(page, live_server, sandbox):
    """The exclusions follow the credential chosen: those of its last import, the defaults for
    one never imported; an import started after that uses what is ticked."""
    sandbox.seed(certificates=12, seed=6)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    expired = page.get_by_label("Expired", exact=True)
    existing = page.get_by_label("Orders already imported (leave them as they are)")

    page.goto(live_server.url + "/entrust/import")
    expect(expired).to_be_checked()
    expired.uncheck()
    existing.check()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-job .job-succeeded")).to_be_visible(timeout=60000)
    page.goto(live_server.url + "/entrust/import")
    expect(expired).not_to_be_checked()  # the only credential: its last import's exclusions
    expect(existing).to_be_checked()

    _link_sandbox(page, live_server, sandbox, name="Other")
    page.goto(live_server.url + "/entrust/import")
    credential = page.get_by_label("Credential Name")
    expect(expired).to_be_checked()  # none chosen yet: the defaults
    credential.select_option(label="Sandbox")
    expect(expired).not_to_be_checked()
    expect(existing).to_be_checked()
    credential.select_option(label="Other")
    expect(expired).to_be_checked()
    expect(existing).not_to_be_checked()
    credential.select_option(label="Sandbox")
    expect(existing).to_be_checked()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-job .job-succeeded")).to_be_visible(timeout=60000)
    page.goto(live_server.url + "/entrust/import")
    credential.select_option(label="Sandbox")
    expect(expired).not_to_be_checked()
    expect(existing).to_be_checked()
    # With scripts the exclusions and an order's choices come as the credential changes: no
    # button asks for them. Without, the buttons show and do it.
    expect(page.locator("#load-exclusions")).to_have_count(0)
    other_id = credential.locator("option", has_text="Other").get_attribute("value")
    page.goto(live_server.url + "/entrust/new")
    expect(page.get_by_label("Credential Name")).to_be_visible()
    expect(page.locator("#load-choices")).to_have_count(0)
    context = page.context.browser.new_context(java_script_enabled=False)
    bare = context.new_page()
    bare.set_default_timeout(15000)
    try:
        login(bare, live_server, "admin")
        bare.goto(live_server.url + "/entrust/import")
        bare.get_by_label("Credential Name").select_option(label="Other")
        bare.get_by_role("button", name="Load its last exclusions").click()
        expect(bare.get_by_label("Expired", exact=True)).to_be_checked()
        bare.get_by_label("Credential Name").select_option(label="Sandbox")
        bare.get_by_role("button", name="Load its last exclusions").click()
        expect(bare.get_by_label("Expired", exact=True)).not_to_be_checked()
        expect(
            bare.get_by_label("Orders already imported (leave them as they are)")
        ).to_be_checked()
        bare.goto(live_server.url + "/entrust/new")
        bare.get_by_label("Credential Name").select_option(label="Other")
        with bare.expect_navigation():
            bare.get_by_role("button", name="Load its choices").click()
        expect(bare.get_by_label("Credential Name")).to_have_value(str(other_id))
        expect(bare.get_by_label("Organization", exact=True)).to_be_visible()
    finally:
        context.close()
