"""Lists filtered and sorted in place by htmx: what the answer carries besides the list."""

from __future__ import annotations

import re

import pytest

from tests.helpers import HTMX

LISTS = [
    ("/certificates/", "certificate-filters", "issuer"),
    ("/entrust/", "order-filters", "cn"),
    ("/entrust/manage/organizations", "catalog-filters", "name"),
]


def _sort_inputs(html: str, form: str) -> list[str]:
    return re.findall(rf'<input type="hidden" name="(?:sort|dir)" id="{form}-[^>]*>', html)


@pytest.mark.parametrize(("path", "form", "key"), LISTS)
def test_a_list_sorted_in_place_gives_its_sort_to_the_filters(admin_client, path, form, key):
    """The filter form above the list sends a hidden sort: sorted in place by a header, the list
    replaces it (out of band), or the next filter would sort as when the page was loaded."""
    frag = admin_client.get(f"{path}?sort={key}&dir=desc", headers=HTMX).get_data(as_text=True)
    sent = _sort_inputs(frag, form)
    assert len(sent) == 2, sent
    assert all('hx-swap-oob="true"' in tag for tag in sent)
    assert f'value="{key}"' in sent[0] and 'value="desc"' in sent[1]

    page = admin_client.get(f"{path}?sort={key}&dir=desc").get_data(as_text=True)
    held = _sort_inputs(page, form)  # once, in the form, and not out of band
    assert len(held) == 2 and not any("hx-swap-oob" in tag for tag in held), held


@pytest.mark.parametrize("path", ["/certificates/?q=x", "/entrust/?q=x", "/admin/audit/?user=x"])
def test_back_to_a_list_filtered_in_place_is_answered_the_whole_page(admin_client, path):
    """htmx asks for a page again on Back (HX-History-Restore-Request) with HX-Request set: the
    whole page, not the list alone; and the answer varies with HX-Request."""
    frag = admin_client.get(path, headers=HTMX)
    assert "<html" not in frag.get_data(as_text=True)
    whole = admin_client.get(path, headers={**HTMX, "HX-History-Restore-Request": "true"})
    html = whole.get_data(as_text=True)
    assert html.lstrip().startswith("<!doctype html>") and 'id="main"' in html
    for answer in (frag, whole):
        assert "HX-Request" in answer.headers["Vary"]
        assert answer.headers["Cache-Control"] == "no-store"


def test_the_orders_list_refreshed_when_a_job_ends_follows_the_filters_shown(admin_client):
    """A bulk action's job card sits above the list, which is brought up to date when the job
    ends: with the filters and sort the form shows then (changed in place meanwhile, perhaps),
    not those of the address the page was first loaded at."""
    from webapp.extensions import db
    from webapp.jobs import service as jobs
    from webapp.trailcheck import service as chaincheck

    job = jobs.queue(chaincheck.JOB_KIND, "Verify the audit trail")  # queued, not yet run
    db.session.commit()
    html = admin_client.get(f"/entrust/?status=ACTIVE&per_page=20&job={job.id}").get_data(
        as_text=True
    )
    results = re.search(r'<div id="orders-results"[^>]*>', html).group(0)
    assert 'hx-trigger="job-finished from:body"' in results
    assert 'hx-get="/entrust/?per_page=20"' in results and 'hx-include="#order-filters"' in results
