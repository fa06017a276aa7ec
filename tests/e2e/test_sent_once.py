"""In a real browser: a button that htmx sends (Test Login, Sync) is sent once when double-clicked.
htmx queues a second click made while the first request runs and sends it once that ends: a
second login at Entrust, or a second sync answered "a sync is already running"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def test_a_double_click_sends_once(page, live_server, sandbox):
    sandbox.seed(certificates=5, seed=5)
    login(page, live_server, "admin")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    page.goto(live_server.url + "/entrust/manage/credentials/new")
    page.get_by_label("Credential Name").fill("Twice")
    page.get_by_label("User Name").fill(sandbox.api_user)
    page.get_by_label("API Key", exact=True).fill(sandbox.api_key)
    page.get_by_label("Base URL").fill(sandbox.base_url)
    page.get_by_role("button", name="Test Login").dblclick()
    expect(page.locator("#test-result")).to_contain_text("Test Login succeeded")
    expect(page.get_by_role("button", name="Test Login")).to_be_enabled()
    page.wait_for_timeout(500)  # time for a queued second request to have gone out
    assert [u for u in posts if u.endswith("/credentials/test")] == [
        live_server.url + "/entrust/manage/credentials/test"
    ]

    page.get_by_role("button", name="Save").click()
    expect(page.locator("#sync-job .job-succeeded")).to_be_visible(timeout=30000)
    row = page.locator("#credentials-table tr", has_text="Twice")
    posts.clear()
    row.get_by_role("button", name="Test Login").dblclick()
    row.get_by_role("button", name="Sync").dblclick()
    expect(page.locator("#sync-job .job-succeeded")).to_be_visible(timeout=30000)
    expect(row.get_by_role("button", name="Sync")).to_be_enabled()
    page.wait_for_timeout(500)
    assert sorted(u.rsplit("/", 1)[1] for u in posts) == ["sync", "test"]
    expect(page.locator("#sync-job")).not_to_contain_text("already running")

    # From the keyboard, the button keeps the focus while it is disabled and after.
    button = row.get_by_role("button", name="Test Login")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_be_enabled()
    page.wait_for_timeout(300)
    assert page.evaluate("document.activeElement.textContent.trim()") == "Test Login"

    # Verify now's answer replaces the part it sits in: the focus goes to that part, not <body>.
    page.goto(live_server.url + "/admin/audit/")
    page.locator("#verify-now").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#chain-check")).to_contain_text("Chain verified", timeout=30000)
    page.wait_for_timeout(300)
    assert page.evaluate("document.activeElement !== document.body")
