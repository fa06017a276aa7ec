"""In a real browser: a list's filter form, sent in place (htmx), asks for and puts in the address
bar only the fields that say something, so that a link copied from the address bar is clean
("?expiry=30", not "?q=&expiry=30&issuer=&source=&has_key=&sort=&dir="); that link opens the same
list. Without script the form is sent as any form is, and still filters."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


LISTS = [
    ("/certificates/", "expiry", "30"),
    ("/csrs/", "sort", "cn"),
    ("/entrust/", "status", "ACTIVE"),
    ("/entrust/manage/domains", "show", "all"),
]


@pytest.mark.parametrize("path, name, value", LISTS)
def test_a_filter_asks_for_and_shows_only_the_fields_given(page, live_server, path, name, value):
    login(page, live_server, "admin")
    page.goto(live_server.url + path)
    with page.expect_request(re.compile(rf".*{re.escape(path)}\?.*")) as asked:
        page.locator(f"form.filters select[name={name}]").select_option(value)
    page.wait_for_url(re.compile(rf".*[?&]{name}={value}.*"))
    sent = _query(asked.value.url)
    assert (name, value) in sent, sent
    assert [field for field, given in sent if given == ""] == [], asked.value.url
    assert _query(page.url) == sent, page.url
    page.reload()  # the clean link opens the same list
    expect(page.locator(f"form.filters select[name={name}]")).to_have_value(value)


def test_a_search_typed_shows_only_itself(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/certificates/")
    page.get_by_label("Search").press_sequentially("www")
    page.wait_for_url(re.compile(r".*[?&]q=www(&|$)"))
    assert [name for name, given in _query(page.url) if given == ""] == [], page.url
    page.get_by_label("Search").press("Control+a")
    page.get_by_label("Search").press("Backspace")  # the search emptied leaves the address
    page.wait_for_url(lambda url: "q=" not in url)
    assert [name for name, given in _query(page.url) if given == ""] == [], page.url


def test_the_audit_time_zone_goes_only_with_from_or_to(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/audit/")
    action = page.locator("select[name=action] option").nth(1).get_attribute("value")
    page.locator("select[name=action]").select_option(action)
    page.wait_for_url(re.compile(r".*action=.*"))
    assert _query(page.url) == [("action", action)], page.url
    page.locator("input[name=since]").fill("2025-03-02")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*since=2025-03-02.*"))
    names = [name for name, _ in _query(page.url)]
    assert names == ["action", "since", "tz"], page.url


def test_without_script_the_form_still_filters(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        login(page, live_server, "admin")
        page.goto(live_server.url + "/entrust/")
        page.locator("form.filters select[name=status]").select_option("ACTIVE")
        page.locator("form.filters").get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r".*status=ACTIVE.*"))
        expect(page.locator("form.filters select[name=status]")).to_have_value("ACTIVE")
    finally:
        context.close()
