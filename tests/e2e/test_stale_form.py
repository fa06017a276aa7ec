"""In a real browser against `certdesk serve`: a form opened before its session changed (signed
out and in again in another tab) and then sent. Nothing is changed, the answer says to go back to
the form rather than to reload (which would send the same stale token again), and going back
finds what was typed, which can then be sent."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a very long password 123"


def _fill_passwords(page) -> None:
    for field in page.locator("input[type=password]").all():
        field.fill(NEW_PASSWORD)


def test_a_form_sent_after_signing_in_again_elsewhere_can_be_sent_again(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/users/new")
    page.locator("input[name=username]").fill("typed-name")
    page.locator("input[name=full_name]").fill("Typed Name")
    _fill_passwords(page)

    other = page.context.new_page()
    other.goto(live_server.url + "/")
    other.locator("details.dropdown summary").last.click()
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(re.compile(r".*/login$"))
    login(other, live_server, "admin")
    other.close()

    page.get_by_role("button", name="Create user").click()
    main = page.locator("main")
    expect(main).to_contain_text("nothing was changed")
    expect(main).to_contain_text("Go back to the form")
    expect(main).not_to_contain_text("Reload")

    page.go_back()
    expect(page.locator("input[name=username]")).to_have_value("typed-name")
    expect(page.locator("input[name=full_name]")).to_have_value("Typed Name")
    _fill_passwords(page)
    page.get_by_role("button", name="Create user").click()
    expect(main).to_contain_text("User typed-name created.")
