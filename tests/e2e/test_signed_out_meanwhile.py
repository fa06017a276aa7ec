"""In a real browser against `certdesk serve`: a page left open while its session ends (signed
out in another tab, or idle). Its next button or search goes to the sign-in page as a whole page,
which says why, and signing in comes back to the page (not to the address of the button's POST,
which a browser cannot open)."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.helpers import PASSWORD

pytestmark = pytest.mark.e2e


def _sign_in_again(page) -> None:
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _audit_page(page, server) -> None:
    login(page, server, "admin")
    page.goto(server.url + "/admin/audit/?action=")
    expect(page.locator("#verify-now")).to_be_visible(timeout=30000)


def test_signed_out_in_another_tab_a_button_leads_to_sign_in_and_back(page, live_server):
    _audit_page(page, live_server)
    other = page.context.new_page()
    other.goto(live_server.url + "/")
    other.locator("details.dropdown summary").last.click()
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(re.compile(r".*/login$"))
    other.close()

    page.locator("#verify-now").click()
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    expect(page.locator("main")).to_contain_text("Sign in to continue.")
    expect(page.locator("#chain-check")).to_have_count(0)  # a whole page, not a part swapped in
    _sign_in_again(page)
    page.wait_for_url(live_server.url + "/admin/audit/?action=")
    expect(page.locator("h1")).to_have_text("Audit trail")


def test_signed_out_while_idle_a_button_leads_to_sign_in_and_back(page, live_server):
    _audit_page(page, live_server)
    with sqlite3.connect(live_server.database) as conn:
        conn.execute("UPDATE user_session SET last_seen_at = '2000-01-01 00:00:00.000000'")

    page.locator("#verify-now").click()
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    expect(page.locator("main")).to_contain_text("signed out after a period of inactivity")
    _sign_in_again(page)
    page.wait_for_url(live_server.url + "/admin/audit/?action=")
    expect(page.locator("h1")).to_have_text("Audit trail")
