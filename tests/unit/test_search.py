"""Searches are index ranges ("starts with", "ends with"); a search that matches few rows sorts
them, one that matches many walks the list's order testing each row, and both find the same
rows in the same order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.test_paging import make_domains
from webapp import search
from webapp.catalog import service as catalog
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.paging import paginate
from webapp.search import escape_like


def _names(f: catalog.TabFilter) -> list[str]:
    return [d.name for d in db.session.execute(catalog.domains_query(f)).scalars()]


@pytest.mark.parametrize("q", ["d0", "d01-", ".example", "-10.example", "D1", "%", "0-1"])
def test_few_and_many_matches_give_the_same_rows(app, monkeypatch, q):
    make_domains()
    every = _names(catalog.TabFilter(show="all", sort="client"))
    f = catalog.TabFilter(q=q, show="all", sort="client")
    sorted_few = _names(f)
    text = q.lower()
    assert sorted_few == [n for n in every if n.startswith(text) or n.endswith(text)]
    monkeypatch.setattr(search, "NARROW", 0)  # now every search walks the order
    assert _names(f) == sorted_few


def test_a_walked_search_counts_only_a_little_ahead(app, monkeypatch):
    make_domains()
    f = catalog.TabFilter(q=".example", show="all")
    exact = paginate(catalog.domains_query(f), 1, 25, cursor=(None, None))
    assert exact.exact and exact.total == 237
    monkeypatch.setattr(search, "NARROW", 10)
    walked = paginate(catalog.domains_query(f), 1, 25, cursor=(None, None))
    assert [d.id for d in walked.items] == [d.id for d in exact.items]
    assert not walked.exact and walked.total == search.WALKED_COUNT and walked.has_next


@pytest.mark.parametrize("per_page", [25, 100, 200])
def test_a_walked_search_pages_to_its_end_whatever_the_page_size(app, monkeypatch, per_page):
    """A walked search counts a little ahead, but never less than a page: with 100 or 200 rows
    a page, Next must still be there while rows follow (it was not: 1-100 of more than 100, and
    no way past them)."""
    make_domains()
    f = catalog.TabFilter(q=".example", show="all")
    every = [d.id for d in db.session.execute(catalog.domains_query(f)).scalars()]
    assert len(every) == 237
    monkeypatch.setattr(search, "NARROW", 10)
    seen, number, after, first = [], 1, None, None
    while True:
        page = paginate(catalog.domains_query(f), number, per_page, cursor=(after, None))
        first = first or page
        seen += [d.id for d in page.items]
        if not page.has_next:
            break
        number, after = number + 1, page.next_cursor
    assert seen == every
    assert not first.exact and first.total == max(search.WALKED_COUNT, per_page)


TOP = chr(0x10FFFF)  # the last character Unicode has


@pytest.mark.parametrize(
    "prefix", ["a", "a" + TOP, "a" + TOP + TOP, TOP, "x\ud7ff", "x\ud7ff\ue000"]
)
def test_starts_with_is_a_range_of_exactly_the_names_with_that_start(app, prefix):
    """The range ends right after the names with the prefix, whatever its last characters:
    U+10FFFF, after which nothing comes, and U+D7FF, after which come the surrogates no text
    holds (the database could not be sent one)."""
    from sqlalchemy import select

    from webapp.catalog.models import CatalogDomain

    make_domains(30)
    credential = db.session.execute(select(CatalogDomain.credential_id)).scalars().first()
    names = ["a", "a" + TOP, "a" + TOP + "z", "a" + TOP + TOP, "ab", "b", TOP, TOP + "a"]
    names += ["x\ud7ff", "x\ud7ffy", "x\ud7ff\ue000", "x\ue000", "x\ud7fe\ue001", "y"]
    for i, name in enumerate(names):
        db.session.add(CatalogDomain(credential_id=credential, client_id=100 + i, name=name))
    db.session.commit()
    every = db.session.execute(select(CatalogDomain.name)).scalars().all()
    found = db.session.execute(
        select(CatalogDomain.name).where(search.starts_with(CatalogDomain.name, prefix))
    ).scalars()
    assert sorted(found) == sorted(n for n in every if n.startswith(prefix))


def test_like_wildcards_are_escaped():
    assert escape_like("50%_off\\") == "50\\%\\_off\\\\"


def _certificates(n: int = 60) -> None:
    """Certificates with their names as add_certificate stores them (no crypto needed here)."""
    from webapp.certificates.models import Certificate, CertificateName

    now = utcnow()
    for i in range(n):
        cn = f"Host{i}.Dept{i % 4}.Example.com" if i % 5 else ""
        sans = [f"host{i}.dept{i % 4}.example.com", f"www{i % 3}.shop.example.org"]
        if i % 7 == 0:
            sans.append(f"ops{i}@example.net")
        names = [("DNS", s) for s in sans]
        if cn and cn.lower() not in sans:
            names.insert(0, ("CN", cn.lower()))
        cert = Certificate(
            fingerprint_sha256=f"{i:064x}",
            serial_hex=f"{i + 4096:x}",
            common_name=cn,
            sans=",".join(sans),
            issuer_cn="Test CA",
            not_before=now - timedelta(days=10),
            not_after=now + timedelta(days=i % 40),
            public_key_id=f"{i:064x}",
            pem="(test)",
        )
        cert.names = [CertificateName(kind=k, value=v, reversed=v[::-1]) for k, v in names]
        db.session.add(cert)
    db.session.commit()


@pytest.mark.parametrize(
    "q", ["host1", "HOST1", "www2.shop", "example.org", "dept3.example.com", "ops", ".net", "1001"]
)
def test_certificate_search_finds_the_same_either_way(app, monkeypatch, q):
    from webapp.certificates import service

    _certificates()
    f = service.CertFilter(q=q, sort="cn")
    few = [c.id for c in db.session.execute(service.query(f)).scalars()]
    assert few
    monkeypatch.setattr(search, "NARROW", 0)
    assert [c.id for c in db.session.execute(service.query(f)).scalars()] == few


def test_a_sorted_search_with_nothing_else_filtering_counts_the_keys_it_found(app, monkeypatch):
    """The keys a search finds are the list's rows when no filter narrows it further: the pager
    takes their number rather than looking every one of them up again to count them."""
    from tests.plans import captured
    from webapp import paging
    from webapp.certificates import service
    from webapp.certificates.models import Certificate

    _certificates()
    matching = [c for c in db.session.execute(service.query(service.CertFilter())).scalars()]
    expected = sum("example.org" in c.sans for c in matching)
    with captured() as seen:
        page = paginate(service.query(service.CertFilter(q="example.org")), 1, 25)
    assert page.exact and page.total == expected == 60 and len(page.items) == 25
    listed = [sql for sql, _ in seen if Certificate.__tablename__ + "_name" not in sql]
    assert listed and not any("count(" in sql.lower() for sql in listed), listed

    # Another filter beside the search: the keys found are not all rows of the list any more.
    f = service.CertFilter(q="example.org", expiry="30")
    page = paginate(service.query(f), 1, 25)
    now = utcnow()
    assert page.exact and page.total == sum(
        "example.org" in c.sans and now <= c.not_after < now + timedelta(days=30) for c in matching
    )

    monkeypatch.setattr(paging, "COUNT_CAP", 40)  # more found than the pager counts
    page = paginate(service.query(service.CertFilter(q="example.org")), 1, 25)
    assert not page.exact and page.total == 40


@pytest.mark.parametrize(
    ("typed", "forms"),
    [
        ("bücher.example", ["bücher.example", "xn--bcher-kva.example"]),
        ("xn--bcher-kva.example", ["xn--bcher-kva.example", "bücher.example"]),
        (".bücher.example", [".bücher.example", ".xn--bcher-kva.example"]),
        ("www.example.com", ["www.example.com"]),
        ("xn--not-a-label!", ["xn--not-a-label!"]),  # not convertible: as typed only
        ("a" * 70 + "ü.example", ["a" * 70 + "ü.example"]),  # too long a label
    ],
)
def test_a_name_is_searched_in_its_internationalised_and_xn_forms(typed, forms):
    assert search.name_forms(typed) == forms
