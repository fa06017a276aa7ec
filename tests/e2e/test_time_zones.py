"""In a real browser west and east of UTC: times are shown in the viewer's own zone and say
which it is (pages also show days, an expiry date, in UTC): by the zone's name beside a time,
by a note under the page for the narrow columns of a table; the UTC time stays in the title."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

ZONE_NAME = re.compile(r"(GMT|UTC)[+-]\d+|\b[A-Z]{3,4}$")


def _local(when, zone: str) -> tuple[datetime, str]:
    """The time a <time> element stands for, in ``zone``, and the text the page shows."""
    expect(when).to_have_attribute("data-local", "1")
    utc = datetime.fromisoformat(when.get_attribute("datetime"))
    assert utc.strftime("%Y-%m-%d %H:%M") in when.get_attribute("title")
    assert "UTC" in when.get_attribute("title")
    return utc.astimezone(ZoneInfo(zone)), when.inner_text()


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_local_times_say_which_zone_they_are_in(browser, live_server, zone):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, timezone_id=zone)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        login(page, live_server, "admin")
        # Outside a table (the dashboard's recent activity): the time, with its zone's name.
        local, text = _local(page.locator("main li time").first, zone)
        assert local.strftime("%Y") in text and local.strftime("%d") in text, text
        assert ZONE_NAME.search(text), text
        note = page.locator("#time-zone-note")
        expect(note).to_be_visible()
        expect(note).to_contain_text(zone)
        expect(note).to_contain_text("UTC days")
        # Set apart from the product's name beside it, not read on as "CertDesk Times ...".
        assert note.evaluate("e => getComputedStyle(e).borderLeftStyle") == "solid"

        # In a table (the audit trail): the local time alone, the note naming the zone.
        page.goto(live_server.url + "/admin/audit/")
        local, text = _local(page.locator("#audit-table tbody time").first, zone)
        assert local.strftime("%d") in text and not ZONE_NAME.search(text), text
        expect(page.locator("#time-zone-note")).to_contain_text(zone)
        # The date filter reads days of the viewer's zone (tests/e2e/test_export_follows_filters).
        expect(page.locator("input[name=tz]")).to_have_value(zone)
    finally:
        context.close()
