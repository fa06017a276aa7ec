"""In a real browser, what a screen reader says of a form's fields: each is named by its label's
words alone, and the help or the error that sits inside the label describes it instead of being
read out as part of its name."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def test_the_csr_forms_fields_are_named_by_their_labels_and_described_by_help_and_errors(
    page, live_server
):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/csrs/new")
    sans = page.get_by_role("textbox", name="Subject alternative names", exact=True)
    expect(sans).to_have_accessible_description(re.compile(r"^DNS names, IP addresses"))
    cn = page.get_by_role("textbox", name="Common name", exact=True)
    expect(cn).to_have_attribute("required", "")
    expect(page.get_by_role("combobox", name="Key type", exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="Signature hash", exact=True)).to_be_visible()

    # Sent back with an error: the same name, the error as its description.
    cn.fill("example.org")
    sans.fill("bad..example.com")
    page.get_by_role("button", name="Create key and CSR").click()
    expect(sans).to_have_attribute("aria-invalid", "true")
    expect(sans).to_have_accessible_name("Subject alternative names")
    expect(sans).to_have_accessible_description(re.compile(r"^bad\.\.example\.com: "))
    expect(sans).to_be_focused()
