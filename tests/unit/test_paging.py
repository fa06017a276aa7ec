"""The shared pager: Next and Previous continue through the index (keyset) and see every row once
in the list's order, NULLs and the gone flag included; counts stop at the cap; a damaged cursor
falls back to the page number. tests/reliability/test_paging_postgres.py runs the same checks on
PostgreSQL, which orders NULLs the other way."""

from __future__ import annotations

import base64
import json
import random
from datetime import timedelta

import jinja2
import pytest
from sqlalchemy import select

from webapp import paging
from webapp.catalog import service as catalog
from webapp.catalog.models import CatalogDomain
from webapp.credentials.models import EcsCredential
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.paging import distinct_values, paginate

ROWS = 237
PER_PAGE = 25


def make_domains(n: int = ROWS) -> None:
    """Domains with ties, NULL expiries and a few gone, in no particular order of insertion."""
    rng = random.Random(11)
    now = utcnow().replace(microsecond=0)
    cred = EcsCredential(name="Paging", api_user="u", base_url="http://127.0.0.1:9/")
    db.session.add(cred)
    db.session.flush()
    for i in rng.sample(range(n), n):
        db.session.add(
            CatalogDomain(
                credential_id=cred.id,
                client_id=i % 4,
                client_name=f"Client {i % 4}",
                name=f"d{i % 60:02d}-{i}.example",
                verification_status=("APPROVED", "PENDING", "EXPIRED")[i % 3],
                verification_method=("DNS", "EMAIL")[i % 2],
                # ties on purpose (the id decides), and NULLs
                ov_expiry=None if i % 5 == 0 else now + timedelta(days=i % 17),
                ev_expiry=None if i % 2 else now + timedelta(days=i % 7),
                gone_at=now if i % 9 == 0 else None,
            )
        )
    db.session.commit()


def walk_forward(stmt_of, per_page=PER_PAGE) -> list[int]:
    page = paginate(stmt_of(), 1, per_page, cursor=(None, None))
    seen = [d.id for d in page.items]
    while page.has_next:
        page = paginate(stmt_of(), page.page + 1, per_page, cursor=(page.next_cursor, None))
        seen += [d.id for d in page.items]
    return seen


def walk_back_from(page, stmt_of, per_page=PER_PAGE) -> list[int]:
    seen = [d.id for d in page.items]
    while page.has_prev:
        page = paginate(stmt_of(), page.page - 1, per_page, cursor=(None, page.prev_cursor))
        seen = [d.id for d in page.items] + seen
    return seen


CASES = [
    (sort, direction, show)
    for sort in catalog.DOMAIN_SORTS
    for direction in ("asc", "desc")
    for show in ("current", "all")
] + [("name", "asc", "gone")]


def check_every_order(cap: int = 40, listed: paging.Listed | None = None) -> None:
    """Every sort, both directions, current and all rows: Next from the first page and Previous
    from the last see the list the database orders, each row once. ``listed``: the rows read as
    plain values by it."""
    old, paging.COUNT_CAP = paging.COUNT_CAP, cap
    try:
        for sort, direction, show in CASES:
            f = catalog.TabFilter(sort=sort, direction=direction, show=show)

            def stmt_of(f=f):
                stmt = catalog.domains_query(f)
                return stmt if listed is None else stmt.execution_options(listed=listed)

            expected = [d.id for d in db.session.execute(catalog.domains_query(f)).scalars()]
            assert len(set(expected)) == len(expected) > PER_PAGE
            forward = walk_forward(stmt_of)
            assert forward == expected, (sort, direction, show)
            last = paginate(stmt_of(), 1, PER_PAGE, cursor=(None, None))
            while last.has_next:
                last = paginate(stmt_of(), last.page + 1, PER_PAGE, cursor=(last.next_cursor, None))
            assert walk_back_from(last, stmt_of) == expected, (sort, direction, show)
            by_number = [
                d.id
                for p in range(1, last.page + 1)
                for d in paginate(stmt_of(), p, PER_PAGE, cursor=(None, None)).items
            ]
            assert by_number == expected, (sort, direction, show)
    finally:
        paging.COUNT_CAP = old


def check_counts() -> None:
    stmt = catalog.domains_query(catalog.TabFilter(show="all"))
    exact = paginate(stmt, 1, PER_PAGE, count_cap=1000, cursor=(None, None))
    assert exact.exact and exact.total == ROWS and exact.pages == -(-ROWS // PER_PAGE)
    capped = paginate(stmt, 1, PER_PAGE, count_cap=100, cursor=(None, None))
    assert not capped.exact and capped.total == 100 and capped.has_next
    # From page 2 on, the count runs from the page's first row: "more than" grows with the page.
    second = paginate(stmt, 2, PER_PAGE, count_cap=100, cursor=(capped.next_cursor, None))
    assert not second.exact and second.total == PER_PAGE + 100 and second.first_index == 26
    near_end = paginate(stmt, 10, PER_PAGE, count_cap=100, cursor=(None, None))
    assert near_end.exact and near_end.total == ROWS and not near_end.has_next
    assert near_end.last_index == ROWS


def test_next_previous_and_numbers_agree_with_the_database(app):
    make_domains()
    check_every_order()


class Shown:
    """A listed row's class: the pager sets its values as attributes."""


def test_a_listed_statement_pages_its_rows_as_plain_values(app):
    make_domains()
    columns = tuple(getattr(CatalogDomain, c.key) for c in CatalogDomain.__table__.c)
    listed = paging.Listed(columns, Shown)
    check_every_order(listed=listed)
    stmt = catalog.domains_query(catalog.TabFilter(show="all"))
    plain = paginate(stmt, 3, PER_PAGE, cursor=(None, None)).items
    assert {type(d) for d in plain} == {CatalogDomain}
    expected = [{c.key: getattr(d, c.key) for c in columns} for d in plain]
    del plain
    db.session.expunge_all()
    shown = paginate(stmt.execution_options(listed=listed), 3, PER_PAGE, cursor=(None, None))
    assert {type(d) for d in shown.items} == {Shown}
    assert [vars(d) for d in shown.items] == expected
    assert len(db.session.identity_map) == 0  # no model object was loaded


def test_a_listed_row_asked_for_a_column_it_lacks_fails_loudly():
    row = paging.Values.__new__(paging.Values)
    row.name = "a.example"
    assert row.name == "a.example"
    with pytest.raises(paging.NotListed, match="Values.gone_at"):
        _ = row.gone_at
    # Jinja turns an AttributeError into an empty cell; this reaches the page instead.
    env = jinja2.Environment(autoescape=True)
    with pytest.raises(paging.NotListed):
        env.from_string("{{ row.gone_at }}").render(row=row)
    assert env.from_string("{{ row.name }}").render(row=row) == "a.example"
    assert not hasattr(row, "__html__")


def test_counts_stop_at_the_cap(app):
    make_domains()
    check_counts()


def check_bad_cursors() -> None:
    """A damaged, oversized or foreign cursor (it comes from the URL) is ignored: the page is
    found by its number."""
    by_name = catalog.domains_query(catalog.TabFilter(show="all"))
    page3 = paginate(by_name, 3, PER_PAGE, cursor=(None, None))
    first = paginate(by_name, 1, PER_PAGE, cursor=(None, None))
    by_client = catalog.domains_query(catalog.TabFilter(show="all", sort="client"))

    def forged(values):
        raw = json.dumps(["catalog_domain.gone,catalog_domain.name,catalog_domain.id", values])
        return base64.urlsafe_b64encode(raw.encode()).decode()

    junk = [
        "!!!",
        "e30",
        first.next_cursor[:-4],
        "A" * 5000,
        first.next_cursor + "x",
        forged([True, 5, "x"]),  # wrong types
        forged([False, "a", {"t": "not a time"}]),
        forged([None, None, None]),  # NULL where the column may not be
        forged([False, "a"]),  # too short
        forged([False, "a", 2**63]),  # beyond what the id column (or SQLite) holds
        forged([False, "a", -(2**63) - 1]),
        forged([False, "a\u0000b", 42]),  # text PostgreSQL does not take
        forged([False, "\ud800", 42]),  # half a character: no UTF-8 for it
    ]
    for bad in junk:
        page = paginate(by_name, 3, PER_PAGE, cursor=(bad, bad))
        assert [d.id for d in page.items] == [d.id for d in page3.items], bad
    # A time that leaves the calendar once it is taken to UTC.
    by_expiry = catalog.domains_query(catalog.TabFilter(show="all", sort="ov_expiry"))
    signature = paging._signature(paging._order_keys(by_expiry, CatalogDomain))
    expiry3 = paginate(by_expiry, 3, PER_PAGE, cursor=(None, None))
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        values = [False, {"t": when}, 1] if "gone" in signature else [{"t": when}, 1]
        raw = json.dumps([signature, values]).encode()
        bad = base64.urlsafe_b64encode(raw).decode()
        page = paginate(by_expiry, 3, PER_PAGE, cursor=(bad, bad))
        assert [d.id for d in page.items] == [d.id for d in expiry3.items], when
    # A cursor made for another order is not applied to this one.
    client3 = paginate(by_client, 3, PER_PAGE, cursor=(None, None))
    page = paginate(by_client, 3, PER_PAGE, cursor=(first.next_cursor, None))
    assert [d.id for d in page.items] == [d.id for d in client3.items]


def test_a_damaged_or_foreign_cursor_falls_back_to_the_page_number(app):
    make_domains()
    check_bad_cursors()


def test_a_page_past_the_end_shows_the_last_page(app):
    make_domains()
    stmt = catalog.domains_query(catalog.TabFilter(show="all"))
    page = paginate(stmt, 500, PER_PAGE, cursor=(None, None))
    assert page.page == -(-ROWS // PER_PAGE) and page.items and not page.has_next


def test_link_arguments_carry_the_cursor(app):
    make_domains()
    stmt = catalog.domains_query(catalog.TabFilter())
    second = paginate(stmt, 2, PER_PAGE, cursor=(None, None))
    args = {"q": "d0", "page": 2, "after": "old", "before": "old"}
    nxt, prev = second.link_args(args, "next"), second.link_args(args, "prev")
    assert nxt == {"q": "d0", "page": 3, "after": second.next_cursor}
    # Page 1 too is read back from the cursor: rows added above since are not skipped.
    assert prev == {"q": "d0", "page": 1, "before": second.prev_cursor}


def test_distinct_values_in_order(app):
    make_domains()
    assert distinct_values(CatalogDomain.verification_status) == ["APPROVED", "EXPIRED", "PENDING"]
    assert catalog.statuses(CatalogDomain) == ["APPROVED", "EXPIRED", "PENDING"]


@pytest.mark.parametrize("gone", [True, False])
def test_the_gone_flag_follows_gone_at(app, gone):
    make_domains(10)
    row = db.session.execute(select(CatalogDomain).limit(1)).scalar_one()
    row.gone_at = utcnow() if gone else None
    db.session.commit()
    assert row.gone is gone and row.name_reversed == row.name[::-1]


def _three_pages_then(change: str, rows: int):
    """The domains sorted by name, three pages read forward, then ``rows`` rows added at the top
    of the list (``change`` "added") or the first ones removed. Returns the list's statement
    maker and the three pages."""
    make_domains()
    f = catalog.TabFilter(sort="name")

    def stmt_of():
        return catalog.domains_query(f)

    first = paginate(stmt_of(), 1, PER_PAGE, cursor=(None, None))
    second = paginate(stmt_of(), 2, PER_PAGE, cursor=(first.next_cursor, None))
    third = paginate(stmt_of(), 3, PER_PAGE, cursor=(second.next_cursor, None))
    if change == "added":
        cred = db.session.execute(select(CatalogDomain.credential_id)).scalars().first()
        for n in range(1, rows + 1):  # before every d..-name
            db.session.add(CatalogDomain(credential_id=cred, client_id=9, name=f"a{n}.example"))
    else:
        for d in first.items[:rows]:
            db.session.delete(db.session.get(CatalogDomain, d.id))
    db.session.commit()
    return stmt_of, first, second, third


@pytest.mark.parametrize("change", ["added", "removed"])
def test_a_page_reached_after_rows_changed_above_says_where_its_rows_are(app, change):
    """Two pages forward, then rows added (or removed) at the top, then Previous and Next as the
    links say: each page shows the rows next to its cursor (none skipped), and its range and
    total say where those rows are in the list as it is now, not where the link thought."""
    stmt_of, _first, second, third = _three_pages_then(change, 3)
    every = [d.id for d in db.session.execute(stmt_of()).scalars()]
    for args, page in (
        (third.link_args({}, "prev"), None),
        (second.link_args({}, "next"), None),
    ):
        page = paginate(
            stmt_of(), args["page"], PER_PAGE, cursor=(args.get("after"), args.get("before"))
        )
        ids = [d.id for d in page.items]
        at = every.index(ids[0])
        assert ids == every[at : at + len(ids)]  # the rows next to the cursor, in order
        assert (page.first_index, page.last_index) == (at + 1, at + len(ids)), args
        assert page.total == len(every) and page.exact
        assert page.has_prev == (at > 0) and page.has_next == (at + len(ids) < len(every))


@pytest.mark.parametrize("change", ["added", "removed"])
def test_back_to_the_first_page_skips_no_row_when_rows_changed_above(app, change):
    """Three pages forward, then rows added (or removed) at the top of the list, then Previous
    twice, as the links say: every row of the pages seen before is seen again on the way back,
    and none twice on one page."""
    stmt_of, first, second, third = _three_pages_then(change, 2)
    before = [d.id for d in first.items + second.items]
    if change == "removed":
        before = before[2:]
    every = [d.id for d in db.session.execute(stmt_of()).scalars()]
    page, seen = third, []
    while page.has_prev:
        args = page.link_args({}, "prev")
        page = paginate(stmt_of(), args["page"], PER_PAGE, cursor=(None, args.get("before")))
        seen = [d.id for d in page.items] + seen
    assert set(before) <= set(seen), sorted(set(before) - set(seen))
    assert page.page == 1 and [d.id for d in page.items] == every[:PER_PAGE]
