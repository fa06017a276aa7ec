"""In a real browser: Back and Forward across a list filtered in place (htmx pushes each filter's
address). The browser keeps no copy of the earlier states, so each one is loaded again; when that
load is refused (the session ended meanwhile) or fails (CertDesk stopped), the person sees the
sign-in page or the browser's error at the address it belongs to, not the earlier list left in
place under a new address nor the sign-in form put inside the page's frame. And Back to the order
form: the choices the browser puts back and those depending on them agree."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.helpers import PASSWORD

pytestmark = pytest.mark.e2e


def _filter_audit(page, server) -> None:
    page.goto(server.url + "/admin/audit/")
    page.locator("select[name=action]").select_option("auth.login")
    page.wait_for_url(re.compile(r".*action=auth\.login.*"))


def test_back_and_forward_show_each_state_and_its_address(page, live_server):
    login(page, live_server, "admin")
    _filter_audit(page, live_server)

    page.go_back()
    expect(page).to_have_url(live_server.url + "/admin/audit/")
    expect(page.locator("select[name=action]")).to_have_value("")
    page.go_forward()
    expect(page).to_have_url(re.compile(r".*action=auth\.login.*"))
    expect(page.locator("select[name=action]")).to_have_value("auth.login")

    # The session ends while the page is open: Back goes to the sign-in page, at its own address
    # (the one a reload opens), which then comes back to the list as it was at that step.
    with sqlite3.connect(live_server.database) as conn:
        conn.execute("UPDATE user_session SET last_seen_at = '2000-01-01 00:00:00.000000'")
    page.go_back()
    expect(page).to_have_url(re.compile(r".*/login\?next=.*"))
    expect(page.locator("main")).to_contain_text("signed out after a period of inactivity")
    expect(page.get_by_role("banner")).to_have_count(1)  # one page, not one inside another
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/admin/audit/")
    expect(page.locator("select[name=action]")).to_have_value("")


def test_back_while_certdesk_does_not_answer_leaves_no_stale_list(page, live_server):
    login(page, live_server, "admin")
    _filter_audit(page, live_server)
    page.route(re.compile(r".*/admin/audit/$"), lambda route: route.abort())
    page.go_back()
    # The browser says it could not load the whole trail's address; the filtered list is not
    # left showing as if it were that page.
    expect(page.locator("select[name=action]")).to_have_count(0)


def _link(page, server, sandbox, name: str, key: str) -> None:
    page.goto(server.url + "/entrust/manage/credentials/new")
    page.get_by_label("Credential Name").fill(name)
    page.get_by_label("User Name").fill(sandbox.api_user)
    page.get_by_label("API Key", exact=True).fill(key)
    page.get_by_label("Base URL").fill(sandbox.base_url)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#sync-job .job-succeeded, #sync-job .job-failed")).to_be_visible(
        timeout=30000
    )


def test_back_to_the_order_form_shows_the_choices_of_the_credential_chosen(
    page, live_server, sandbox
):
    """The browser puts back the credential chosen on the order form; the organizations,
    products and domains below are those of that credential, not of the one the form was
    loaded with."""
    sandbox.seed(certificates=2, seed=5)
    login(page, live_server, "admin")
    _link(page, live_server, sandbox, "Alpha", sandbox.api_key)
    _link(page, live_server, sandbox, "Beta", "wrong-key")  # its sync fails: no choices
    page.goto(live_server.url + "/entrust/new")
    page.locator("#credential_id").select_option(label="Beta")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Beta")
    page.goto(live_server.url + "/jobs/")
    page.go_back()
    expect(page).to_have_url(live_server.url + "/entrust/new")
    expect(page.locator("#credential_id option:checked")).to_have_text("Beta")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Beta")
    expect(page.locator("#choice-problems")).to_contain_text("Beta has no approved organization")


def _option_values(page, select: str) -> list[str]:
    return [v for v in page.locator(f"{select} option").evaluate_all("os => os.map(o => o.value)")]


def test_back_to_the_order_form_keeps_the_organization_product_and_domain_chosen(
    page, live_server, sandbox
):
    """Back to the order form: its credential's choices are loaded again, and the organization,
    product and domain chosen before are chosen again where they are still among them; one no
    longer offered (another credential's, put back by the browser) is not."""
    sandbox.seed(certificates=2, seed=5)
    login(page, live_server, "admin")
    _link(page, live_server, sandbox, "Alpha", sandbox.api_key)
    _link(page, live_server, sandbox, "Beta", "wrong-key")  # its sync fails: no choices
    page.goto(live_server.url + "/entrust/new")
    page.locator("#credential_id").select_option(label="Alpha")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Alpha")
    chosen = {}
    for field in ("organization", "product", "domain"):
        offered = [v for v in _option_values(page, f"#{field}") if v]
        assert offered, field
        chosen[field] = offered[-1]  # not the first: one the page would not choose itself
        page.locator(f"#{field}").select_option(chosen[field])
    page.goto(live_server.url + "/jobs/")
    page.go_back()
    expect(page).to_have_url(live_server.url + "/entrust/new")
    expect(page.locator("#credential_id option:checked")).to_have_text("Alpha")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Alpha")
    for field, value in chosen.items():
        expect(page.locator(f"#{field}")).to_have_value(value)

    # Beta offers none of them: with Beta chosen, Back shows Beta's empty choices.
    page.locator("#credential_id").select_option(label="Beta")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Beta")
    page.goto(live_server.url + "/jobs/")
    page.go_back()
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Beta")
    for field in chosen:
        expect(page.locator(f"#{field}")).to_have_value("")

    # A form opened anew starts with nothing chosen.
    page.goto(live_server.url + "/entrust/new")
    page.locator("#credential_id").select_option(label="Alpha")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Alpha")
    expect(page.locator("#organization")).to_have_value("")


def _product_limit(page, product: str) -> str:
    return page.locator(f"#product option[value='{product}']").get_attribute("data-max")


CUSTOM_TYPED = {
    "custom_text1": "CC-4711",
    "custom_text2": "billing",
    "custom_dropdown1": "staging",
    "custom_date1": "2031-05-17",
}


def test_back_to_the_order_form_keeps_the_custom_fields_typed_and_the_products_date_limit(
    page, live_server, sandbox
):
    """Back to the order form: the custom fields typed are filled in again once the credential's
    choices are loaded again, and the expiration date's last day is the product's chosen again,
    not the one the page was loaded with. No password or private key is kept for it."""
    sandbox.seed(certificates=2, seed=5)
    login(page, live_server, "admin")
    _link(page, live_server, sandbox, "Alpha", sandbox.api_key)

    # One credential: the form comes with its choices, the date bounded by its longest product.
    # The product the browser puts back bounds it again.
    page.goto(live_server.url + "/entrust/new")
    expires = page.locator("#expires_on")
    longest = expires.get_attribute("max")
    page.locator("#product").select_option("STANDARD_SSL")
    standard = _product_limit(page, "STANDARD_SSL")
    assert standard < longest
    expect(expires).to_have_attribute("max", standard)
    page.goto(live_server.url + "/jobs/")
    page.go_back()
    expect(page.locator("#product")).to_have_value("STANDARD_SSL")
    expect(expires).to_have_attribute("max", standard)

    # Two credentials: the form comes with none chosen, and the choices come with the credential.
    _link(page, live_server, sandbox, "Beta", "wrong-key")
    page.goto(live_server.url + "/entrust/new")
    page.locator("#credential_id").select_option(label="Alpha")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Alpha")
    expect(expires).to_have_attribute("max", longest)  # Alpha's longest, not the page's
    page.locator("#product").select_option("PRIVATE_SSL")
    private = _product_limit(page, "PRIVATE_SSL")
    expect(expires).to_have_attribute("max", private)
    for name, value in CUSTOM_TYPED.items():
        field = page.locator(f"#{name}")
        if name == "custom_dropdown1":
            field.select_option(value)
        else:
            field.fill(value)
    page.get_by_text("Private Key (optional").click()
    page.locator("#key_text").fill("-----BEGIN PRIVATE KEY-----\nSECRETKEYBODY\n")
    page.locator("#key_password").fill("key password typed")
    page.goto(live_server.url + "/jobs/")
    page.go_back()
    expect(page).to_have_url(live_server.url + "/entrust/new")
    expect(page.locator("#choices-loaded")).to_contain_text("The choices of Alpha")
    expect(page.locator("#product")).to_have_value("PRIVATE_SSL")
    expect(expires).to_have_attribute("max", private)
    for name, value in CUSTOM_TYPED.items():
        expect(page.locator(f"#{name}")).to_have_value(value)

    # A product chosen by hand bounds it as before.
    page.locator("#product").select_option("STANDARD_SSL")
    expect(expires).to_have_attribute("max", standard)

    kept = page.evaluate("JSON.stringify(Object.assign({}, window.sessionStorage))")
    assert "CC-4711" in kept
    assert "SECRETKEYBODY" not in kept
    assert "key password typed" not in kept
    assert "key_" not in kept


def test_arrow_keys_through_a_filter_drop_down_filter_once(page, live_server):
    """Chromium fires `change` for each ArrowDown in a closed drop-down: going through three
    choices by keyboard loads the list once, for the one stopped at, and adds one history entry
    (not one per choice passed)."""
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/audit/")
    start = page.evaluate("history.length")
    loads = []
    page.on(
        "request",
        lambda req: loads.append(req.url) if req.headers.get("hx-request") == "true" else None,
    )
    action = page.locator("select[name=action]")
    action.focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    third = action.input_value()
    assert third  # the keys moved through the choices
    page.wait_for_url(re.compile(r".*action=" + re.escape(third) + ".*"))
    page.wait_for_load_state("networkidle")
    audit_loads = [url for url in loads if "/admin/audit/" in url]
    assert len(audit_loads) == 1, audit_loads
    assert page.evaluate("history.length") == start + 1
