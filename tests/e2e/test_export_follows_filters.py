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


def _exports(page, live_server) -> int:
    page.goto(live_server.url + "/admin/audit/?action=audit.export")
    return page.locator("#audit-table tbody tr", has_text="audit.export").count()


def test_an_export_linked_from_another_site_is_started_only_from_certdesk(page, live_server):
    login(page, live_server, "admin")
    before = _exports(page, live_server)
    export = live_server.url + "/admin/audit/export.csv?action=audit.export"
    page.route(
        "http://elsewhere.test/**",
        lambda route: route.fulfill(
            content_type="text/html", body=f'<a href="{export}" id="lure">Open</a>'
        ),
    )
    page.goto("http://elsewhere.test/")
    page.locator("#lure").click()
    page.wait_for_url(export)
    # The browser says another site started it: CertDesk asks instead of exporting.
    assert page.locator("#asked-elsewhere").is_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV of the audit trail").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert len(rows) == before + 1  # the one export the user asked for, not the lure's
    assert _exports(page, live_server) == before + 1


def test_the_audit_days_are_those_of_the_viewers_time_zone(browser, live_server):
    """The trail shows its times in the browser's zone; From and To go with that zone, and so
    does the export."""
    context = browser.new_context(timezone_id="Pacific/Auckland", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        login(page, live_server, "admin")
        page.goto(live_server.url + "/admin/audit/")
        assert page.locator("input[name=tz]").input_value() == "Pacific/Auckland"
        page.locator("input[name=since]").fill("2025-03-02")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r".*since=2025-03-02.*"))
        zone = re.compile(r"tz=Pacific(/|%2F)Auckland")
        assert zone.search(page.url), page.url
        assert zone.search(page.get_by_role("button", name="Export CSV").get_attribute("href"))
    finally:
        context.close()
