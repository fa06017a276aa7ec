"""Browser: link the sandbox as a credential, Test Login, watch the sync, read the three tabs, and
Sync on the Domains tab picks up a domain approved meanwhile in the sandbox."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def test_link_the_sandbox_and_sync(page, live_server, sandbox):
    sandbox.seed(certificates=20, seed=5)
    login(page, live_server, "admin")
    page.goto(live_server.url + "/entrust/manage/")
    expect(page.get_by_text("Link your Entrust account")).to_be_visible()
    page.get_by_role("button", name="Add Credential").click()

    page.get_by_label("Credential Name").fill("Sandbox")
    page.get_by_label("User Name").fill(sandbox.api_user)
    page.get_by_label("API Key", exact=True).fill("not-the-key")
    page.get_by_label("Base URL").fill(sandbox.base_url)
    page.get_by_role("button", name="Test Login").click()
    expect(page.locator("#test-result")).to_contain_text("Test Login failed")
    expect(page.locator("#test-result")).to_contain_text("Wrong user name or API key")

    page.get_by_label("API Key", exact=True).fill(sandbox.api_key)
    page.get_by_role("button", name="Test Login").click()
    expect(page.locator("#test-result")).to_contain_text("Test Login succeeded")

    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/entrust/manage/?job=*")
    job = page.locator("#sync-job article.job")
    expect(job).to_be_visible()
    expect(job).to_contain_text("Full sync of Sandbox")
    expect(page.locator("#sync-job .job-succeeded")).to_be_visible(timeout=30000)
    expect(job).to_contain_text("added")
    expect(page.locator("#credentials-table")).to_contain_text("Sandbox")
    # Every action of the row shows within the table, not cut off at its right edge.
    row = page.locator("#credentials-table tbody tr", has_text="Sandbox")
    frame = page.locator(".table-wrap").bounding_box()
    right = min(frame["x"] + frame["width"], page.viewport_size["width"])
    actions = [row.get_by_role("button", name=n) for n in ("Test Login", "Sync", "Disable")]
    actions += [row.get_by_role("link", name=n) for n in ("Edit", "Delete")]
    for action in actions:
        box = action.bounding_box()
        assert box["x"] + box["width"] <= right, (action, box, right)
        # Read out of the table, "Delete" alone says not which credential: each action keeps
        # its own name (the guide's words) and is described by the credential's.
        expect(action).to_have_accessible_description("Sandbox")

    page.get_by_role("link", name="Organizations", exact=True).click()
    expect(page.locator("#organizations-table")).to_contain_text("CertDesk Demo Corp")
    expect(page.locator("#organizations-table")).to_contain_text("Pending Holdings Inc")
    # An OV expiry is a day: shown as one, not as a local time of day.
    days = page.locator("#organizations-table time").all_inner_texts()
    assert days and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in days), days
    page.get_by_role("link", name="Products", exact=True).click()
    expect(page.locator("#products-table")).to_contain_text("STANDARD_SSL")
    page.get_by_role("link", name="Domains", exact=True).click()
    row = page.locator('tr[data-domain="pending.example"]')
    expect(row).to_contain_text("INITIAL_VERIFICATION")
    expect(page.locator('tr[data-domain="expired.example"]')).to_contain_text("Expired")

    # Entrust approves the domain meanwhile; Sync on the Domains tab picks it up.
    sandbox.set_domain_status("pending.example", "APPROVED", client_id=1)
    page.locator(".tab-sync").get_by_role("button", name="Sync").click()
    expect(page.locator("#sync-job .job-succeeded")).to_be_visible(timeout=30000)
    expect(page.locator("#sync-job")).to_contain_text("Sync Domains of")
    expect(row).to_contain_text("APPROVED")
    expect(row).not_to_contain_text("INITIAL_VERIFICATION")


def test_row_test_login_reports_a_wrong_key_in_words(page, live_server, sandbox):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/entrust/manage/credentials/new")
    page.get_by_label("Credential Name").fill("Wrong key")
    page.get_by_label("User Name").fill(sandbox.api_user)
    page.get_by_label("API Key", exact=True).fill("wrong-key")
    page.get_by_label("Base URL").fill(sandbox.base_url)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/entrust/manage/?job=*")
    expect(page.locator("#sync-job .job-failed")).to_contain_text(
        "Wrong user name or API key", timeout=30000
    )
    row = page.locator("#credentials-table tr", has_text="Wrong key")
    row.get_by_role("button", name="Test Login").click()
    expect(row.locator(".cred-status")).to_contain_text("Login failed")
    expect(row.locator(".cred-status")).to_contain_text("Wrong user name or API key")


def test_credentials_table_refreshes_when_the_sync_ends(page, live_server, sandbox):
    sandbox.seed(certificates=5, seed=5)
    login(page, live_server, "admin")
    page.goto(live_server.url + "/entrust/manage/credentials/new")
    page.get_by_label("Credential Name").fill("Counts")
    page.get_by_label("User Name").fill(sandbox.api_user)
    page.get_by_label("API Key", exact=True).fill(sandbox.api_key)
    page.get_by_label("Base URL").fill(sandbox.base_url)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#sync-job .job-succeeded")).to_be_visible(timeout=30000)
    row = page.locator("#credentials-table tr", has_text="Counts")
    expect(row).not_to_contain_text("Never")
    expect(row.get_by_role("link", name="10", exact=True)).to_be_visible()  # domains
