"""What assistive technology reads of the pages: the navigation says where the page is, each
table has a name where several share a page, each page has one top heading."""

from __future__ import annotations

import re

import pytest

from tests.helpers import HTMX
from webapp.jobs import service as jobs

jobs.register("test.outline", lambda ctx: {})


def _current(html: str) -> list[tuple[str, str, str]]:
    """Each element of the main navigation marked current: (tag, aria-current, text)."""
    nav = html.split('<ul class="mainnav">')[1].split("</nav>")[0]
    return re.findall(r'<(a|summary)[^>]* aria-current="(\w+)"[^>]*>([^<]+)<', nav)


@pytest.mark.parametrize(
    "url, menu, entry",
    [
        ("/certificates/", "SSL", "Certificates"),
        ("/certificates/import", "SSL", "Certificates"),
        ("/csrs/new", "SSL", "CSRs"),
        ("/entrust/", "SSL", "Entrust"),
        ("/entrust/new", "SSL", "Entrust"),
        ("/entrust/manage/", "SSL", "Entrust &rsaquo; Manage"),
        ("/entrust/manage/domains", "SSL", "Entrust &rsaquo; Manage"),
        ("/admin/users/", "Admin", "Users"),
        ("/admin/audit/", "Admin", "Audit"),
        ("/admin/settings/", "Admin", "Settings"),
        ("/jobs/", "Admin", "Jobs"),
    ],
)
def test_the_navigation_marks_the_current_entry_and_its_menu(admin_client, url, menu, entry):
    html = admin_client.get(url).get_data(as_text=True)
    assert _current(html) == [("summary", "true", menu), ("a", "page", entry)]


def test_the_dashboard_is_the_current_entry_on_its_page(admin_client):
    html = admin_client.get("/").get_data(as_text=True)
    assert _current(html) == [("a", "page", "Dashboard")]


def test_the_dashboards_tables_are_named_by_their_headings(admin_client):
    html = admin_client.get("/").get_data(as_text=True)
    tables = re.findall(r"<table[^>]*>", html)
    assert len(tables) == 3
    for table in tables:
        heading = re.search(r'aria-labelledby="([\w-]+)"', table).group(1)
        named = "Expiring per week, next 26 weeks|Most urgent|Pending orders"
        assert re.search(rf'<h2 id="{heading}">({named})</h2>', html)


def test_a_jobs_page_has_one_top_heading_and_its_fragment_none(app, user, admin_client):
    job = jobs.start("test.outline", "Nothing much", actor=user["admin"])
    html = admin_client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert re.findall(r"<h1>([^<]*)</h1>", html) == [f"Job {job.id}: Nothing much"]
    fragment = admin_client.get(f"/jobs/{job.id}", headers=HTMX).get_data(as_text=True)
    assert "<h1>" not in fragment and f'id="job-{job.id}"' in fragment


def test_the_main_navigation_and_the_account_menu_are_named(admin_client):
    html = admin_client.get("/").get_data(as_text=True)
    assert re.findall(r"<nav[^>]*>", html)[0] == '<nav class="container-fluid" aria-label="Main">'
    # The account menu is not one more "Admin" beside the Admin menu.
    account = html.split('class="dropdown user-menu"')[1].split("</summary>")[0]
    assert account.endswith(
        '<summary><span class="visually-hidden">Signed in as </span>'
        '<span class="who" title="Admin">Admin</span>'
    )


def test_a_long_name_cut_short_in_the_bar_is_whole_in_its_tooltip_and_the_menu(admin_client):
    from webapp.auth.models import User
    from webapp.extensions import db

    long_name = "Maximiliane Alexandra Konstantinopoulou-Vandersteenhoven III"
    db.session.execute(db.update(User).where(User.username == "admin").values(full_name=long_name))
    db.session.commit()
    html = admin_client.get("/").get_data(as_text=True)
    menu = html.split('class="dropdown user-menu"')[1].split("</details>")[0]
    assert f'<span class="who" title="{long_name}">{long_name}</span>' in menu
    assert f'<li class="who-full" dir="auto" aria-hidden="true">{long_name}</li>' in menu


def test_a_sorted_columns_arrow_is_hidden_from_screen_readers_which_hear_aria_sort(admin_client):
    html = admin_client.get("/entrust/?sort=status&dir=desc").get_data(as_text=True)
    th = html.split('<th aria-sort="descending">')[1].split("</th>")[0]
    assert th.endswith('>Status <span aria-hidden="true">▼</span></a>')


def test_no_page_gives_two_elements_the_same_id(app, user, admin_client):
    """A label, aria-describedby or a fragment link finds the element by its id: each id once on
    a page, with the rows that repeat (an order's certificates, say) filled in."""
    from collections import Counter

    from tests.helpers import make_order
    from tests.unit.certs.factory import MiniPki
    from webapp.certificates import service as certificates
    from webapp.extensions import db

    order = make_order("5000200", common_name="twice.example.com")
    made = []
    for _ in range(2):  # a reissue kept beside its original, say
        _, cert = MiniPki().leaf("twice.example.com")
        row, _ = certificates.add_certificate(cert, actor=user["admin"])
        row.order_id = order.id
        made.append(row)
    db.session.commit()
    for url in (
        "/",
        "/certificates/",
        f"/certificates/{made[0].id}",
        "/csrs/",
        "/entrust/",
        f"/entrust/{order.id}",
        "/entrust/new",
        "/entrust/import",
        "/entrust/manage/",
        "/entrust/manage/domains",
        "/admin/users/",
        "/admin/audit/",
        "/admin/settings/",
        "/jobs/",
    ):
        html = admin_client.get(url).get_data(as_text=True)
        ids = Counter(re.findall(r'\sid="([^"]+)"', html))
        assert not [i for i, n in ids.items() if n > 1], url
