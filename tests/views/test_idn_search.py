"""An internationalised host name is held in its xn-- form (as certificates and CSRs carry it)
and typed as it reads: each list's search finds it in either form, whole or by its end."""

from __future__ import annotations

import re

import pytest

from tests.helpers import make_order
from tests.unit.certs.factory import MiniPki
from webapp.catalog.models import CatalogDomain
from webapp.certificates import service as certificates
from webapp.credentials.models import EcsCredential
from webapp.csrs import service as csrs
from webapp.extensions import db

A_LABEL = "xn--bcher-kva.example"  # bücher.example
SEARCHES = ("bücher.example", "BÜCHER.example", A_LABEL, "www.bücher.example", ".bücher.example")


@pytest.fixture
def idn_rows(app, user):
    _, cert = MiniPki().leaf(f"www.{A_LABEL}", sans=[f"www.{A_LABEL}", "plain.example"])
    certificates.add_certificate(cert, actor=user["admin"])
    _, other = MiniPki().leaf("other.example")
    certificates.add_certificate(other, actor=user["admin"])
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.bücher.example"}, "")
    csrs.create_csr(user["operator"], "p256", {"CN": "other.example"}, "")
    assert csr.common_name == f"www.{A_LABEL}"
    make_order("5000100", common_name=f"www.{A_LABEL}")
    make_order("5000101", common_name="other.example")
    cred = EcsCredential(name="IDN", api_user="u", base_url="http://127.0.0.1:9/")
    db.session.add(cred)
    db.session.flush()
    for name in (f"www.{A_LABEL}", "other.example"):
        db.session.add(
            CatalogDomain(
                credential_id=cred.id,
                client_id=1,
                client_name="Client",
                name=name,
                verification_status="APPROVED",
            )
        )
    db.session.commit()
    return cred


@pytest.mark.parametrize("q", SEARCHES)
def test_every_list_finds_an_internationalised_name_in_either_form(auditor_client, idn_rows, q):
    for path in (
        "/certificates/",
        "/csrs/",
        "/entrust/",
        "/entrust/manage/domains",
    ):
        page = auditor_client.get(path, query_string={"q": q}).get_data(as_text=True)
        text = re.sub(r"<[^>]*>", " ", page)  # what the page says, not the search box's value
        assert f"www.{A_LABEL}" in text, (path, q)
        assert "other.example" not in text, (path, q)
