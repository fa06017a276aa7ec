"""In a real browser, against `certdesk serve`: the audit chain is checked soon after a start,
without anyone running `certdesk audit verify`. A copy of the database whose last trail row was
removed says so on Admin › Audit and the dashboard (and in the log); Verify now checks again and
shows the outcome once the check has ended."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.conftest import _instance_from, database_url
from tests.e2e.conftest import login
from tests.live import start_server, stop_server


def _audit_page_once(page, url: str, selector: str, seconds: float = 30):
    """Admin › Audit, reloaded until ``selector`` shows (the start check runs in the
    background)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url + "/admin/audit/")
        if page.locator(selector).count() or time.monotonic() > deadline:
            return page.locator(selector)
        time.sleep(0.5)


def test_a_copy_whose_last_trail_row_was_removed_says_so_after_it_starts(
    page, db_templates, tmp_path
):
    instance = _instance_from(db_templates["users"], tmp_path / "instance")
    engine = create_engine(database_url(instance))
    with engine.begin() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_event")).scalar()
        conn.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": last})
    engine.dispose()
    server = start_server(instance)
    try:
        login(page, server, "auditor")
        banner = _audit_page_once(page, server.url, "#chain-broken")
        expect(banner).to_have_attribute("role", "alert")
        expect(banner).to_contain_text("The audit trail does not verify:")
        expect(banner).to_contain_text(re.compile(rf"row {last}|rows after row {last - 1}"))
        expect(banner).to_contain_text("certdesk audit verify")
        page.goto(server.url + "/")
        expect(page.locator("#chain-notice")).to_contain_text("does not verify")
        server.wait_for_line("The audit trail does not verify")
    finally:
        stop_server(server)


def test_verify_now_shows_the_new_outcome_when_the_check_ends(page, live_server):
    login(page, live_server, "admin")
    line = _audit_page_once(page, live_server.url, "#chain-verified")
    expect(line).to_contain_text(re.compile(r"Chain verified .+, \d+ events\."))
    count = _events_counted(line)
    page.get_by_role("button", name="Verify now").click()
    # The section polls the check and shows its outcome, which counts the request too.
    deadline = time.monotonic() + 20
    while _events_counted(page.locator("#chain-verified")) <= count:
        assert time.monotonic() < deadline, page.locator("#chain-check").inner_text()
        time.sleep(0.2)
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_role("button", name="Verify now")).to_be_visible()


def _events_counted(line) -> int:
    return int(re.search(r"([\d,]+) events", line.inner_text()).group(1).replace(",", ""))


def test_verify_now_by_keyboard_keeps_the_focus_and_its_outcome_is_read(page, live_server):
    """Verify now pressed by keyboard: the focus stays in the check's section while it is
    replaced (not fallen to <body>), and the outcome appears inside a live region that stayed
    in the page, no longer busy, so that a screen reader reads it."""
    login(page, live_server, "admin")
    line = _audit_page_once(page, live_server.url, "#chain-verified")
    count = _events_counted(line)
    page.evaluate("document.getElementById('chain-check-live').dataset.kept = 'yes'")
    page.locator("#verify-now").focus()
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 20
    while _events_counted(page.locator("#chain-verified")) <= count:
        assert time.monotonic() < deadline, page.locator("#chain-check").inner_text()
        time.sleep(0.2)
    page.wait_for_load_state("networkidle")
    region = page.locator("#chain-check-live")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_attribute("data-kept", "yes")  # the same element: never swapped
    expect(page.locator("#chain-check")).not_to_have_attribute("aria-busy", "true")
    focused = page.evaluate(
        "document.activeElement.closest('#chain-check') ? 'in the section' "
        ": document.activeElement.tagName"
    )
    assert focused == "in the section"
