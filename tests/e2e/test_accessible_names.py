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


def test_import_and_key_download_fields_are_named_by_their_labels_alone(page, live_server):
    login(page, live_server, "admin")
    # Import certificates, refused: the error describes Files.
    page.goto(live_server.url + "/certificates/import")
    page.locator("input[name=files]").set_input_files(
        files=[{"name": "junk.pem", "mimeType": "text/plain", "buffer": b"not a certificate"}]
    )
    page.get_by_role("button", name="Import").click()
    files = page.get_by_label("Files", exact=True)
    expect(files).to_have_attribute("aria-invalid", "true")
    expect(files).to_have_accessible_name("Files")
    expect(files).to_have_accessible_description(re.compile(r"^junk\.pem: "))

    # Import a CSR: the key password's help describes it.
    page.goto(live_server.url + "/csrs/import")
    password = page.get_by_label("Key password", exact=True)
    expect(password).to_have_accessible_description(re.compile(r"^Only if the key is encrypted"))

    # A private key's download, refused: the error describes the field at fault.
    page.goto(live_server.url + "/csrs/new")
    page.locator("input[name=CN]").fill("names.example.org")
    page.locator("select[name=key_type]").select_option("p256")
    page.get_by_role("button", name="Create key and CSR").click()
    page.wait_for_url(re.compile(r".*/csrs/\d+$"))
    page.get_by_label("Password to protect the file", exact=True).fill("long enough one")
    page.get_by_label("Repeat password", exact=True).fill("long enough two")
    page.get_by_role("button", name="Download private key").click()
    again = page.get_by_label("Repeat password", exact=True)
    expect(again).to_have_attribute("aria-invalid", "true")
    expect(again).to_have_accessible_name("Repeat password")
    expect(again).to_have_accessible_description(re.compile(r"\S"))
