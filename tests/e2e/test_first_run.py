"""First admin set-up, sign-in, a wrong password, sign-out: in a real browser."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import login


def test_first_run_setup_login_wrong_password_logout(page, fresh_server):
    missing = []  # every resource the pages ask for exists (the icon included)
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    line = fresh_server.wait_for_line("/setup?token=")
    setup_url = re.search(r"(http://\S+/setup\?token=\S+)", line).group(1)

    # Without the token the setup page refuses.
    page.goto(fresh_server.url + "/setup")
    assert page.get_by_text("missing its token").is_visible()

    page.goto(setup_url)
    page.get_by_label("User name").fill("root-admin")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat password").fill("short")
    page.get_by_role("button", name="Create administrator").click()
    assert page.get_by_text("at least 10 characters").is_visible()
    # The cursor is back in the field with the error, not at the top of the form (put there once
    # the page has loaded: waited for, as the text can show before that).
    expect(page.locator("#password")).to_be_focused()

    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_label("Repeat password").fill("a long enough password")
    page.get_by_role("button", name="Create administrator").click()
    page.wait_for_url(fresh_server.url + "/")
    assert page.get_by_text("Your administrator account is ready").is_visible()
    page.wait_for_load_state("networkidle")
    assert missing == []
    icon = page.locator("link[rel=icon]").get_attribute("href")
    answer = page.request.get(fresh_server.url + icon)
    assert answer.ok and answer.headers["content-type"].startswith("image/svg+xml")

    # The link worked once: it no longer shows the setup form.
    page.goto(setup_url)
    assert "/setup" not in page.url
    assert page.get_by_role("button", name="Create administrator").count() == 0

    # Sign out through the user menu.
    page.goto(fresh_server.url + "/")
    page.locator("details.user-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login"))
    assert page.get_by_text("You are signed out").is_visible()

    # A wrong password is refused in words, then the right one works.
    page.get_by_label("User name").fill("root-admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("#login-error").inner_text() == "Wrong user name or password."
    login(page, fresh_server, "root-admin", "a long enough password")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
