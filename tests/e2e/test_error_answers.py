"""In a real browser against `certdesk serve`: what a list shows when a request of the page is
answered with an error. A reverse proxy's own error (its "502 Bad Gateway" page, an empty "504")
is not put in place of the list: the banner says CertDesk could not answer, and the list and the
address stay. CertDesk's own refusal (the role lowered meanwhile) still says why in the banner.
A list that polls stops asking once a request of it failed."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

BAD_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>"
)


def _audit_list(page, server) -> None:
    login(page, server, "admin")
    page.goto(server.url + "/admin/audit/")
    expect(page.locator("#audit-table")).to_be_visible()


def test_a_proxy_error_leaves_the_list_and_says_so(page, live_server):
    _audit_list(page, live_server)
    page.route(
        "**/admin/audit/?*",
        lambda route: route.fulfill(status=502, content_type="text/html", body=BAD_GATEWAY),
    )
    page.get_by_label("User", exact=True).press_sequentially("adm", delay=20)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("CertDesk could not answer (502 Bad Gateway).")
    expect(page.locator("#audit-table")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("nginx")
    assert page.url == live_server.url + "/admin/audit/"

    page.unroute("**/admin/audit/?*")
    page.route("**/admin/audit/?*", lambda route: route.fulfill(status=504, body=""))
    page.get_by_label("User", exact=True).press_sequentially("x", delay=20)
    expect(banner).to_contain_text("CertDesk could not answer (504 Gateway Timeout).")
    expect(page.locator("#audit-table")).to_be_visible()


def test_the_role_lowered_meanwhile_says_why_and_leaves_the_list(page, live_server):
    _audit_list(page, live_server)
    with sqlite3.connect(live_server.database) as conn:
        conn.execute("UPDATE user SET role = 'operator' WHERE username = 'admin'")
    page.get_by_label("User", exact=True).press_sequentially("adm", delay=20)
    expect(page.locator("#banner")).to_contain_text("Your role does not allow this page.")
    expect(page.locator("#audit-table")).to_be_visible()


def test_a_polling_list_stops_once_certdesk_does_not_answer(page, live_server):
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(live_server.database) as conn:
        conn.execute(
            "INSERT INTO job (kind, title, state, progress, total, message, error, result, params,"
            " checkpoint, attempts, runner, created_at, started_at, heartbeat_at) VALUES"
            " ('catalog.sync', 'Sync elsewhere', 'running', 1, 10, '', '', '', '{}', '', 1,"
            " 'another-host:1', ?, ?, ?)",
            (now, now, now),
        )
    login(page, live_server, "admin")
    page.goto(live_server.url + "/jobs/")
    expect(page.locator("#jobs-list[hx-trigger]")).to_be_attached()
    asked = []
    page.route("**/jobs/?*", lambda route: (asked.append(route.request.url), route.abort()))
    page.route("**/jobs/", lambda route: (asked.append(route.request.url), route.abort()))
    expect(page.locator("#banner")).to_contain_text("CertDesk did not answer.", timeout=10000)
    page.wait_for_timeout(7000)  # three more turns of the list's two seconds
    assert len(asked) == 1, asked
    expect(page.locator("#jobs-table")).to_be_visible()
