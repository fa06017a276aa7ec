"""Organizations, Domains and Products tabs and their Sync button."""

from __future__ import annotations

import pytest

from tests.helpers import HTMX
from webapp.credentials import clients, service
from webapp.ecs import clear_budgets


@pytest.fixture
def synced(app, user, sandbox, monkeypatch):
    monkeypatch.setattr(clients, "CLIENT_OPTIONS", {"sleep": lambda s: None})
    clear_budgets()
    sandbox.seed(certificates=5, seed=9)
    cred, job = service.create(
        user["admin"],
        service.CredentialInput(
            name="Sandbox",
            api_user=sandbox.api_user,
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
        ),
    )
    assert job.state == "succeeded"
    return cred


@pytest.mark.parametrize("tab", ["organizations", "domains", "products"])
def test_tabs_as_page_and_fragment(auditor_client, synced, tab):
    page = auditor_client.get(f"/entrust/manage/{tab}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "Last sync:" in html
    assert 'aria-current="page">' + tab.capitalize() in html
    assert "Sync</button>" not in html  # auditors read only
    frag = auditor_client.get(f"/entrust/manage/{tab}", headers=HTMX)
    body = frag.get_data(as_text=True)
    assert frag.status_code == 200 and "<html" not in body and f'id="{tab}-table"' in body


def test_tab_content(admin_client, synced):
    orgs = admin_client.get("/entrust/manage/organizations").get_data(as_text=True)
    assert (
        "CertDesk Demo Corp" in orgs and "Old Name Inc" in orgs and "Pending Holdings Inc" in orgs
    )
    domains = admin_client.get("/entrust/manage/domains").get_data(as_text=True)
    assert "expired.example" in domains and 'class="badge bad">Expired' in domains
    assert "expiring.example" in domains and 'badge warn">Expiring' in domains
    products = admin_client.get("/entrust/manage/products").get_data(as_text=True)
    assert "STANDARD_SSL" in products and "Unlimited" in products
    # The status filter names each choice once (Entrust's EXPIRED status and the wider
    # "expired by status or date" are two different choices).
    choices = domains.split('name="status"')[1].split("</select>")[0]
    labels = [part.split(">")[1].split("<")[0] for part in choices.split("<option")[1:]]
    assert "Expired" in labels and len(labels) == len(set(labels)), labels


def test_products_sort_unlimited_ones_as_shown_above_every_count(admin_client, synced):
    """A product sold without limit shows "Unlimited" as its total and remaining: sorted by
    either, it comes with the most, not among those about to run out (Entrust still gives it
    counts: the sandbox's PRIVATE_SSL has 0 remaining)."""
    import re

    def order(sort, direction):
        page = admin_client.get(f"/entrust/manage/products?sort={sort}&dir={direction}")
        return re.findall(r'data-product="([^"]+)"', page.get_data(as_text=True))

    for sort in ("remaining", "total"):
        ascending, descending = order(sort, "asc"), order(sort, "desc")
        assert "PRIVATE_SSL" in ascending and len(ascending) > 3
        assert ascending[-1] == "PRIVATE_SSL" and descending[0] == "PRIVATE_SSL", sort
    page = admin_client.get("/entrust/manage/products?sort=remaining").get_data(as_text=True)
    row = page.split('data-product="PRIVATE_SSL"')[1].split("</tr>")[0]
    assert row.count("Unlimited") == 2


def test_search_filter_sort_and_paging(admin_client, synced):
    def rows(url):
        html = admin_client.get(url, headers=HTMX).get_data(as_text=True)
        return [
            line.split('data-domain="')[1].split('"')[0]
            for line in html.splitlines()
            if 'data-domain="' in line
        ]

    assert rows("/entrust/manage/domains?q=PENDING") == ["pending.example"]
    every = rows("/entrust/manage/domains")
    ending = rows("/entrust/manage/domains?q=.example")  # ends with
    assert ending and ending == [n for n in every if n.endswith(".example")]
    assert rows("/entrust/manage/domains?q=ending") == []  # neither starts nor ends with it
    assert rows("/entrust/manage/domains?status=APPROVED") == sorted(
        rows("/entrust/manage/domains?status=APPROVED")
    )
    assert set(rows("/entrust/manage/domains?status=expired")) == {"expired.example"}
    assert "expiring.example" in rows("/entrust/manage/domains?status=expiring")
    names = rows("/entrust/manage/domains?sort=name&dir=desc")
    assert names == sorted(names, reverse=True)
    assert rows(f"/entrust/manage/domains?credential={synced.id + 1}") == []
    assert len(rows("/entrust/manage/domains?per_page=25")) == 10
    assert rows("/entrust/manage/domains?show=gone") == []
    html = admin_client.get("/entrust/manage/domains?q=%25_").get_data(as_text=True)
    assert "No domains match" in html


def test_organization_search_starts_with_name_or_client(admin_client, synced):
    page = admin_client.get("/entrust/manage/organizations?q=certdesk", headers=HTMX)
    body = page.get_data(as_text=True)
    assert "CertDesk Demo Corp" in body and "Pending Holdings Inc" not in body
    body = admin_client.get("/entrust/manage/organizations?q=demo", headers=HTMX).get_data(
        as_text=True
    )
    assert "No organizations match" in body


def test_sync_button(admin_client, operator_client, synced, sandbox):
    # The Sync button's credential and the list's filter read differently, side by side.
    tab = operator_client.get("/entrust/manage/domains").get_data(as_text=True)
    sync_select = tab.split('aria-label="Credential to sync"')[1].split("</select>")[0]
    filter_select = tab.split('aria-label="Show the rows of"')[1].split("</select>")[0]
    assert ">All credentials<" in sync_select and ">Any credential<" in filter_select
    sandbox.set_domain_status("pending.example", "APPROVED", client_id=1)
    frag = operator_client.post(
        "/entrust/manage/sync", data={"kind": "domains", "next": "domains"}, headers=HTMX
    )
    body = frag.get_data(as_text=True)
    assert frag.status_code == 200 and 'class="job job-succeeded"' in body
    assert "updated" in body and "Sync Domains of Sandbox" in body
    html = operator_client.get("/entrust/manage/domains?q=pending").get_data(as_text=True)
    assert "APPROVED" in html
    resp = admin_client.post(
        "/entrust/manage/sync", data={"kind": "all", "credential": synced.id, "next": "products"}
    )
    assert resp.status_code == 303 and "/entrust/manage/products?job=" in resp.headers["Location"]
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Full sync of Sandbox" in page


@pytest.mark.parametrize("given", ["abc", "0", "NaN", "2147483648", "１", "-1"])
def test_a_sync_of_a_credential_that_is_not_one_starts_nothing(operator_client, synced, given):
    from webapp.extensions import db
    from webapp.jobs.models import Job

    before = db.session.query(Job).count()
    frag = operator_client.post(
        "/entrust/manage/sync", data={"kind": "domains", "credential": given}, headers=HTMX
    )
    assert "That credential does not exist" in frag.get_data(as_text=True)
    assert db.session.query(Job).count() == before


def test_sync_without_credentials_says_why(operator_client):
    frag = operator_client.post("/entrust/manage/sync", data={"kind": "domains"}, headers=HTMX)
    assert "no enabled credential" in frag.get_data(as_text=True)


@pytest.mark.parametrize("tab", ["organizations", "domains", "products"])
def test_a_tab_without_any_credential_says_to_add_one_first(admin_client, auditor_client, tab):
    """With no credential there is nothing to sync from: the empty table says to add one (with
    a link), not "Sync to fetch them", which would only say there is no credential."""
    page = admin_client.get(f"/entrust/manage/{tab}").get_data(as_text=True)
    assert f"No {tab} yet" in page
    assert '<a href="/entrust/manage/">Add a credential</a> first.' in page
    assert "Sync to fetch them" not in page and f"No {tab} match" not in page
    assert ">Sync</button>" not in page  # nothing to sync from: no button that can only fail
    # Someone who cannot add one is told who can.
    page = auditor_client.get(f"/entrust/manage/{tab}", headers=HTMX).get_data(as_text=True)
    assert "An administrator adds one on the" in page and "Add a credential" not in page


def test_auditor_cannot_sync(auditor_client, synced):
    assert auditor_client.post("/entrust/manage/sync", data={"kind": "all"}).status_code == 403


@pytest.mark.parametrize(
    "tab, header", [("organizations", "Name"), ("domains", "Domain"), ("products", "Product type")]
)
def test_a_tab_says_which_column_it_is_sorted_by_before_one_is_chosen(
    admin_client, synced, tab, header
):
    html = admin_client.get(f"/entrust/manage/{tab}").get_data(as_text=True)
    thead = html.split("<thead>")[1].split("</thead>")[0]
    assert thead.count("aria-sort=") == 1
    sorted_th = thead.split('<th aria-sort="ascending">')[1].split("</th>")[0]
    assert f'>{header} <span aria-hidden="true">▲</span></a>' in sorted_th
    # Its header then sorts the other way.
    assert "dir=desc" in sorted_th


def test_a_sync_asked_for_a_credential_deleted_meanwhile_says_it_was_deleted(
    admin_client, operator_client, synced, sandbox, user
):
    """Sync clicked on a row shown before its credential was deleted: the answer says that
    credential was deleted (nothing is asked of Entrust), not that no credential is enabled."""
    service.delete(user["admin"], synced, confirmed=True)
    sandbox.clear_requests()
    frag = operator_client.post(
        "/entrust/manage/sync", data={"kind": "all", "credential": synced.id}, headers=HTMX
    ).get_data(as_text=True)
    assert "Sandbox was deleted; a deleted credential can no longer be synced." in frag
    assert "no enabled credential" not in frag and 'class="job' not in frag
    resp = operator_client.post(
        "/entrust/manage/sync", data={"kind": "all", "credential": synced.id + 99}
    )
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "That credential does not exist; reload the page." in page
    assert sandbox.requests() == []


def test_a_tab_says_when_the_latest_sync_of_its_kind_failed(operator_client, synced, sandbox, user):
    """The domains' latest sync failed: the Domains tab says so (its rows are from before),
    not only when the last successful one was; the Products tab, whose sync did not fail, does
    not; a successful sync of the domains clears it."""
    from webapp.catalog import service as catalog

    sandbox.faults([{"kind": "http_503", "path": "/enterprise/v2/domains*"}])
    try:
        assert catalog.start_sync(user["operator"], [synced.id], ["domains"]).state == "failed"
    finally:
        sandbox.clear_faults()
    page = operator_client.get("/entrust/manage/domains").get_data(as_text=True)
    assert "The latest sync of Sandbox failed (" in page and "Last sync: <time" in page
    assert "The latest sync of" not in operator_client.get("/entrust/manage/products").get_data(
        as_text=True
    )
    assert catalog.start_sync(user["operator"], [synced.id], ["domains"]).state == "succeeded"
    page = operator_client.get("/entrust/manage/domains").get_data(as_text=True)
    assert "The latest sync of" not in page and "Last sync: <time" in page
