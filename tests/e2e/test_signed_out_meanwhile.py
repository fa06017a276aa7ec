"""In a real browser against `certdesk serve`: a page left open while its session ends (signed
out in another tab, or idle). Its next button or search goes to the sign-in page as a whole page,
which says why, and signing in comes back to the page (not to the address of the button's POST,
which a browser cannot open)."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

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
    # The page's own requests (its notices) are answered before the session is ended under it:
    # one answered after would lead to the sign-in page before the test's click.
    page.wait_for_load_state("networkidle")


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


def _last_seen(server) -> str:
    with sqlite3.connect(server.database) as conn:
        return conn.execute("SELECT max(last_seen_at) FROM user_session").fetchone()[0]


def _set_last_seen(server, minutes_ago: float) -> None:
    when = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=minutes_ago)
    with sqlite3.connect(server.database) as conn:
        conn.execute("UPDATE user_session SET last_seen_at = ?", (f"{when:%Y-%m-%d %H:%M:%S.%f}",))


def test_a_form_left_open_warns_before_its_session_ends_and_keeps_what_was_typed(page, live_server):
    """A page nobody touches says its session is about to end (asking does not count as
    activity); a key pressed keeps it open; once it has ended, what was typed stays, and after
    signing in again in another tab the form can still be sent."""
    page.clock.install()
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/users/new")
    page.get_by_label("User name").fill("typed-before")
    page.get_by_label("Full name").fill("Typed Before The End")

    # Typing is activity: within a minute and a bit the page tells CertDesk so.
    _set_last_seen(live_server, 5)
    typed = _last_seen(live_server)
    page.clock.fast_forward("01:15")
    for _ in range(50):
        if _last_seen(live_server) > typed:
            break
        page.wait_for_timeout(100)
    assert _last_seen(live_server) > typed

    # Then nothing for 28 minutes, as CertDesk sees it and as the page does.
    _set_last_seen(live_server, 28)
    seen = _last_seen(live_server)
    page.clock.fast_forward("28:00")
    note = page.locator("#session-note")
    expect(note).to_contain_text("Your session ends in about 2 minutes without activity")
    assert _last_seen(live_server) == seen  # asking was not activity

    # A key pressed answers it: the session is kept open.
    page.get_by_label("Full name").press("End")
    expect(note).to_have_count(0)
    assert _last_seen(live_server) > seen

    # Left alone past the idle timeout: the page says so and keeps what was typed.
    _set_last_seen(live_server, 45)
    page.clock.fast_forward("31:00")
    expect(note).to_contain_text("signed out after a period of inactivity")
    expect(note).to_contain_text("What you typed on this page is still here")
    expect(page.get_by_label("User name")).to_have_value("typed-before")

    # Signed in again in another tab, the form goes on here with the new session's token.
    other = page.context.new_page()
    login(other, live_server, "admin")
    other.close()
    note.get_by_role("button", name="Go on here").click()
    expect(note).to_have_count(0)
    page.get_by_label("Role").select_option("operator")
    page.get_by_label("Password").fill("a long enough password 7")
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url(re.compile(r".*/admin/users/"))
    expect(page.locator("main")).to_contain_text("typed-before")
    with sqlite3.connect(live_server.database) as conn:
        assert conn.execute(
            "SELECT full_name FROM user WHERE username = 'typed-before'"
        ).fetchone() == ("Typed Before The End",)
