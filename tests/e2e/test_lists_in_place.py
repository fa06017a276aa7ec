"""In a real browser: a list changed in place (htmx) stays what its filter form and address say:
a filter keeps the sort a column's header chose, and the list brought up to date when a job ends
keeps the filters changed meanwhile."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def test_a_filter_keeps_the_sort_chosen_in_place(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/entrust/")
    page.locator("thead th a", has_text="Common name").click()
    page.wait_for_url(re.compile(r".*sort=cn&dir=asc$"))
    page.locator("select[name=status]").select_option("ACTIVE")
    page.wait_for_url(re.compile(r".*status=ACTIVE.*"))
    assert "sort=cn&dir=asc" in page.url
    expect(page.locator("th[aria-sort]")).to_contain_text("Common name")
    page.reload()  # the address shows the same list
    expect(page.locator("th[aria-sort]")).to_contain_text("Common name")
    expect(page.locator("select[name=status]")).to_have_value("ACTIVE")


def test_the_orders_list_refreshed_as_a_job_ends_keeps_the_filters_changed_meanwhile(
    page, live_server
):
    with sqlite3.connect(live_server.database) as conn:
        job = conn.execute(
            "INSERT INTO job (kind, title, state, progress, message, error, result, params, "
            "checkpoint, attempts, runner, created_at, heartbeat_at) VALUES ('orders.import', "
            "'Import orders', 'running', 0, '', '', '', '{}', '', 0, 'elsewhere', "
            "strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now'))"
        ).lastrowid
    login(page, live_server, "admin")
    page.goto(f"{live_server.url}/entrust/?job={job}")
    page.locator("select[name=status]").select_option("ACTIVE")
    page.wait_for_url(re.compile(r".*status=ACTIVE.*"))
    with (
        page.expect_request(re.compile(r".*/entrust/(\?.*)?$")) as refreshed,
        sqlite3.connect(live_server.database) as conn,
    ):
        conn.execute("UPDATE job SET state = 'succeeded' WHERE id = ?", (job,))
        conn.commit()
        expect(page.locator(f"#job-{job}")).to_contain_text("Succeeded")
    assert "status=ACTIVE" in refreshed.value.url
