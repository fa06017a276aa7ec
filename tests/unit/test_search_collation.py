"""Every list's search finds exactly the names that start (or end) with the text, whatever the
database's collation.

A search is an index range ("www." up to "www/"), right only where text compares code point by
code point. The PostgreSQL clusters of the tests compare as most installs do (en_US.UTF-8, see
``tests.pg.COLLATION``): letters first, punctuation and accents only to break ties. Under that
order a range misses "www.example.com" for "www." and takes in "hoşt1" for "host1"; the searched
columns are compared as "C" there. On SQLite the same tests hold with its own order.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import make_order
from webapp import pki, search
from webapp.dbtypes import CodePointString, utcnow
from webapp.extensions import db

NAMES = [
    "www.example.com",
    "www-1.example.com",
    "wwwexample.com",
    "www.shop.example.org",
    "host1.example.com",
    "hoşt1.example.com",
    "host1-a.example.net",
    "ex-ample.com",
]
# Texts ending in punctuation, spanning it, or one accent away from another name.
TEXTS = ["www.", "www-", "host1", "hoşt1", "host1-", ".example.com", "-a.example.net", "e.com"]


def _starting(text: str) -> list[str]:
    return sorted(n for n in NAMES if n.startswith(text))


def _starting_or_ending(text: str) -> list[str]:
    return sorted(n for n in NAMES if n.startswith(text) or n.endswith(text))


@pytest.fixture(params=["sorted", "walked"])
def way(request, monkeypatch):
    """A search that finds few rows sorts them; one that finds many walks the list testing each
    row (``search.NARROW``). Both are tried."""
    if request.param == "walked":
        monkeypatch.setattr(search, "NARROW", 0)
    return request.param


def _credential():
    from webapp.credentials.models import EcsCredential

    cred = EcsCredential(name="Collation", api_user="u", base_url="http://127.0.0.1:9/")
    db.session.add(cred)
    db.session.flush()
    return cred


@pytest.mark.parametrize("text", TEXTS)
def test_domains(app, way, text):
    from webapp.catalog import service as catalog
    from webapp.catalog.models import CatalogDomain

    cred = _credential()
    for i, name in enumerate(NAMES):
        db.session.add(CatalogDomain(credential_id=cred.id, client_id=i, name=name))
    db.session.commit()
    stmt = catalog.domains_query(catalog.TabFilter(q=text, show="all"))
    assert sorted(d.name for d in db.session.execute(stmt).scalars()) == _starting_or_ending(text)


@pytest.mark.parametrize("text", TEXTS)
def test_organizations(app, way, text):
    from webapp.catalog import service as catalog
    from webapp.catalog.models import CatalogOrganization

    cred = _credential()
    for i, name in enumerate(NAMES):
        db.session.add(
            CatalogOrganization(
                credential_id=cred.id, kind="client", client_id=i, client_name="Z", name=name
            )
        )
    db.session.commit()
    stmt = catalog.organizations_query(catalog.TabFilter(q=text, show="all"))
    assert sorted(o.name for o in db.session.execute(stmt).scalars()) == _starting(text)


@pytest.mark.parametrize("text", TEXTS)
def test_certificates(app, way, text):
    from webapp.certificates import service
    from webapp.certificates.models import Certificate, CertificateName

    now = utcnow()
    for i, name in enumerate(NAMES):
        cert = Certificate(
            fingerprint_sha256=f"{i:064x}",
            serial_hex=f"{i + 4096:x}",
            common_name=name,
            sans=name,
            issuer_cn="Test CA",
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=30 + i),
            public_key_id=f"{i:064x}",
            pem="(test)",
        )
        cert.names = [CertificateName(kind="DNS", value=name, reversed=name[::-1])]
        db.session.add(cert)
    db.session.commit()
    stmt = service.query(service.CertFilter(q=text))
    found = sorted(c.common_name for c in db.session.execute(stmt).scalars())
    assert found == _starting_or_ending(text)


@pytest.mark.parametrize("text", TEXTS)
def test_csrs(app, user, way, text):
    from webapp.csrs import service as csrs

    for name in NAMES:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = pki.build_csr(key, {"CN": name}, pki.SanSet())
        csrs.import_csr(user["admin"], csr.public_bytes(serialization.Encoding.PEM))
    found = sorted(r.common_name for r in db.session.execute(csrs.list_query(text)).scalars())
    assert found == _starting_or_ending(text)


@pytest.mark.parametrize("text", TEXTS)
def test_orders(app, way, text):
    from webapp.orders import queries

    for i, name in enumerate(NAMES):
        make_order(str(6000000 + i), common_name=name, sans=name)
    stmt = queries.query(queries.OrderFilter(q=text))
    found = sorted(o.common_name for o in db.session.execute(stmt).scalars())
    assert found == _starting_or_ending(text)


def test_the_migrated_database_compares_each_searched_column_by_code_point(app):
    """Each column the models declare with ``code_point_text`` has the "C" collation in the
    database the migrations built (Alembic's comparison of the schema does not look at
    collations)."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite compares every column's text by code point")
    declared = {
        (table.name, column.name)
        for table in db.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, CodePointString)
    }
    assert ("catalog_domain", "name") in declared and ("ca_order_name", "reversed") in declared
    collations = dict(
        ((table, column), collation)
        for table, column, collation in db.session.execute(
            text("SELECT table_name, column_name, collation_name FROM information_schema.columns")
        )
    )
    assert {key: collations[key] for key in declared} == dict.fromkeys(declared, "C")


def test_a_range_search_refuses_a_column_not_declared_to_compare_by_code_point():
    from webapp.catalog.models import CatalogDomain

    assert search.starts_with(CatalogDomain.name, "www.") is not None
    with pytest.raises(TypeError, match="code_point_text"):
        search.starts_with(CatalogDomain.client_name, "acme")
