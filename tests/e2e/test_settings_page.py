"""In a real browser: Admin › Settings' yes/no settings are boxes to tick, and saving the page
for another setting leaves them as they were."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

OPERATORS = "Operators may approve, decline, suspend and resume"
ALL_REASONS = "Entrust accepts all revocation reasons"


def test_yes_no_settings_are_boxes_that_stay_as_saved(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/settings/")
    operators = page.get_by_label(OPERATORS)
    expect(operators).to_have_attribute("type", "checkbox")
    expect(operators).not_to_be_checked()
    expect(page.get_by_label(ALL_REASONS)).not_to_be_checked()
    expect(page.locator("#orders-operators_update_status-help")).to_contain_text("Default: off.")

    operators.check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved (1 changed)")).to_be_visible()
    expect(page.get_by_label(OPERATORS)).to_be_checked()

    # Saving the page for another setting keeps the ticked box ticked, the other unticked.
    page.get_by_label("Sync interval (hours)").fill("12")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved (1 changed)")).to_be_visible()
    expect(page.get_by_label(OPERATORS)).to_be_checked()
    expect(page.get_by_label(ALL_REASONS)).not_to_be_checked()

    # Unticked and saved, it is off again.
    page.get_by_label(OPERATORS).uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved (1 changed)")).to_be_visible()
    expect(page.get_by_label(OPERATORS)).not_to_be_checked()
