"""In a real browser: Back and Forward across a list filtered in place (htmx pushes each filter's
address). The browser keeps no copy of the earlier states, so each one is loaded again; when that
load is refused (the session ended meanwhile) or fails (CertDesk stopped), the person sees the
sign-in page or the browser's error at the address it belongs to, not the earlier list left in
place under a new address nor the sign-in form put inside the page's frame."""

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
