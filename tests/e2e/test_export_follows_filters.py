"""In a real browser: a list filtered in place (htmx) exports what it shows. The Export CSV link
sits above the filters, outside the part the filters replace; it kept the URL of the page as first
loaded, so after filtering it exported everything."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from tests.e2e.conftest import login


def _export(page) -> list[dict]:
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_audit_trail_and_certificates_export_what_the_filters_show(page, live_server):
    login(page, live_server, "admin")

    # The audit trail: the sign-in and more; filter to one action with the drop-down.
    page.goto(live_server.url + "/admin/audit/")
    assert len({r["action"] for r in _export(page)}) > 1
    page.reload()  # the export itself is now an action to filter by
    page.locator("select[name=action]").select_option("audit.export")
    page.wait_for_url(re.compile(r".*action=audit\.export.*"))
    link = page.get_by_role("button", name="Export CSV")
    assert "action=audit.export" in link.get_attribute("href")
    assert {r["action"] for r in _export(page)} == {"audit.export"}

    # SSL › Certificates: a search that matches nothing exports no rows.
    page.goto(live_server.url + "/certificates/")
    page.get_by_placeholder("Name starts or ends with, serial or fingerprint").fill("nothing-here")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*q=nothing-here.*"))
    assert "q=nothing-here" in page.get_by_role("button", name="Export CSV").get_attribute("href")
    assert page.locator("#export-csv").count() == 1
