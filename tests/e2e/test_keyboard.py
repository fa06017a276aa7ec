"""In a real browser, from the keyboard alone: after htmx replaces part of a page (a list sorted
or paged, a credential's Test Login, the credentials brought up to date when a sync ends), the
focus stays on the control that was used instead of falling to the page's <body>, and a screen
reader hears what changed; the focused control is clearly outlined."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.e2e.test_orders_flow import _link_sandbox

pytestmark = pytest.mark.e2e


def _press(page, locator, key: str = "Enter") -> None:
    locator.focus()
    page.keyboard.press(key)


def test_sorting_and_paging_the_orders_keep_the_focus_and_say_what_is_shown(
    page, live_server, sandbox
):
    sandbox.seed(certificates=120, seed=6)
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    page.goto(live_server.url + "/entrust/import")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-job .job-succeeded")).to_be_visible(timeout=60000)

    page.goto(live_server.url + "/entrust/")
    table = page.locator("#orders-table")
    status = table.get_by_role("columnheader", name="Status")
    _press(page, status.get_by_role("link"))
    expect(page).to_have_url(re.compile(r"sort=status&dir=asc"))
    expect(status).to_have_attribute("aria-sort", "ascending")
    expect(status.get_by_role("link")).to_be_focused()
    announcer = page.locator("#announcer")
    expect(announcer).to_have_text(re.compile(r"^1–50 of [\d,]+\. Sorted by Status, ascending\.$"))

    # Once more: the other direction, still on the same header.
    _press(page, status.get_by_role("link"))
    expect(status).to_have_attribute("aria-sort", "descending")
    expect(status.get_by_role("link")).to_be_focused()
    expect(announcer).to_contain_text("Sorted by Status, descending.")

    # The second page is the last one (87 orders): with no Next there, the focus goes to Previous;
    # back on the first one, with no Previous, to Next.
    pager = page.get_by_role("navigation", name="Pages")
    _press(page, pager.get_by_role("link", name="Next"))
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(pager.get_by_role("link", name="Previous")).to_be_focused()
    expect(announcer).to_have_text("51–87 of 87. Sorted by Status, descending.")
    # The new page is read from its top, not from the pager left at the bottom of the last one.
    first_row = table.locator("tbody tr").first
    expect(first_row).to_be_in_viewport()
    _press(page, pager.get_by_role("link", name="Previous"))
    expect(page).to_have_url(re.compile(r"page=1"))
    expect(pager.get_by_role("link", name="Next")).to_be_focused()
    expect(announcer).to_have_text(re.compile(r"^1–50 of 87\. "))
    expect(first_row).to_be_in_viewport()
    # With the mouse as well.
    pager.get_by_role("link", name="Next").click()
    expect(announcer).to_have_text(re.compile(r"^51–87 of 87\. "))
    expect(first_row).to_be_in_viewport()
    assert page.evaluate("document.activeElement !== document.body")


def test_a_credentials_test_login_is_read_out_and_its_sync_keeps_the_focus(
    page, live_server, sandbox
):
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    page.goto(live_server.url + "/entrust/manage/")
    row = page.locator("#credentials-table tbody tr").first

    _press(page, row.get_by_role("button", name="Test Login"))
    expect(row.locator(".cred-status")).to_contain_text("Login OK")
    expect(page.locator("#announcer")).to_contain_text("Login OK")
    expect(row.get_by_role("button", name="Test Login")).to_be_focused()

    # The list is brought up to date when the sync ends; the focus stays on Sync.
    _press(page, row.get_by_role("button", name="Sync"))
    expect(page.locator("#sync-job .job-succeeded")).to_be_visible(timeout=30000)
    expect(row.locator("td").nth(7)).not_to_have_text("Never")
    page.wait_for_load_state("networkidle")
    expect(row.get_by_role("button", name="Sync")).to_be_focused()


def test_the_jobs_list_refreshing_itself_keeps_the_focus_and_is_not_read_out(
    page, live_server, sandbox
):
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    # Entrust answers slowly: the sync runs while the list refreshes itself a few times.
    sandbox.faults([{"kind": "latency", "ms": 3000, "method": "GET"}])
    try:
        page.goto(live_server.url + "/entrust/manage/")
        page.locator("#credentials-table tbody tr").first.get_by_role("button", name="Sync").click()
        expect(page.locator("#sync-job progress")).to_be_visible()
        page.goto(live_server.url + "/jobs/")
        page.evaluate(
            """() => {
                window.heard = [];
                const live = document.getElementById('announcer');
                new MutationObserver(() => live.textContent && window.heard.push(live.textContent))
                    .observe(live, {childList: true, characterData: true, subtree: true});
                window.refreshed = 0;
                document.addEventListener('htmx:afterSettle', () => window.refreshed++);
            }"""
        )
        link = page.get_by_role("link", name="Full sync of Sandbox", exact=True)
        _press(page, link, "Shift+Tab")
        page.keyboard.press("Tab")
        expect(link).to_be_focused()
        for _ in range(150):  # (the page's CSP forbids wait_for_function's eval)
            if page.evaluate("window.refreshed") >= 2:
                break
            page.wait_for_timeout(100)
        assert page.evaluate("window.refreshed") >= 2
        page.wait_for_timeout(300)  # what is read out is set 100 ms after a swap
        expect(link).to_be_focused()
        assert page.evaluate("window.heard") == []
    finally:
        sandbox.clear_faults()


def test_an_error_of_the_whole_form_has_the_focus_when_no_field_shows_it(
    page, live_server, sandbox
):
    sandbox.seed(certificates=2, seed=6)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    page.goto(live_server.url + "/entrust/import")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-job .job-succeeded")).to_be_visible(timeout=60000)
    page.goto(live_server.url + "/entrust/")
    order = page.locator("#orders-table tbody td a").first.get_attribute("href")

    # The same order's Delete, open in two tabs: deleted in the other one first.
    other = page.context.new_page()
    for tab in (page, other):
        tab.goto(live_server.url + order + "/delete")
        tab.get_by_label(re.compile("Delete this order from CertDesk")).check()
    other.get_by_role("button", name="Delete from CertDesk").click()
    other.wait_for_url(live_server.url + "/entrust/")
    other.close()

    page.get_by_role("button", name="Delete from CertDesk").click()
    error = page.get_by_role("alert").filter(has_text="None of the selected orders exists")
    expect(error).to_be_visible()
    expect(error).to_be_focused()


def _contrast(a: list[float], b: list[float]) -> float:
    def luminance(rgb):
        c = [v / 255 for v in rgb]
        c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_a_file_field_focused_from_the_keyboard_shows_a_clear_outline(page, live_server):
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "admin")
    page.goto(live_server.url + "/csrs/import")
    field = page.locator("input[type=file]").first
    field.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    expect(field).to_be_focused()
    style, width, color = field.evaluate(
        "e => ['outlineStyle', 'outlineWidth', 'outlineColor'].map(k => getComputedStyle(e)[k])"
    )
    assert style == "solid" and float(width.removesuffix("px")) >= 2
    rgb = [float(v) for v in re.findall(r"[\d.]+", color)[:3]]
    assert _contrast(rgb, [255, 255, 255]) >= 3  # against the page's white


def test_every_control_reached_by_tab_shows_a_clear_outline(page, live_server):
    """The buttons, secondary and outline ones too, links and fields of a list page: each one
    Tab reaches has a solid ring of 3:1 or more against the page."""
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "admin")
    page.goto(live_server.url + "/entrust/")
    seen = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        name, style, width, color = page.evaluate(
            "() => { const e = document.activeElement, s = getComputedStyle(e);"
            " return [e.outerHTML.slice(0, 80), s.outlineStyle, s.outlineWidth, s.outlineColor] }"
        )
        if name.startswith("<body"):
            break
        seen.add(name)
        assert style == "solid" and float(width.removesuffix("px")) >= 2, name
        rgb = [float(v) for v in re.findall(r"[\d.]+", color)[:3]]
        assert _contrast(rgb, [255, 255, 255]) >= 3, name
    assert len(seen) >= 10 and any('class="secondary' in n for n in seen), seen


def test_the_csr_forms_name_check_is_read_out_and_use_these_leads_to_the_sans(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/csrs/new")
    page.locator("input[name=CN]").press_sequentially("example.org", delay=20)
    announcer = page.locator("#announcer")
    expect(announcer).to_contain_text("Suggested SANs: example.org www.example.org")
    # Leaving the common name checks the names again, which replaces the button just focused:
    # once that is done, the focus is on the new button.
    page.locator("#name-check").evaluate("e => e.classList.add('checked-before')")
    use = page.get_by_role("button", name="Use these")
    use.focus()
    expect(page.locator("#name-check")).not_to_have_class(re.compile("checked-before"))
    expect(use).to_be_focused()
    page.keyboard.press("Enter")
    sans = page.locator("#csr-sans")
    expect(sans).to_have_value("example.org, www.example.org")
    expect(sans).to_be_focused()
    expect(announcer).to_contain_text("2 names look right.")


def test_the_first_tab_offers_to_skip_the_navigation(page, live_server):
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "admin")
    page.goto(live_server.url + "/certificates/")
    skip = page.get_by_role("link", name="Skip to content")
    box = skip.bounding_box()
    assert box is None or box["y"] + box["height"] <= 0  # out of sight until focused
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box["y"] >= 0 and box["height"] > 0  # shown while it has the focus
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # The next Tab goes into the page's content, past the navigation.
    page.keyboard.press("Tab")
    inside = page.evaluate("() => document.querySelector('main').contains(document.activeElement)")
    assert inside


def test_audit_dates_the_wrong_way_round_are_read_out_with_the_empty_list(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/audit/")
    page.get_by_label("From").fill("2026-12-05")
    page.get_by_label("To").fill("2026-12-01")
    _press(page, page.get_by_role("button", name="Filter"))
    expect(page).to_have_url(re.compile(r"since=2026-12-05"))
    expect(page.locator("#announcer")).to_have_text(
        "From (2026-12-05) is after To (2026-12-01), so no event can match: swap the two dates. "
        "No rows."
    )


def test_the_message_an_action_leaves_on_the_next_page_has_the_focus(page, live_server):
    """Saved, the settings page loads again with "Settings saved.": a screen reader starts there,
    not at the navigation; a page loaded with no message leaves the focus alone."""
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/settings/")
    expect(page.locator("main > .flash")).to_have_count(0)
    assert page.evaluate("document.activeElement === document.body")
    page.get_by_role("button", name="Save settings").click()
    message = page.locator("main > .flash")
    expect(message).to_have_count(1)
    expect(message).to_be_focused()


def test_space_presses_a_link_shown_as_a_button(page, live_server):
    """A screen reader calls a[role=button] a button, and Space presses a button."""
    login(page, live_server, "admin")
    page.goto(live_server.url + "/entrust/")
    _press(page, page.locator("#order-certificate"), " ")
    page.wait_for_url(live_server.url + "/entrust/new")
    # Space in a field is still a space.
    page.goto(live_server.url + "/certificates/")
    page.locator("input[name=q]").press_sequentially("a b")
    expect(page.locator("input[name=q]")).to_have_value("a b")


def test_the_order_forms_csr_search_says_what_it_found(page, live_server, sandbox):
    """Typing in the CSR search refills the list below it while the focus stays in the box:
    what it found is read out, a count or the line saying that nothing matched."""
    sandbox.seed(certificates=0, seed=3)
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    page.goto(live_server.url + "/csrs/new")
    page.locator("input[name=CN]").fill("found.example.org")
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/csrs/\d+$"))
    page.goto(live_server.url + "/entrust/new")
    search = page.locator("#csr_search")
    announcer = page.locator("#announcer")
    search.press_sequentially("zzznomatch", delay=10)
    expect(announcer).to_have_text(
        "No unused CSR has a name that starts or ends with “zzznomatch”."
    )
    expect(search).to_be_focused()
    search.fill("")
    search.press_sequentially("found.example", delay=10)
    expect(announcer).to_have_text("1 match in the list.")
    expect(search).to_be_focused()
